"""The pipeline's pages and the project's media in a real browser: images load, links resolve, H.264 videos have
their duration and play, names are shown escaped, nothing logs an error.

Chromium is driven by Playwright (tests/browser_helper.py) over http on 127.0.0.1. The page tests without a browser
always run; the Chromium ones (marked ``browser``) are skipped, and counted at the end of the run, only where no
Chromium could be installed (``make test`` installs Debian's). Screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np
import pytest

from dancenow_utils.io_utils import atomic_write_text, write_image
from dancenow_utils.notebook.runner import NOTEBOOKS, write_index
from dancenow_utils.video import inline_video_html, write_gif, write_video
from tests.browser_helper import ROOT, Browser, PageLog, serve
from tests.pipeline_site import FPS as SITE_FPS
from tests.pipeline_site import N_FRAMES as SITE_FRAMES

FPS, N_FRAMES = 16, 32
METRICS = {"ssim": 0.71, "psnr": 19.3, "body_ssim": 0.742, "pose_error_px": 3.2, "detection_rate": 1.0,
           "flicker": 1.4, "nn_ssim": 0.66, "nn_psnr": 17.9, "nn_body_ssim": 0.684, "nn_pose_error_px": 5.1,
           "n_samples": 6, "face_ssim": None, "stages": {"generator": "global", "face": False},
           "gan_losses": {"G_GAN": 0.9, "G_GAN_Feat": 2.1, "D_real": 0.4, "D_fake": 0.3}, "checkpoint": "demo/latest",
           "by_pose_kind": {"crossed arms": {"n": 2, "ssim": 0.613, "nn_ssim": 0.577, "body_ssim": 0.5,
                                             "nn_body_ssim": 0.4, "pose_error_px": 4.4, "nn_pose_error_px": 6.6},
                            "others": {"n": 4, "ssim": None, "nn_ssim": None, "body_ssim": None, "nn_body_ssim": None,
                                       "pose_error_px": None, "nn_pose_error_px": None}}}


def frames(n: int = N_FRAMES, size: int = 64) -> list[np.ndarray]:
    out = []
    for i in range(n):
        img = np.full((size, size, 3), (30, 60, 90), np.uint8)
        cv2.circle(img, (8 + i * (size - 16) // n, size // 2), 6, (255, 200, 0), -1)
        out.append(img)
    return out


def make_demo_layout(root: Path) -> Path:
    """Small stand-ins for everything `make demo` writes, at the paths it writes them."""
    pic = frames(1)[0]
    write_image(root / "demo_data" / "contact_sheet.png", np.concatenate([pic] * 4, axis=1))
    ck = root / "checkpoints" / "demo"
    write_image(ck / "loss_curves.png", pic)
    for tag in ("iter0000002", "iter0000004"):
        for kind in ("input", "generated", "real"):
            write_image(ck / "web" / "images" / f"{tag}_{kind}.png", pic)
    atomic_write_text(ck / "web" / "index.html", "<html></html>")
    test = root / "checkpoints" / "demo_test"
    atomic_write_text(test / "metrics.json", json.dumps(METRICS))
    write_image(test / "metrics.png", pic)
    atomic_write_text(test / "index.html", "<html></html>")
    out = root / "results" / "demo"
    write_video(out / "transfer.mp4", iter(frames()), FPS)
    write_video(out / "side_by_side.mp4", (np.concatenate([f] * 3, axis=1) for f in frames()), FPS)
    write_gif(out / "transfer.gif", frames(8), fps=8)
    atomic_write_text(root / "results" / "demo_export" / "index.html", "<html></html>")  # the puppet page
    learn = root / "checkpoints" / "Initial_epoch" / "learning"
    write_image(learn / "learning_grid.png", pic)
    write_gif(learn / "learning.gif", frames(4), fps=4)
    for name in NOTEBOOKS:
        atomic_write_text(root / "results" / "notebooks" / f"{name}.ipynb", "{}")
    return root


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [(tag, v) for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data):
        self.text.append(data)


def parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text())
    return parser


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    return make_demo_layout(tmp_path_factory.mktemp("demo_root"))


def open_served(browser: Browser, page: Path, root: Path, screenshot: str | None = None) -> tuple[dict, PageLog]:
    """``page`` (under ``root``) opened over http, ``root`` served on 127.0.0.1; its report and log."""
    with serve(root) as base:
        return browser.inspect(f"{base}/{quote(page.relative_to(root).as_posix())}", screenshot)


def test_index_is_one_page_with_every_step(demo_root):
    page = write_index(demo_root)
    assert page == demo_root / "results" / "index.html"
    parsed = parse(page)
    for tag, link in parsed.links:
        assert not link.startswith(("/", "file:")) and "://" not in link, f"{link} is not relative"
        assert (page.parent / link).exists(), f"<{tag}> links to {link}, which does not exist"
    links = {link for _, link in parsed.links}
    for rel in ("demo/transfer.mp4", "demo/side_by_side.mp4", "demo/transfer.gif", "../demo_data/contact_sheet.png",
                "../checkpoints/demo/loss_curves.png", "../checkpoints/demo/web/images/iter0000004_generated.png",
                "../checkpoints/demo_test/metrics.png", "../checkpoints/Initial_epoch/learning/learning_grid.png",
                "../checkpoints/Initial_epoch/learning/learning.gif", "notebooks/04_pose_transfer.ipynb",
                "demo_export/index.html"):
        assert rel in links, rel
    assert "../checkpoints/demo/web/images/iter0000002_generated.png" not in links  # only the latest visuals
    text = " ".join(parsed.text)
    for expected in ("Step 1", "Step 2", "Step 3", "Step 4", "Step 5", "0.742", "0.684", "G_GAN_Feat", "not found"):
        assert (expected in text) == (expected != "not found"), expected
    for expected in ("crossed arms", "0.613 (0.577)", "4.4 (6.6)", "- (-)"):  # the per-kind table, not a JSON blob
        assert expected in text, expected
    assert "nn_body_ssim" not in text


def test_missing_pieces_are_skipped_with_a_note(tmp_path):
    (tmp_path / "checkpoints" / "demo_test").mkdir(parents=True)
    (tmp_path / "checkpoints" / "demo_test" / "metrics.json").write_text("{ torn")
    page = write_index(tmp_path)
    parsed = parse(page)
    assert not [link for tag, link in parsed.links if tag in ("img", "source", "video")]
    text = " ".join(parsed.text)
    for step in ("01", "02", "03", "04", "05"):
        assert f"run notebook {step}" in text
    assert "unreadable" in text


@pytest.mark.browser
def test_index_page_in_chromium(demo_root, browser):
    report, log = open_served(browser, write_index(demo_root), demo_root)
    assert not log.problems() and not log.blocked, log
    assert report["h264"] in ("probably", "maybe"), "this Chromium cannot play H.264 at all"
    broken = [i["src"] for i in report["images"] if i["width"] == 0]
    assert not broken, f"images that did not load: {broken}"
    assert len(report["images"]) == 9  # contact sheet, loss curves, 3 visuals, metrics.png, 2 GIFs, grid
    assert [Path(v["src"]).name for v in report["videos"]] == ["transfer.mp4", "side_by_side.mp4"]
    for v, width in zip(report["videos"], (64, 192)):
        assert v["error"] is None and (v["width"], v["height"]) == (width, 64), v
        assert isinstance(v["duration"], (int, float)), f"duration {v['duration']}: {v}"  # finite
        assert v["duration"] == pytest.approx(N_FRAMES / FPS, abs=0.1), v
        assert isinstance(v["played"], (int, float)) and v["played"] > 0, v  # frames were decoded and shown
    assert "0.742" in report["text"]


@pytest.mark.browser
def test_inline_video_and_image_in_chromium(tmp_path, browser):
    """What a notebook shows: an embedded (base64) H.264 video beside a PNG the project wrote."""
    write_video(tmp_path / "clip.mp4", frames(), FPS)
    write_image(tmp_path / "pose.png", frames(1)[0])
    page = tmp_path / "notebook_output.html"
    page.write_text(f'<html><body><img src="pose.png">{inline_video_html(tmp_path / "clip.mp4")}</body></html>')
    report, log = open_served(browser, page, tmp_path)
    assert not log.problems(), log
    assert [i["width"] for i in report["images"]] == [64]
    (video,) = report["videos"]
    assert video["src"].startswith("data:video/mp4;base64,")
    assert video["duration"] == pytest.approx(N_FRAMES / FPS, abs=0.1) and video["played"] > 0, video


@pytest.mark.browser
def test_chromium_refuses_opencv_mp4v(tmp_path, browser):
    """The check has teeth: the MPEG-4 Part 2 files the project used to write get no duration in a browser."""
    writer = cv2.VideoWriter(str(tmp_path / "old.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (64, 64))
    for f in frames():
        writer.write(f)
    writer.release()
    page = tmp_path / "old.html"
    page.write_text('<html><body><video controls><source src="old.mp4" type="video/mp4"></video></body></html>')
    (video,) = open_served(browser, page, tmp_path)[0]["videos"]
    # no playable source (NETWORK_NO_SOURCE) or a decode error (MEDIA_ERR_SRC_NOT_SUPPORTED): no size, no duration
    assert video["width"] == 0 and video["duration"] == "NaN" and (video["network"] == 3 or video["error"] == 4), video


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("which", ["results", "transfer", "training", "cross-validation"])
def test_pipeline_pages_in_chromium(browser, pipeline_site, which):
    """The pages a small real run wrote: every image and link loads, every video plays for its duration, no error
    in the console, and the run's name (``a <b> & "c"``) is shown as text, not read as markup."""
    site = pipeline_site
    report, log = open_served(browser, site.pages[which], site.root, screenshot=f"page-{which}")
    assert not log.problems(), log
    assert not log.blocked, f"the page reached beyond 127.0.0.1: {log.blocked}"
    broken = [i["src"] for i in report["images"] if i["width"] == 0 or i["height"] == 0]
    assert report["images"] and not broken, f"images that did not load: {broken}"
    bad_links = {link: status for link, status in report["link_status"].items() if status != 200}
    assert not bad_links, f"links that do not resolve: {bad_links}"
    for v in report["videos"]:
        assert v["error"] is None and v["width"] > 0, v
        assert v["duration"] == pytest.approx(SITE_FRAMES / SITE_FPS, abs=0.1), v
        assert isinstance(v["played"], (int, float)) and v["played"] > 0, v  # its time advanced
    assert site.name in report["title"] and any(site.name in h for h in report["h1"]), (report["title"], report["h1"])
    assert "b" not in report["tags"], "the run name's <b> became an element"
    if which == "results":
        assert [Path(v["src"]).name for v in report["videos"]] == ["transfer.mp4", "side_by_side.mp4"]
        assert len(report["images"]) == 9  # contact sheet, loss curves, 3 visuals, metrics.png, GIF, grid, GIF
        assert f"{site.pages['transfer'].parent.name}/index.html" in {
            Path(*Path(link).parts[-2:]).as_posix() for link in map(_unquoted_path, report["link_status"])}
    if which == "transfer":
        assert len(report["images"]) == SITE_FRAMES and "<video> files" in report["text"]


def _unquoted_path(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path)


@pytest.mark.browser
def test_committed_notebook_without_a_kernel(browser, tmp_path):
    """Notebook 04 as a code host shows it (nbconvert's HTML export of the committed file, no kernel): its saved
    figures load with a size and its saved video plays.

    The export shows PNG, JPEG and SVG pictures (nbconvert's display priority); an ``image/gif`` output (the
    transfer preview) is not among them and shows as its text, so it is not counted here."""
    import nbformat
    from nbconvert import HTMLExporter

    from dancenow_utils.notebook.saved_outputs import image_outputs

    nb = nbformat.read(ROOT / "notebooks" / "04_pose_transfer.ipynb", as_version=4)
    if not image_outputs(nb):
        pytest.skip("notebooks/04_pose_transfer.ipynb has no saved outputs: run `make notebook-outputs`")
    n_images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if {"image/png", "image/jpeg", "image/svg+xml"} & set(o.get("data", {})))
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    page = tmp_path / "04_pose_transfer.html"
    page.write_text(body)
    report, log = open_served(browser, page, tmp_path, screenshot="notebook-04-no-kernel")
    # the export's only outside resources are MathJax and require.js from a CDN, refused here as offline
    assert all("cdnjs" in url for url in log.blocked), log.blocked
    assert not log.problems(), log
    figures = [i for i in report["images"] if i["src"].startswith("data:image/")]
    assert len(figures) == n_images, report["images"]
    broken = [i["src"][:40] for i in figures if i["width"] == 0 or i["height"] == 0]
    assert not broken, f"saved figures that do not show: {broken}"
    for v in report["videos"]:
        assert v["error"] is None and isinstance(v["duration"], (int, float)) and v["duration"] > 0, v
        assert isinstance(v["played"], (int, float)) and v["played"] > 0, v

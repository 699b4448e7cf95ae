"""The results page and the project's media in a real browser: images load, H.264 videos have a duration and play.

The page tests without a browser always run; the Chromium ones are skipped, with the reason, when no Chromium
binary is installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from dancenow_utils.io_utils import atomic_write_text, write_image
from dancenow_utils.notebook.runner import NOTEBOOKS, write_index
from dancenow_utils.video import inline_video_html, write_gif, write_video
from tests.browser_helper import SKIP_REASON, Chromium, find_chromium

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


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None or os.name != "posix":
        pytest.skip(SKIP_REASON)
    with Chromium(binary) as browser:
        yield browser


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
                "../checkpoints/Initial_epoch/learning/learning.gif", "notebooks/04_pose_transfer.ipynb"):
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


def test_index_page_in_chromium(demo_root, chromium):
    report = chromium.inspect(write_index(demo_root))
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


def test_inline_video_and_image_in_chromium(tmp_path, chromium):
    """What a notebook shows: an embedded (base64) H.264 video beside a PNG the project wrote."""
    write_video(tmp_path / "clip.mp4", frames(), FPS)
    write_image(tmp_path / "pose.png", frames(1)[0])
    page = tmp_path / "notebook_output.html"
    page.write_text(f'<html><body><img src="pose.png">{inline_video_html(tmp_path / "clip.mp4")}</body></html>')
    report = chromium.inspect(page)
    assert [i["width"] for i in report["images"]] == [64]
    (video,) = report["videos"]
    assert video["src"].startswith("data:video/mp4;base64,")
    assert video["duration"] == pytest.approx(N_FRAMES / FPS, abs=0.1) and video["played"] > 0, video


def test_chromium_refuses_opencv_mp4v(tmp_path, chromium):
    """The check has teeth: the MPEG-4 Part 2 files the project used to write get no duration in a browser."""
    writer = cv2.VideoWriter(str(tmp_path / "old.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (64, 64))
    for f in frames():
        writer.write(f)
    writer.release()
    page = tmp_path / "old.html"
    page.write_text('<html><body><video controls><source src="old.mp4" type="video/mp4"></video></body></html>')
    (video,) = chromium.inspect(page)["videos"]
    # no playable source (NETWORK_NO_SOURCE) or a decode error (MEDIA_ERR_SRC_NOT_SUPPORTED): no size, no duration
    assert video["width"] == 0 and video["duration"] == "NaN" and (video["network"] == 3 or video["error"] == 4), video

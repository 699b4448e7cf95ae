"""One results page, ``results/index.html``: every step's pictures, videos and metrics on a single page.

The page is written with dominate and links every file relative to itself, so it works when opened straight from
disk (``file://``) as well as from a web server. A piece a step did not produce is skipped with a note naming the
notebook that makes it. The layout is the one ``make demo`` leaves in the repository root (run name ``demo``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dominate
from dominate.tags import (
    a,
    caption,
    figcaption,
    figure,
    h1,
    h2,
    img,
    li,
    meta,
    p,
    section,
    source,
    style,
    table,
    tbody,
    td,
    th,
    thead,
    tr,
    ul,
    video,
)
from dominate.util import raw

from dancenow_utils.io_utils import atomic_write_text
from dancenow_utils.layout import CHECKPOINTS, DEMO_DATA, LEARNING_RUN, NOTEBOOKS, RESULTS, ResultsLayout, RunLayout
from dancenow_utils.video import codec_of

# (label, model key, nearest-neighbour baseline key, which way is better)
METRIC_ROWS = (
    ("SSIM, whole frame", "ssim", "nn_ssim", "higher"),
    ("SSIM, body box", "body_ssim", "nn_body_ssim", "higher"),
    ("PSNR (dB)", "psnr", "nn_psnr", "higher"),
    ("pose error of the re-detected skeleton (px)", "pose_error_px", "nn_pose_error_px", "lower"),
    ("pose detection rate", "detection_rate", None, "higher"),
    ("flicker (frame-to-frame change / the real video's)", "flicker", None, "closer to 1"),
    ("SSIM, face box", "face_ssim", None, "higher"),
    ("held-out samples", "n_samples", None, ""),
)
CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; color: #222; }
section { border-top: 1px solid #ccc; margin-top: 1.5em; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figure img, figure video { max-width: 100%; border: 1px solid #ddd; }
figure video { min-width: 320px; }
figcaption { font-size: 0.9em; color: #555; }
table { border-collapse: collapse; margin: 0.5em 0; }
caption { text-align: left; white-space: nowrap; padding: 0.25em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.missing { color: #a60; font-style: italic; }
"""


class _Page:
    """Helpers that add figures, videos and notes to the dominate document being built."""

    def __init__(self, root: Path, page_dir: Path) -> None:
        self.root, self.page_dir = root, page_dir

    def rel(self, rel_to_root: str | Path) -> str:
        """The path of ``root/rel_to_root`` as seen from the page, with forward slashes."""
        return Path(os.path.relpath(self.root / rel_to_root, self.page_dir)).as_posix()

    def exists(self, rel_to_root: str | Path) -> bool:
        return (self.root / rel_to_root).exists()

    @staticmethod
    def missing(what: str, how: str) -> None:
        p(f"{what}: not found ({how}).", cls="missing")

    def image(self, rel_to_root: str | Path, caption: str, how: str, width: int | None = None) -> bool:
        if not self.exists(rel_to_root):
            self.missing(caption, how)
            return False
        src = self.rel(rel_to_root)
        with figure():
            with a(href=src):
                img(src=src, alt=caption, style=f"width:{width}px" if width else "")
            figcaption(caption)
        return True

    def video(self, rel_to_root: str | Path, caption: str, how: str) -> bool:
        if not self.exists(rel_to_root):
            self.missing(caption, how)
            return False
        src = self.rel(rel_to_root)
        with figure():
            with video(controls=True, loop=True, muted=True, playsinline=True, preload="metadata"):
                source(src=src, type="video/mp4")
                a("download the video", href=src)
            figcaption(caption, " (", a("file", href=src), ")", _codec_warning(self.root / rel_to_root))
        return True

    def link(self, rel_to_root: str | Path, text: str) -> None:
        if self.exists(rel_to_root):
            p(a(text, href=self.rel(rel_to_root)))


def _codec_warning(path: Path) -> str:
    """A note when an mp4 is not H.264 (an older run's MPEG-4 Part 2 file does not play in browsers)."""
    try:
        codec = codec_of(path)
    except (ImportError, OSError, ValueError):
        return ""
    return "" if codec == "h264" else f" - encoded as {codec}, which browsers may not play: re-run notebook 04"


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def metrics_tables(metrics: dict) -> None:
    """The cross-validation metrics as tables: the model beside the nearest-neighbour baseline, then the GAN
    losses on held-out pairs and anything else ``metrics.json`` holds."""
    shown = set()
    with table(id="metrics"):
        caption("Held-out frames: the trained generator against retrieving the nearest training frame")
        with thead(), tr():
            for head in ("metric", "model", "nearest neighbour", "better"):
                th(head)
        with tbody():
            for label, key, nn_key, better in METRIC_ROWS:
                if key not in metrics:
                    continue
                shown.update((key, nn_key))
                with tr():
                    td(label)
                    td(_fmt(metrics[key]))
                    td(_fmt(metrics.get(nn_key)) if nn_key else "")
                    td(better)
    losses = metrics.get("gan_losses")
    if isinstance(losses, dict) and losses:
        shown.add("gan_losses")
        with table(id="gan-losses"):
            caption("GAN losses on the held-out pairs (compare with the training log)")
            with tbody():
                for k, v in losses.items():
                    with tr():
                        td(k)
                        td(_fmt(v))
    kinds = metrics.get("by_pose_kind")
    if isinstance(kinds, dict) and kinds:
        shown.add("by_pose_kind")
        with table(id="by-pose-kind"):
            caption("By pose kind: the model (nearest neighbour); crossed arms and overlapping hands are the "
                    "original project's negative results")
            with thead(), tr():
                for head in ("pose kind", "frames", "SSIM", "body SSIM", "pose error (px)"):
                    th(head)
            with tbody():
                for kind, row in kinds.items():
                    with tr():
                        td(kind)
                        td(_fmt(row.get("n")))
                        for key in ("ssim", "body_ssim", "pose_error_px"):
                            td(f"{_fmt(row.get(key))} ({_fmt(row.get('nn_' + key))})")
    rest = {k: v for k, v in metrics.items() if k not in shown}
    if rest:
        with table(id="run-info"), tbody():
            for k, v in rest.items():
                with tr():
                    td(k)
                    td(_fmt(v))


def build_report(root: str | Path, name: str = "demo", page: str | Path = "results/index.html") -> str:
    """The HTML of the results page for run ``name`` under repository ``root``; ``page`` is where it will live
    (relative to ``root``), which the links are relative to."""
    root = Path(root).resolve()
    pg = _Page(root, (root / page).parent)
    run, out = RunLayout(CHECKPOINTS, name), ResultsLayout(RESULTS, name)  # relative to root
    learning = RunLayout(CHECKPOINTS, LEARNING_RUN)
    doc = dominate.document(title=f"dancenow results: {name}")
    with doc.head:
        meta(charset="utf-8")
        style(raw(CSS))
    with doc:
        h1(f"dancenow results: {name}")
        p("Everything the five notebooks (or `make demo`) produced, step by step. Click a picture for full size.")
        with section(id="step1"):
            h2("Step 1: pose extraction")
            pg.image(f"{DEMO_DATA}/contact_sheet.png", "demo frames with their skeletons", "run notebook 01")
        with section(id="step2"):
            h2("Step 2: training")
            pg.image(run.loss_curves, "loss curves", "run notebook 02")
            visuals = RunLayout(root / CHECKPOINTS, name).latest_visuals()
            if visuals:
                p("Latest fixed training samples: pose input, generated frame, real frame.")
                for path in visuals:
                    pg.image(path.relative_to(root), path.stem.split("_", 1)[1], "run notebook 02")
            else:
                pg.missing("training visuals", "run notebook 02")
            for path in RunLayout(root / CHECKPOINTS, name).stage("face").latest_visuals():
                pg.image(path.relative_to(root), f"face stage: {path.stem.split('_', 1)[1]}",
                         "train the face stage in notebook 02")
            pg.link(run.web_page, "all training visuals, newest first")
        with section(id="step3"):
            h2("Step 3: cross-validation")
            metrics_path = root / run.test.metrics
            if metrics_path.exists():
                try:
                    metrics_tables(json.loads(metrics_path.read_text()))
                except (json.JSONDecodeError, TypeError, AttributeError) as exc:
                    pg.missing(f"{run.test.metrics} is unreadable ({exc})", "re-run notebook 03")
            else:
                pg.missing("metrics", "run notebook 03")
            pg.image(run.test.metrics_plot, "per-sample metric distributions", "run notebook 03")
            pg.link(run.test.page, "every held-out sample: input, generated, real, nearest neighbour")
        with section(id="step4"):
            h2("Step 4: pose transfer")
            pg.video(out.video, "the target dancing the source's moves", "run notebook 04")
            pg.video(out.side_by_side, "source | pose | generated", "run notebook 04")
            pg.image(out.gif, "preview GIF", "run notebook 04")
            pg.link(out.page, "transfer frames page")
            if pg.exists(out.export.page):
                pg.link(out.export.page, "the puppet page: the exported character, run by your browser")
                p("The page runs its model with WebAssembly, which browsers refuse on file:// pages: serve the "
                  f"folder (python -m http.server -d {out.export.dir} 8000) and open port 8000 of 127.0.0.1. "
                  f"The ONNX models and export.json are in {out.export.dir}.")
            else:
                pg.missing("the exported character (ONNX and the puppet page)", "run notebook 04 with export=True")
        with section(id="step5"):
            h2("Step 5: how the generator learns")
            pg.image(learning.learning_grid, "generated frames over the first iterations", "run notebook 05")
            pg.image(learning.learning_gif, "the same, animated", "run notebook 05")
        with section(id="notebooks"):
            h2("Executed notebooks")
            done = [n for n in NOTEBOOKS if pg.exists(f"{RESULTS}/notebooks/{n}.ipynb")]
            if done:
                with ul():
                    for n in done:
                        li(a(n, href=pg.rel(f"{RESULTS}/notebooks/{n}.ipynb")))
            else:
                pg.missing("executed notebooks", "run `make demo`")
    return doc.render()


def write_report(root: str | Path, name: str = "demo", page: str | Path = "results/index.html") -> Path:
    """Write :func:`build_report`'s page to ``root/page`` atomically; returns its path."""
    out = Path(root) / page
    atomic_write_text(out, build_report(root, name, page))
    return out

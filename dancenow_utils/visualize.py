"""Figures, grids and HTML pages: what a person would rather see than read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from dancenow_utils.io_utils import atomic_path, atomic_write_text, read_jsonl


def plot_losses(log_path: str | Path, out_path: str | Path | None = None, title: str = "", close: bool = False):
    """Loss curves by name from ``loss_log.jsonl``: generator terms left, discriminator right (``close``: free the
    figure once saved, for scripts that make many)."""
    import matplotlib.pyplot as plt

    rows = read_jsonl(log_path)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    if rows:
        x = [r["iteration"] for r in rows]
        for ax, keys in ((axes[0], ("G_GAN", "G_GAN_Feat", "G_VGG")), (axes[1], ("D_real", "D_fake"))):
            for k in keys:
                if any(r.get(k) for r in rows):
                    ax.plot(x, [r.get(k, np.nan) for r in rows], label=k, lw=1.2)
            ax.set_xlabel("iteration")
            ax.legend(loc="upper right")
            ax.grid(alpha=0.3)
    axes[0].set_title("generator losses")
    axes[1].set_title("discriminator losses")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if out_path:
        save_figure(fig, out_path)
    if close:
        plt.close(fig)
    return fig


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png")


def label(img: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``img`` with ``text`` in the top-left corner (outlined, readable on any background)."""
    out = np.ascontiguousarray(img).copy()
    scale = max(0.35, img.shape[0] / 400)
    (text_w, text_h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x1, y1 = min(out.shape[1], text_w + 8), min(out.shape[0], text_h + base + 6)
    out[:y1, :x1] = (out[:y1, :x1] * 0.35).astype(np.uint8)  # a dark box keeps the text readable on any frame
    cv2.putText(out, text, (4, 3 + text_h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def grid(rows: Sequence[Sequence[np.ndarray]], pad: int = 2) -> np.ndarray:
    """Tile equally sized RGB images into rows and columns with a white gap."""
    h, w = rows[0][0].shape[:2]
    ncol = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + pad) - pad, ncol * (w + pad) - pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            if img.shape[:2] != (h, w):
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            out[i * (h + pad): i * (h + pad) + h, j * (w + pad): j * (w + pad) + w] = img
    return out


def hstack(images: Sequence[np.ndarray], height: int | None = None, pad: int = 2) -> np.ndarray:
    """RGB images side by side at one ``height`` (default: the first one's), each keeping its aspect ratio,
    with a white gap: for images of different sizes, which :func:`grid` would stretch."""
    height = height or images[0].shape[0]
    resized = []
    for img in images:
        h, w = img.shape[:2]
        if h != height:
            interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
            img = cv2.resize(img, (max(1, round(w * height / h)), height), interpolation=interp)
        resized.append(img)
    out = np.full((height, sum(i.shape[1] for i in resized) + pad * (len(resized) - 1), 3), 255, np.uint8)
    x = 0
    for img in resized:
        out[:, x: x + img.shape[1]] = img
        x += img.shape[1] + pad
    return out


def overlay(frame: np.ndarray, stick: np.ndarray, alpha: float = 0.85) -> np.ndarray:
    """Draw a stick-figure image (black background) over a frame."""
    mask = stick.max(axis=2, keepdims=True) > 20
    return np.where(mask, (alpha * stick + (1 - alpha) * frame).astype(np.uint8), frame)


def image_table_page(path: str | Path, title: str, rows: Sequence[tuple[str, Sequence[tuple[str, str]]]],
                     width: int = 256, note: str = "") -> None:
    """An HTML page (dominate): one header per row and its images with captions; image paths relative to the page."""
    import dominate
    from dominate.tags import h1, h3, img, p, table, td, tr

    doc = dominate.document(title=title)
    with doc:
        h1(title)
        if note:
            p(note)
        for heading, cells in rows:
            h3(heading)
            with table(style="table-layout: fixed;"), tr():
                for caption, src in cells:
                    with td(style="word-wrap: break-word; text-align: center;", valign="top"):
                        img(src=src, style=f"width:{width}px")
                        p(caption)
    atomic_write_text(path, doc.render())


def show(img: np.ndarray, title: str = "", figsize: tuple[float, float] = (10, 4)) -> None:
    """Display an RGB image in a notebook with matplotlib (a static figure, kept by papermill)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    ax.imshow(img)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    plt.show()


def image_browser(count: int, render, description: str = "frame", width: int = 640):
    """A slider over ``count`` images, ``render(i)`` giving the RGB image of position ``i`` (made on demand).

    Built from an ``IntSlider`` and an ``Image`` widget only. ``ipywidgets.interact`` routes output through an
    Output widget, which can deadlock headless execution (papermill/nbclient); this cannot.
    """
    import ipywidgets as widgets

    def png(i: int) -> bytes:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(render(i)), cv2.COLOR_RGB2BGR))
        return buf.tobytes()

    slider = widgets.IntSlider(value=0, min=0, max=max(0, count - 1), step=1, description=description)
    image = widgets.Image(value=png(0) if count else b"", format="png", width=width)
    slider.observe(lambda change: setattr(image, "value", png(change["new"])), names="value")
    return widgets.VBox([slider, image])

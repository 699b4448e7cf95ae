"""Small executed outputs for the committed notebooks, so a code host shows their figures.

``python tools/build_notebooks.py --execute`` (``make notebook-outputs``) runs the five notebooks on a small demo
and copies each code cell's outputs into the notebook built from ``tools/build_notebooks.py``, slimmed by
:func:`slim_outputs`: pictures downscaled and stored as JPEG (GIFs stay animated, downscaled), widgets (which need a
running kernel), stderr (progress bars, warnings) and large embedded videos dropped, long text shortened. The cells'
sources stay exactly the built ones: :func:`strip_outputs` gives back the notebook ``build_notebooks.render`` writes,
which ``tests/test_notebooks.py`` checks.
"""

from __future__ import annotations

import base64
import copy
import io

import nbformat
from PIL import Image, ImageSequence

IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def strip_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` without outputs and execution counts: its source, as ``build_notebooks.render`` writes it."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return out


def _downscaled(data: bytes, max_width: int):

    img = Image.open(io.BytesIO(data))
    if img.width > max_width:
        img = img.resize((max_width, max(1, round(img.height * max_width / img.width))), Image.Resampling.LANCZOS)
    return img


def _jpeg(data: bytes, max_width: int, quality: int) -> str:

    img = _downscaled(data, max_width)
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        img = Image.new("RGB", rgba.size, (255, 255, 255))
        img.paste(rgba, mask=rgba.split()[3])
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality, optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _gif(data: bytes, max_width: int, max_bytes: int, colors: int = 64) -> str | None:
    """The GIF downscaled to ``max_width`` with a ``colors``-colour palette per frame (generated frames are noisy:
    fewer colours compress far better), every frame kept, then every other one until it fits ``max_bytes``; None
    when even one frame does not fit."""
    src = Image.open(io.BytesIO(data))
    frames = [f.convert("RGB") for f in ImageSequence.Iterator(src)]
    if frames[0].width > max_width:
        size = (max_width, max(1, round(frames[0].height * max_width / frames[0].width)))
        frames = [f.resize(size, Image.Resampling.LANCZOS) for f in frames]
    frames = [f.quantize(colors=colors, method=Image.Quantize.MEDIANCUT) for f in frames]
    duration = src.info.get("duration", 100)
    step = 1
    while True:
        keep = frames[::step]
        buf = io.BytesIO()
        keep[0].save(buf, format="GIF", save_all=True, append_images=keep[1:], duration=duration * step, loop=0,
                     optimize=True)
        if buf.tell() <= max_bytes:
            return base64.b64encode(buf.getvalue()).decode("ascii")
        if len(keep) == 1:
            return None
        step *= 2


def _shorten(text: str, max_lines: int) -> str:
    lines = text.splitlines(keepends=True)
    if len(lines) <= max_lines:
        return text
    return "".join(lines[:max_lines]) + f"... ({len(lines) - max_lines} more lines, not kept in the saved notebook)\n"


def slim_output(output: nbformat.NotebookNode, max_width: int = 720, quality: int = 72,
                max_gif_width: int = 512, max_gif_bytes: int = 500_000, max_html_bytes: int = 400_000,
                max_lines: int = 40) -> nbformat.NotebookNode | None:
    """One output made small enough to commit, or None to drop it (see the module docstring). Errors are kept:
    a notebook that failed must not be committed (:func:`merge_outputs` refuses it)."""
    kind = output.get("output_type")
    if kind == "stream":
        if output.get("name") != "stdout":
            return None
        out = copy.deepcopy(output)
        out.text = _shorten(out.text, max_lines)
        return out
    if kind not in ("display_data", "execute_result"):
        return copy.deepcopy(output)
    data = dict(output.get("data", {}))
    if WIDGET_MIME in data:
        return None  # a widget needs a running kernel; its text fallback ("VBox(children=...)") says nothing
    metadata = {}
    if "image/gif" in data:
        small = _gif(base64.b64decode(data["image/gif"]), max_gif_width, max_gif_bytes)
        data = {"image/gif": small, "text/plain": data.get("text/plain", "<animation>")} if small else {}
    elif "image/png" in data or "image/jpeg" in data:
        mime = "image/png" if "image/png" in data else "image/jpeg"
        jpeg = _jpeg(base64.b64decode(data[mime]), max_width, quality)
        data = {"image/jpeg": jpeg, "text/plain": data.get("text/plain", "<image>")}
    elif "text/html" in data and len(data["text/html"]) > max_html_bytes:
        data = {}  # e.g. an embedded video too large to commit
    elif "text/plain" in data:
        data["text/plain"] = _shorten(data["text/plain"], max_lines)
    if not data:
        return None
    out = copy.deepcopy(output)
    out.data = data
    out.metadata = metadata
    return out


def merge_outputs(built: nbformat.NotebookNode, executed: nbformat.NotebookNode,
                  **slim) -> nbformat.NotebookNode:
    """``built`` (the notebook as ``build_notebooks`` writes it) with the slimmed outputs of ``executed`` (the
    same notebook run by papermill, whose injected-parameters cell is skipped). Refuses a notebook whose cells
    differ from ``built`` or which holds an error."""
    ran = [c for c in executed.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    if [(c.cell_type, c.source) for c in ran] != [(c.cell_type, c.source) for c in built.cells]:
        raise ValueError("the executed notebook's cells differ from the built one; rebuild and run it again")
    out = copy.deepcopy(built)
    for cell, done in zip(out.cells, ran):
        if cell.cell_type != "code":
            continue
        for o in done.get("outputs", []):
            if o.get("output_type") == "error":
                raise ValueError(f"a cell failed ({o.get('ename')}: {o.get('evalue')}); fix it before committing "
                                 f"outputs:\n{cell.source}")
        cell.outputs = [s for s in (slim_output(o, **slim) for o in done.get("outputs", [])) if s is not None]
        cell.execution_count = done.get("execution_count")
    return out


def image_outputs(nb: nbformat.NotebookNode) -> int:
    """How many outputs of ``nb`` are pictures (what a code host shows)."""
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if any(m in o.get("data", {}) for m in IMAGE_MIMES))

"""Committed notebook outputs are small, show pictures on a code host, and never change a cell's source."""

from __future__ import annotations

import base64
import io
import sys

import nbformat
import numpy as np
import pytest
from PIL import Image

from dancenow_utils.notebook.saved_outputs import image_outputs, merge_outputs, slim_output, strip_outputs
from tests.notebook_helper import ROOT


def _png(width: int, height: int) -> str:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 4), np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _gif(width: int, frames: int) -> str:
    rng = np.random.default_rng(1)
    imgs = [Image.fromarray(rng.integers(0, 255, (width // 2, width, 3), np.uint8)) for _ in range(frames)]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=100, loop=0)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _display(data: dict) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("display_data", data=data, metadata={"image/png": {"width": 1400}})


def test_pictures_shrink_and_noise_goes():
    picture = slim_output(_display({"image/png": _png(1400, 700), "text/plain": "<Figure>"}), max_width=700)
    img = Image.open(io.BytesIO(base64.b64decode(picture.data["image/jpeg"])))
    assert img.format == "JPEG" and img.size == (700, 350) and "image/png" not in picture.data
    assert picture.metadata == {}
    gif = slim_output(_display({"image/gif": _gif(600, 6)}), max_gif_width=200, max_gif_bytes=10**7)
    anim = Image.open(io.BytesIO(base64.b64decode(gif.data["image/gif"])))
    assert anim.width == 200 and anim.n_frames == 6  # downscaled, still animated
    widget = _display({"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "VBox()"})
    assert slim_output(widget) is None
    assert slim_output(nbformat.v4.new_output("stream", name="stderr", text="progress 10%\r")) is None
    long = slim_output(nbformat.v4.new_output("stream", name="stdout", text="line\n" * 100), max_lines=5)
    assert long.text.count("\n") == 6 and "95 more lines" in long.text
    big_video = _display({"text/html": "<video>" + "x" * 1000 + "</video>"})
    assert slim_output(big_video, max_html_bytes=500) is None
    assert slim_output(big_video, max_html_bytes=5000).data["text/html"].startswith("<video>")


def test_merge_keeps_the_built_sources_and_refuses_failures():
    sys.path.insert(0, str(ROOT / "tools"))
    import build_notebooks

    name = "03_cross_validation.ipynb"
    built = build_notebooks.build(name)
    executed = build_notebooks.build(name)
    params = [i for i, c in enumerate(executed.cells) if "parameters" in c.metadata.get("tags", [])][0]
    injected = nbformat.v4.new_code_cell("max_samples = 3")
    injected.metadata["tags"] = ["injected-parameters"]
    executed.cells.insert(params + 1, injected)
    last = executed.cells[-2]
    assert last.cell_type == "code"
    last.outputs = [_display({"image/png": _png(64, 64), "text/plain": "<Figure>"})]
    last.execution_count = 7
    merged = merge_outputs(built, executed)
    assert image_outputs(merged) == 1 and merged.cells[-2].execution_count == 7
    assert nbformat.writes(strip_outputs(merged)) + "\n" == build_notebooks.render(name)
    last.outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[]))
    with pytest.raises(ValueError, match="boom"):
        merge_outputs(built, executed)
    executed.cells[-2].source += "\n# edited"
    with pytest.raises(ValueError, match="differ"):
        merge_outputs(built, executed)

"""The puppet page: the exported character in a browser, no Python needed (issue 26).

:func:`write_puppet_page` writes into an export folder (:class:`~dancenow_utils.layout.ExportLayout`), beside
``model.onnx``:

- ``index.html``: sliders for the puppet's joints (the same joints, pivots and rotations as
  :mod:`dancenow_utils.transfer.puppet`), a training-pose slider, presets; the page draws the stick figure itself,
  with the colours, limb order, widths and dot sizes of :mod:`dancenow_utils.pose.render` (the widths from the
  person's height, as there), resizes it to the generator's size as training does (area averaging when
  shrinking, bilinear when enlarging), and runs the generator with onnxruntime-web (WebAssembly, one thread);
- ``pose.json``: the target's training poses (keypoints in the dataset's image pixels), the drawing settings and
  the drawing tables (pairs, colours), the joints and presets;
- ``ort/``: onnxruntime-web's files (:mod:`dancenow_utils.transfer.ort_web`), so the page works offline.

Browsers do not run WebAssembly from ``file://`` pages: serve the folder, e.g.
``python -m http.server -d results/demo_export 8000`` and open http://127.0.0.1:8000/. The face stage is not run
in the page (the first frame is the main generator's, as :class:`~dancenow_utils.models.inference.Generator`
draws it without keypoints). ``window.puppet`` exposes ``ready``, ``setAngles``, ``usePose``, ``frameRGB``,
``poseRGB``, ``generate`` (the model on a given
stick figure) and ``stats`` for tests and benchmarks.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from dancenow_utils.io_utils import atomic_write_text, write_json
from dancenow_utils.layout import ExportLayout
from dancenow_utils.models.generate import input_names
from dancenow_utils.models.inference import Generator
from dancenow_utils.pose.formats import (
    BODY_25_COLORS,
    BODY_25_PAIRS,
    COCO_18_COLORS,
    COCO_18_PAIRS,
    COCO_18_TO_BODY_25,
    HAND_COLORS,
    HAND_PAIRS,
    joint,
)
from dancenow_utils.pose.keypoints import MIN_CONF, Person
from dancenow_utils.transfer.ort_web import SCRIPT, VERSION, vendor
from dancenow_utils.transfer.puppet import JOINTS, LABELS, PIVOTS, PRESETS, Puppet

MAX_POSES = 40  # training poses the page offers (evenly spaced, the puppet's starting pose among them)


def _points(a: np.ndarray | None) -> list[list[float]] | None:
    return None if a is None else [[float(v) for v in row] for row in np.asarray(a, np.float32)]


def _person(p: Person) -> dict:
    return {"body": _points(p.body), "face": _points(p.face), "left_hand": _points(p.left_hand),
            "right_hand": _points(p.right_hand)}


def page_data(puppet: Puppet, name: str = "", max_poses: int = MAX_POSES) -> dict:
    """What ``pose.json`` holds: the poses, how to draw them and what the sliders turn."""
    gen, s = puppet.gen, puppet.settings
    start = next(i for i, p in enumerate(puppet.poses) if p is puppet.base)
    pick = sorted(set(np.linspace(0, len(puppet.poses) - 1, min(max_poses, len(puppet.poses))).round().astype(int))
                  | {start})
    body25 = s.pose_format == "BODY_25"
    return {
        "format": 1, "name": name, "inputs": input_names(gen.cfg), "temporal": bool(gen.cfg.temporal),
        "output_nc": gen.cfg.output_nc, "generator_size": list(gen.size), "settings": s.to_dict(),
        "face_stage": gen.face is not None, "onnxruntime_web": VERSION,
        "drawing": {"min_conf": MIN_CONF, "pairs": BODY_25_PAIRS if body25 else COCO_18_PAIRS,
                    "colors": BODY_25_COLORS if body25 else COCO_18_COLORS,
                    "coco_from_body25": None if body25 else list(COCO_18_TO_BODY_25),
                    "hand_pairs": HAND_PAIRS, "hand_colors": HAND_COLORS, "face_color": [255, 255, 255]},
        "joints": [{"name": n, "label": LABELS[n], "pivot": joint(PIVOTS[n]), "moved": [joint(m) for m in moved],
                    "part": part} for n, (moved, part) in JOINTS.items()],
        "presets": PRESETS,
        "poses": [_person(puppet.poses[i]) for i in pick],
        "start": pick.index(start),
    }


def write_puppet_page(gen: Generator, layout: ExportLayout, keypoints_dir: str | Path,
                      ort_web: str | Path | None = None, name: str = "") -> Path:
    """Write the page, its poses and the vendored runtime into ``layout`` (its ``model.onnx`` is the export's);
    returns the page. ``keypoints_dir``: the target's training keypoints (``dataset/train_keypoints``)."""
    folder = Path(keypoints_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of training keypoints for the puppet page; give the "
                                "target's keypoints (notebook 01's dataset/train_keypoints), or page=False")
    puppet = Puppet.from_dataset(gen, folder)
    vendor(layout.runtime, ort_web)
    name = name or gen.path.parent.name
    write_json(layout.poses, page_data(puppet, name))
    atomic_write_text(layout.page, PAGE.replace("__TITLE__", html.escape(name)).replace("__SCRIPT__", SCRIPT))
    return layout.page


PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Pose puppet: __TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
  h1 { font-size: 1.4em; margin: 0 0 .3em; }
  .pictures { display: flex; gap: 1em; flex-wrap: wrap; margin: 1em 0; }
  figure { margin: 0; }
  figcaption { font-size: .9em; color: #555; }
  canvas.view { width: 320px; image-rendering: pixelated; background: #000; border: 1px solid #ccc; }
  .sliders { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: .3em 1.5em;
             max-width: 900px; }
  .sliders label { display: flex; align-items: center; gap: .5em; }
  .sliders label span { width: 7em; }
  .sliders input[type=range] { flex: 1; }
  .sliders output { width: 3.5em; text-align: right; font-variant-numeric: tabular-nums; }
  #status { color: #555; }
  #error { color: #b00; white-space: pre-wrap; }
  button { margin: .2em .3em .2em 0; }
</style>
</head>
<body data-state="loading">
<h1>Pose puppet: __TITLE__</h1>
<p>Bend the joints: each slider turns a joint (and everything beyond it) from the training pose, in degrees,
counter-clockwise on the screen. The stick figure is drawn here the way the training poses were, and the trained
generator (<code>model.onnx</code>) draws the character, in this browser, with ONNX Runtime Web.</p>
<p id="status">Loading the model…</p>
<p id="error"></p>
<div class="pictures">
  <figure><canvas id="pose" class="view"></canvas><figcaption>pose (the generator's input)</figcaption></figure>
  <figure><canvas id="frame" class="view"></canvas><figcaption>generated</figcaption></figure>
</div>
<div><label>training pose <input id="poseIndex" type="range" min="0" max="0" value="0"></label>
  <output id="poseIndexOut"></output></div>
<div id="presets"></div>
<div class="sliders" id="sliders"></div>
<p><button id="reset">reset angles</button></p>
<script src="ort/__SCRIPT__"></script>
<script>
"use strict";
(() => {
  const $ = id => document.getElementById(id);
  const state = {data: null, session: null, angles: {}, pose: 0, busy: false, pending: false,
                 stats: {frames: 0, lastMs: 0, totalMs: 0, meanMs: 0}, poseRGB: null, frameRGB: null};
  let resolveReady, rejectReady;
  const ready = new Promise((res, rej) => { resolveReady = res; rejectReady = rej; });
  ready.catch(() => {});

  // round half to even, as Python's round() and numpy do
  function rint(v) {
    const f = Math.floor(v), d = v - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return f % 2 === 0 ? f : f + 1;
  }
  const rgb = c => `rgb(${c[0]},${c[1]},${c[2]})`;
  const copy = p => ({body: p.body.map(r => r.slice()), face: p.face && p.face.map(r => r.slice()),
                      left_hand: p.left_hand && p.left_hand.map(r => r.slice()),
                      right_hand: p.right_hand && p.right_hand.map(r => r.slice())});

  // dancenow_utils.transfer.puppet.pose_person: parents turn first, a joint carries everything beyond it
  function posePerson(base, angles) {
    const D = state.data, out = copy(base);
    for (const j of D.joints) {
      const a = angles[j.name] || 0;
      const pivot = out.body[j.pivot];
      if (!a || pivot[2] <= D.drawing.min_conf) continue;
      const t = a * Math.PI / 180, c = Math.cos(t), s = Math.sin(t), px = pivot[0], py = pivot[1];
      const groups = [[out.body, j.moved]];
      const extra = j.part ? out[j.part] : null;
      if (extra) groups.push([extra, extra.map((_, i) => i)]);
      for (const [arr, rows] of groups) {
        for (const r of rows) {
          if (!(arr[r][2] > 0)) continue;
          const dx = arr[r][0] - px, dy = arr[r][1] - py;
          arr[r][0] = Math.fround(c * dx + s * dy + px);
          arr[r][1] = Math.fround(-s * dx + c * dy + py);
        }
      }
    }
    return out;
  }

  // dancenow_utils.pose.render: limb width 2.5 % of the body's height, CMU colours, a limb takes its end's colour
  function limbWidth(body, imageHeight) {
    const ys = body.filter(p => p[2] > state.data.drawing.min_conf).map(p => p[1]);
    const h = ys.length >= 2 ? Math.fround(Math.max(...ys) - Math.min(...ys)) : 0;
    return Math.max(1, rint((h || imageHeight * 0.5) * 0.025));
  }
  function drawSkeleton(ctx, pts, pairs, colors, width, radius) {
    const minConf = state.data.drawing.min_conf;
    ctx.lineCap = "round";
    ctx.lineWidth = width;
    for (const [a, b] of pairs) {
      if (pts[a][2] > minConf && pts[b][2] > minConf) {
        ctx.strokeStyle = rgb(colors[b]);
        ctx.beginPath();
        ctx.moveTo(rint(pts[a][0]) + 0.5, rint(pts[a][1]) + 0.5);
        ctx.lineTo(rint(pts[b][0]) + 0.5, rint(pts[b][1]) + 0.5);
        ctx.stroke();
      }
    }
    if (radius > 0) {
      pts.forEach((p, i) => {
        if (p[2] > minConf) {
          ctx.fillStyle = rgb(colors[i]);
          ctx.beginPath();
          ctx.arc(rint(p[0]) + 0.5, rint(p[1]) + 0.5, radius, 0, 2 * Math.PI);
          ctx.fill();
        }
      });
    }
  }
  function renderPose(person) {
    const D = state.data, S = D.settings, dr = D.drawing;
    const canvas = document.createElement("canvas");
    canvas.width = S.width; canvas.height = S.height;
    const ctx = canvas.getContext("2d", {willReadFrequently: true});
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, S.width, S.height);
    const w = limbWidth(person.body, S.height);
    const pts = dr.coco_from_body25 ? dr.coco_from_body25.map(i => person.body[i]) : person.body;
    drawSkeleton(ctx, pts, dr.pairs, dr.colors, w, w);
    if (S.draw_hands) {
      for (const hand of [person.left_hand, person.right_hand]) {
        if (hand) {
          const hw = Math.max(1, Math.floor(w / 2));
          drawSkeleton(ctx, hand, dr.hand_pairs, dr.hand_colors, hw, Math.max(1, rint(hw * 2 / 3)));
        }
      }
    }
    if (S.draw_face && person.face) {
      ctx.fillStyle = rgb(dr.face_color);
      const r = Math.max(1, Math.floor(w / 3));
      for (const [x, y, c] of person.face) {
        if (c > dr.min_conf) { ctx.beginPath(); ctx.arc(rint(x) + 0.5, rint(y) + 0.5, r, 0, 2 * Math.PI); ctx.fill(); }
      }
    }
    return ctx.getImageData(0, 0, S.width, S.height);
  }

  // dancenow_utils.data.datasets.resized: area averaging when shrinking, bilinear when enlarging (OpenCV's)
  function areaWeights(n, m) {  // for each of m outputs: [[source index, weight]...] over a span of n/m inputs
    const scale = n / m, out = [];
    for (let d = 0; d < m; d++) {
      const a = d * scale, b = a + scale, list = [];
      for (let s = Math.floor(a); s < Math.min(n, Math.ceil(b - 1e-9)); s++) {
        const w = Math.min(b, s + 1) - Math.max(a, s);
        if (w > 1e-9) list.push([s, w / scale]);
      }
      out.push(list);
    }
    return out;
  }
  function linearWeights(n, m) {
    const scale = n / m, out = [];
    for (let d = 0; d < m; d++) {
      let x = (d + 0.5) * scale - 0.5, s = Math.floor(x), f = x - s;
      if (s < 0) { s = 0; f = 0; }
      if (s >= n - 1) { s = n - 1; f = 0; }
      out.push(f ? [[s, 1 - f], [s + 1, f]] : [[s, 1]]);
    }
    return out;
  }
  function resized(img, w, h) {  // RGB bytes (length w*h*3) of an ImageData
    const W = img.width, H = img.height, src = img.data;
    if (W === w && H === h) {
      const out = new Uint8Array(w * h * 3);
      for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) out[3 * i + c] = src[4 * i + c];
      return out;
    }
    const shrink = H > h;
    const wx = shrink ? areaWeights(W, w) : linearWeights(W, w), wy = shrink ? areaWeights(H, h) : linearWeights(H, h);
    const out = new Uint8Array(w * h * 3), acc = new Float64Array(3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        acc.fill(0);
        for (const [sy, fy] of wy[y]) for (const [sx, fx] of wx[x]) {
          const k = 4 * (sy * W + sx), f = fy * fx;
          acc[0] += f * src[k]; acc[1] += f * src[k + 1]; acc[2] += f * src[k + 2];
        }
        for (let c = 0; c < 3; c++) out[3 * (y * w + x) + c] = Math.min(255, Math.max(0, rint(acc[c])));
      }
    }
    return out;
  }

  function show(canvas, rgbBytes, w, h) {
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    for (let i = 0; i < w * h; i++) {
      img.data[4 * i] = rgbBytes[3 * i]; img.data[4 * i + 1] = rgbBytes[3 * i + 1];
      img.data[4 * i + 2] = rgbBytes[3 * i + 2]; img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  async function generate(poseBytes) {
    const D = state.data, [w, h] = D.generator_size, n = w * h;
    const x = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) x[c * n + i] = poseBytes[3 * i + c] / 127.5 - 1;
    const feeds = {pose: new ort.Tensor("float32", x, [1, 3, h, w])};
    if (D.temporal) {  // a single frame: the previous one is zeros, as before the first frame of a sequence
      feeds.previous = new ort.Tensor("float32", new Float32Array(D.output_nc * n), [1, D.output_nc, h, w]);
    }
    const out = (await state.session.run(feeds)).frame.data;
    const bytes = new Uint8Array(3 * n);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) {
        const v = Math.min(1, Math.max(-1, out[c * n + i]));
        bytes[3 * i + c] = rint((v + 1) * 127.5);
      }
    }
    return bytes;
  }

  async function redraw() {
    if (state.busy) { state.pending = true; return; }
    state.busy = true;
    try {
      do {
        state.pending = false;
        const D = state.data, [w, h] = D.generator_size;
        const person = posePerson(D.poses[state.pose], state.angles);
        const poseBytes = resized(renderPose(person), w, h);
        show($("pose"), poseBytes, w, h);
        const t = performance.now();
        const frame = await generate(poseBytes);
        const ms = performance.now() - t;
        show($("frame"), frame, w, h);
        state.poseRGB = poseBytes; state.frameRGB = frame;
        const st = state.stats;
        st.frames += 1; st.lastMs = ms; st.totalMs += ms; st.meanMs = st.totalMs / st.frames;
        $("status").textContent = `generator ${ms.toFixed(0)} ms (mean ${st.meanMs.toFixed(0)} ms over ` +
          `${st.frames} frames: ${(1000 / st.meanMs).toFixed(1)} frames per second)` +
          (D.face_stage ? "; the face stage (face.onnx) is not run here" : "");
      } while (state.pending);
    } finally {
      state.busy = false;
    }
  }
  const idle = () => new Promise(res => {
    const check = () => (state.busy || state.pending) ? setTimeout(check, 5) : res();
    check();
  });

  function buildControls() {
    const D = state.data;
    for (const j of D.joints) {
      const label = document.createElement("label");
      label.innerHTML = `<span></span><input type="range" min="-180" max="180" step="5" value="0"><output>0°</output>`;
      label.querySelector("span").textContent = j.label;
      const input = label.querySelector("input"), out = label.querySelector("output");
      input.id = "joint-" + j.name; input.dataset.joint = j.name;
      input.addEventListener("input", () => {
        state.angles[j.name] = Number(input.value); out.textContent = input.value + "°"; redraw();
      });
      $("sliders").appendChild(label);
    }
    const poseIndex = $("poseIndex");
    poseIndex.max = D.poses.length - 1; poseIndex.value = D.start; $("poseIndexOut").textContent = D.start;
    poseIndex.addEventListener("input", () => {
      state.pose = Number(poseIndex.value); $("poseIndexOut").textContent = poseIndex.value; redraw();
    });
    for (const [title, angles] of Object.entries(D.presets)) {
      const b = document.createElement("button");
      b.textContent = title;
      b.addEventListener("click", () => setSliders(angles));
      $("presets").appendChild(b);
    }
    $("reset").addEventListener("click", () => setSliders({}));
  }
  function setSliders(angles) {
    state.angles = {};
    for (const j of state.data.joints) {
      const input = $("joint-" + j.name), v = angles[j.name] || 0;
      input.value = v; input.nextElementSibling.textContent = v + "°";
      if (v) state.angles[j.name] = v;
    }
    return redraw();
  }

  async function start() {
    if (location.protocol === "file:") {
      throw new Error("Browsers do not run this page from a file: serve its folder, e.g.\n" +
                      "  python -m http.server -d <this folder> 8000\nand open http://127.0.0.1:8000/");
    }
    if (typeof ort === "undefined") throw new Error("ort/__SCRIPT__ did not load (is the export's ort/ folder there?)");
    ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
    ort.env.wasm.numThreads = 1;
    const response = await fetch("pose.json");
    if (!response.ok) throw new Error(`pose.json: HTTP ${response.status}`);
    state.data = await response.json();
    state.pose = state.data.start;
    state.session = await ort.InferenceSession.create("model.onnx", {executionProviders: ["wasm"],
                                                                      graphOptimizationLevel: "all"});
    buildControls();
    await redraw();
    document.body.dataset.state = "ready";
    resolveReady();
  }

  window.puppet = {
    ready, stats: state.stats,
    setAngles: async angles => { await idle(); await setSliders(angles); await idle(); },
    usePose: async i => { await idle(); state.pose = i; $("poseIndex").value = i; await redraw(); await idle(); },
    frameRGB: () => Array.from(state.frameRGB || []),
    poseRGB: () => Array.from(state.poseRGB || []),
    size: () => state.data.generator_size,
    generate: async rgbBytes => Array.from(await generate(Uint8Array.from(rgbBytes))),  // a given stick figure
    idle,
  };
  start().catch(err => {
    document.body.dataset.state = "error";
    $("status").textContent = "";
    $("error").textContent = String(err && err.message || err);
    console.error(err);
    rejectReady(err);
  });
})();
</script>
</body>
</html>
"""

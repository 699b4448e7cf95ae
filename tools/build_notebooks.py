"""Write notebooks/*.ipynb from the cell lists below (the readable source of the notebooks).

Run ``python tools/build_notebooks.py`` after editing; ``tests/test_notebooks.py`` checks the committed notebooks
match this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SETUP = """%matplotlib inline
from IPython.display import display, Image
from dancenow_utils.pipeline import work_in_project_root
from dancenow_utils.visualize import show
work_in_project_root()  # under `make lab` Jupyter starts in notebooks/: data and checkpoints belong one level up
"""

# The first cell of every notebook. In Jupyter, `make lab` or papermill dancenow is installed and the cell does
# nothing; on Colab (or any fresh runtime) it clones and installs dancenow into the running kernel, without a restart.
BOOTSTRAP = """# Colab or a fresh runtime: install dancenow into this kernel (where installed, this does nothing)
import importlib.util, os, subprocess, sys
REPO_URL = os.environ.get("DANCENOW_REPO", "")  # the git URL of the dancenow repository this notebook came from
if importlib.util.find_spec("dancenow_utils") is None:
    if not os.path.isdir("dancenow_utils"):
        if not REPO_URL:
            raise RuntimeError("dancenow is not installed in this runtime: set REPO_URL in this cell to the git URL "
                               "of the dancenow repository (where this notebook came from) and run it again")
        if not os.path.isdir("/content/dancenow"):
            subprocess.run(["git", "clone", "-q", "--depth", "1", REPO_URL, "/content/dancenow"], check=True)
        os.chdir("/content/dancenow")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "."], check=True)
    sys.path.insert(0, os.getcwd())  # importable now: an editable install is only seen by new processes
    importlib.invalidate_caches()
"""

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_pose_extraction.ipynb": [
        ("md", """# Step 1: pose extraction

Everybody Dance Now learns to draw one person, the **target**, in any pose. To teach it we need pairs: a frame of
the target and a picture of the pose in that frame. This notebook makes those pairs from a video.

1. **Detect keypoints** in every frame: body (OpenPose's BODY_25 layout), face (70 points) and hands (21 each).
   The default backend is MediaPipe, which runs offline on a CPU. Users of the real OpenPose can import its
   `--write_json` output with `backend="openpose_json"`.
2. **Smooth** them over time with a median over 7 frames (confident detections only), as the paper does, so the
   stick figures do not jitter.
3. **Crop** every frame with one square around all keypoints of the video (no per-frame jitter) and resize it.
4. **Draw** each pose as an OpenPose-style stick figure on black and write aligned pairs:
   `dataset/train_A/<id>.png` (pose) and `dataset/train_B/<id>.png` (frame), plus the keypoints as OpenPose JSON.

With an empty `source` the notebook uses the built-in **demo character**, a procedurally drawn game character, and
also prepares a held-out clip of new moves in `dataset_test/` for cross-validation (notebook 03).
"""),
        ("params", """source = ""            # a video file or a folder of images; empty: the demo character
dataroot = "dataset"
phase = "train"
backend = "mediapipe"  # "mediapipe" | "openpose" | "openpose_json"
weights = ""           # OpenPose body weights (body_pose_model.pth) for the openpose backend
keypoints_dir = ""     # folder of OpenPose JSON files for the openpose_json backend
image_size = 256       # a side, or [width, height] for wide presets (e.g. [512, 256] for edn_global)
pose_format = "BODY_25"  # or "COCO_18"
draw_face = True
draw_hands = True
smooth_window = 7
frame_step = 1
max_frames = 0         # 0: all frames
normalize_to = ""      # a target's keypoint folder, to prepare a transfer source (see notebook 04)
heldout_dataroot = "dataset_test"
demo_dir = "demo_data"
demo_frames = [1000, 150, 300]  # demo clip lengths: training, held-out, source dancer
"""),
        ("code", SETUP + """from dancenow_utils import pipeline
from dancenow_utils.synthetic.demo import DemoPaths
"""),
        ("md", """## Run the extraction

Each run writes into a staging folder and swaps it into place only when it has finished, so an interrupted run
never leaves half a dataset. Frames where nobody (or more than one person) is found are skipped and counted.
"""),
        ("code", """summaries = pipeline.pose_step(
    source, dataroot, phase, heldout_dataroot=heldout_dataroot, demo_dir=demo_dir, demo_frames=tuple(demo_frames),
    backend=backend, weights=weights, keypoints_dir=keypoints_dir, image_size=image_size, pose_format=pose_format,
    draw_face=draw_face, draw_hands=draw_hands, smooth_window=smooth_window, frame_step=frame_step,
    max_frames=max_frames, normalize_to=normalize_to)
for root, summary in summaries.items():
    print(summary)
"""),
        ("md", """## The demo character

When no source is given, the clips come from `dancenow_utils.synthetic`: a character with a star on its shirt
(the original project's failure case) dancing procedurally generated moves. Its contact sheet shows sample frames
with the ground-truth skeletons the extractor is scored against.
"""),
        ("code", """if not source:
    display(Image(filename=str(DemoPaths(demo_dir).contact_sheet), width=900))
"""),
        ("md", """## What the GAN will learn from

Top row: frames with the detected stick figure drawn on top (check that it sits on the body). Bottom row: the
stick figures alone, which are the generator's input. The colours follow OpenPose: red trunk, orange/yellow right
arm, green left arm, green-to-cyan right leg, blue left leg.
"""),
        ("code", """for root in summaries:
    show(pipeline.sample_pairs_figure(root, phase), root, figsize=(14, 5))
"""),
        ("md", "## Browse the frames\n\nIn Jupyter, move the slider to check every pair (a saved notebook shows "
               "the first one; the static figure above is always there)."),
        ("code", "pipeline.frame_browser(dataroot, phase)"),
    ],
    "02_training.ipynb": [
        ("md", """# Step 2: training the pose-to-appearance GAN

The generator (pix2pixHD's global generator) learns to turn a stick figure into a frame of the target. A
multiscale discriminator judges (pose, frame) pairs at two resolutions; the generator is trained to fool it, to
match its internal features on real frames (feature matching), and, when VGG19 weights are available, to match
VGG features (perceptual loss).

Everything the run produces lives in `checkpoints/<name>/`: the config, checkpoints (`latest.pth`, `epoch_N.pth`),
a loss log with named columns, loss curves and a page of visuals. Re-running this notebook **resumes exactly**
where the last run stopped: same weights, optimiser state, learning rate and data order.
"""),
        ("params", """dataroot = "dataset"
name = "demo"
preset = "demo"        # "demo" | "tiny" | "seed" | "edn_global" | "edn_local"
overrides = {}         # any TrainConfig field, e.g. {"niter": 5, "lr": 1e-4}
checkpoints_dir = "checkpoints"
resume = True
device = "auto"        # picks CUDA when present
stage = "global"       # "global" | "local" | "face"
"""),
        ("code", SETUP + """import json
from dancenow_utils.config import make_config
from dancenow_utils.stages import describe_stages, describe_trainer, train_stage
from dancenow_utils import pipeline
"""),
        ("md", "## The configuration\n\nA preset plus your overrides; it is saved beside every checkpoint."),
        ("code", """cfg = make_config(preset, {**overrides, "device": device})
print(json.dumps(cfg.to_dict(), indent=1))
"""),
        ("md", "## The data\n\nPairs from step 1, resized to the config's size."),
        ("code", """show(pipeline.sample_pairs_figure(dataroot, "train"), figsize=(14, 5))
"""),
        ("md", """## Train

The learning rate is constant for `niter` epochs and then decays linearly to zero over `niter_decay` epochs.
Each iteration does one generator step, then one discriminator step.

The full Everybody Dance Now method trains in **stages**, chosen with `stage`:

- `"global"`: the global generator (for a local-enhancer preset such as `edn_local`, at half resolution);
- `"local"`: the local enhancer at full resolution, starting from the global stage's weights;
- `"face"`: a small residual GAN that sharpens the face, with the main generator frozen. Its sizes and schedule
  are the config's `face_*` fields (e.g. `overrides={"face_niter": 4}`), saved in `checkpoints/<name>/face/`.

Every stage is trained by the same trainer, so each one resumes exactly, logs the same named losses and gets the
same page of visuals. Numbered checkpoints (`epoch_<n>_G.pth`) keep only the generator, which is all that
evaluation and transfer read; `latest.pth` keeps everything needed to resume.

With `overrides={"temporal": True}` the generator also sees its previous frame and the discriminator judges pairs
of consecutive frames, which reduces flicker in videos.
"""),
        ("code", """trainer = train_stage(stage, cfg, dataroot, name, checkpoints_dir, resume)
print(describe_trainer(trainer))
print(describe_stages(name, checkpoints_dir))
"""),
        ("md", """## Loss curves and latest visuals

`G_GAN` and `D_real`/`D_fake` should hover around 0.25-0.5 (neither network wins outright); `G_GAN_Feat` and
`G_VGG` should fall as the generated frames approach the real ones. Then: pose input, generated frame and real
frame for fixed training samples (the full history is on `checkpoints/<name>/web/index.html`). For the face stage:
pose, generated, corrected and real face crops.
"""),
        ("code", """for path in pipeline.training_figures(trainer):
    display(Image(filename=str(path)))
"""),
    ],
    "03_cross_validation.ipynb": [
        ("md", """# Step 3: cross-validation on poses the model never saw

A GAN's losses say little about whether the frames look right. Here we generate frames for a **held-out** clip of
the target and compare them with the real frames:

- **SSIM / PSNR** on the whole frame, and **body SSIM** on a box around the body;
- **pose error**: keypoints re-detected on the generated frame against the input pose (does the character really
  take the pose?), with the **detection rate**;
- **flicker**: how much consecutive generated frames change, relative to the real video (1 = as steady);
- the same for a **nearest-neighbour baseline** that returns the training frame with the closest pose. If the GAN
  does not beat it, it has memorised frames rather than learnt to draw.

The evaluation uses whatever stages the checkpoint has (temporal generator, face GAN) and prints which; `face_ssim`
scores the face box the face GAN works on.
"""),
        ("params", """dataroot = "dataset_test"
name = "demo"
which_epoch = "latest"
checkpoints_dir = "checkpoints"
max_samples = 0        # 0: all held-out frames
train_dataroot = "dataset"
"""),
        ("code", SETUP + """import json
from dancenow_utils import pipeline
from dancenow_utils.evaluation import evaluate
from dancenow_utils.layout import RunLayout
"""),
        ("code", """metrics = evaluate(name, dataroot, which_epoch, checkpoints_dir, max_samples, train_dataroot)
print(json.dumps(metrics, indent=1))
"""),
        ("md", "## GAN against retrieval\n\nHigher SSIM is better; lower pose error is better."),
        ("code", """for key in ("ssim", "body_ssim", "psnr", "pose_error_px"):
    print(f"{key:>15}: GAN {metrics[key]}   nearest neighbour {metrics['nn_' + key]}")
display(Image(filename=str(RunLayout(checkpoints_dir, name).test_dir / "metrics.png")))
"""),
        ("md", "## Samples\n\nInput pose, generated frame, ground truth and the nearest training frame. All "
               "samples are on `checkpoints/<name>_test/index.html`."),
        ("code", """show(pipeline.cross_validation_samples(name, checkpoints_dir, n=4),
     "input | generated | ground truth | nearest neighbour", figsize=(9, 9.6))
"""),
    ],
    "04_pose_transfer.ipynb": [
        ("md", """# Step 4: pose transfer

Now the target dances like someone else. The **source** video's poses are extracted with step 1's code, then:

1. **Normalised** onto the target (global pose normalisation): the source may be taller, shorter or stand
   elsewhere in the frame, so its poses are scaled and moved using the ankle positions and heights of both videos.
2. **Smoothed** over time, and drawn in the target's crop.
3. Turned into frames by the generator trained in step 2, in batches.

The results go to `results/<name>/`: frames, `transfer.mp4`, `side_by_side.mp4` (source | pose | generated), a
GIF and an HTML page. A folder holding ready pose images (`test_A`) can be given as `source` instead.
A temporal generator is run frame by frame, each output fed back; a trained face stage corrects every face.
"""),
        ("params", """source = ""             # a source video or image folder; empty: the demo's source dancer
dataroot = "dataset_transfer"
name = "demo"
results_dir = "results"
normalize = True
normalize_method = "project"  # or "edn": Everybody Dance Now's own statistics (README: pose normalisation)
smooth_window = 7
fps = 30
target_keypoints = "dataset/train_keypoints"
which_epoch = "latest"
checkpoints_dir = "checkpoints"
demo_dir = "demo_data"
max_frames = 0
"""),
        ("code", SETUP + """from dancenow_utils import pipeline
from dancenow_utils.transfer import prepare_poses, run_transfer
from dancenow_utils.config import TrainConfig
from dancenow_utils.layout import RunLayout
"""),
        ("md", "## Prepare the source poses\n\nThe stick figures are drawn at the size the generator was trained at, "
               "and the way the target's training poses were drawn (keypoint format, face, hands: the target "
               "dataset's `settings.json`). A model refuses poses drawn another way."),
        ("code", """src, ready = pipeline.resolve_transfer_source(source, dataroot, demo_dir)
cfg = TrainConfig.load(RunLayout(checkpoints_dir, name).config)
poses_dir = src if ready else prepare_poses(src, dataroot, normalize, target_keypoints, smooth_window,
                                            image_size=[cfg.width, cfg.height], max_frames=max_frames,
                                            normalize_method=normalize_method)
print("poses from", poses_dir)
"""),
        ("md", "## Generate the frames and videos"),
        ("code", """result = run_transfer(name, poses_dir, results_dir, source="" if ready else src,
                      which_epoch=which_epoch, checkpoints_dir=checkpoints_dir, fps=fps)
print(f"{result.n_frames} frames -> {result.video}, {result.side_by_side}, {result.gif}")
"""),
        ("md", "## Watch it\n\nSource | normalised pose | generated target."),
        ("code", """display(Image(filename=str(result.gif)))"""),
    ],
    "05_epoch_visualization.ipynb": [
        ("md", """# Step 5: watching the network learn

The original project showed how the generator's output evolves in its first iterations. This notebook
reproduces that figure: it trains a **fresh** model for `iterations` steps and keeps its outputs for a fixed set
of poses every `snapshot_every` steps. First the output is noise, then a silhouette, then colours (the shirt,
trousers), and only later the details (face, star).
"""),
        ("params", """dataroot = "dataset"
name = "Initial_epoch"
preset = "demo"
iterations = 100
snapshot_every = 5
overrides = {}
checkpoints_dir = "checkpoints"
"""),
        ("code", SETUP + """from dancenow_utils.config import make_config
from dancenow_utils.learning import learn_with_snapshots
"""),
        ("code", """cfg = make_config(preset, overrides)
snaps = learn_with_snapshots(cfg, dataroot, name, iterations, snapshot_every, checkpoints_dir=checkpoints_dir)
print(f"{len(snaps.iterations)} snapshots in {snaps.out_dir}")
"""),
        ("md", "## The learning grid\n\nRows are iterations (top: the poses; bottom: the real frames), columns are "
               "samples."),
        ("code", """show(snaps.grid_image(), figsize=(8, 1.6 * (len(snaps.iterations) + 2)))
"""),
        ("md", "## Browse the iterations\n\nA slider in Jupyter; the animated GIF below plays everywhere."),
        ("code", """snaps.browser()"""),
        ("code", """display(Image(filename=str(snaps.gif_path)))"""),
    ],
}


def build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    cells = NOTEBOOKS[name]
    for kind, src in [cells[0], ("code", BOOTSTRAP), *cells[1:]]:
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(src.strip())
        else:
            cell = nbformat.v4.new_code_cell(src.strip())
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
        cell.pop("id", None)
        nb.cells.append(cell)
    nb.nbformat_minor = 4
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name)) + "\n"


def main() -> int:
    out = ROOT / "notebooks"
    out.mkdir(exist_ok=True)
    for name in NOTEBOOKS:
        (out / name).write_text(render(name))
    print(f"wrote {len(NOTEBOOKS)} notebooks to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write notebooks/*.ipynb from the cell lists below (the readable source of the notebooks).

Run ``python tools/build_notebooks.py`` after editing (it keeps the committed notebooks' outputs when the cells
are unchanged); ``python tools/build_notebooks.py --execute`` (``make notebook-outputs``) also runs the five notebooks
on a small demo and stores their slimmed outputs (:mod:`dancenow_utils.notebook.saved_outputs`), so that a code host
shows the figures. ``tests/test_notebooks.py`` checks the committed notebooks' cells match this file exactly. It also
writes README's "Open in Colab" badges from ``dancenow_utils.notebook.colab.REPO_URL``, the one place naming the
repository.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from dancenow_utils.layout import NOTEBOOKS as NOTEBOOK_NAMES
from dancenow_utils.notebook.runner import stderr_to

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dancenow_utils.notebook.colab import REPO_URL, colab_badges  # noqa: E402  (the repository's folder, first)

SETUP = """%matplotlib inline
from IPython.display import Image, display

from dancenow_utils.notebook.colab import work_in_repository
from dancenow_utils.visualize import show

work_in_repository()  # from notebooks/ (`make lab`), or /content after Colab's "Restart session": to the repository
"""

# The first cell of every notebook: where dancenow cannot be imported it clones the repository (REPO_URL, from
# dancenow_utils/notebook/colab.py), then dancenow_utils.notebook.colab.bootstrap installs it into the running
# kernel where needed, restarts only when that changed an imported package (on Colab, never under papermill), moves
# into the repository on Colab and, with KEEP_ON_DRIVE, keeps every data folder on Google Drive. In `make lab` or
# papermill it only checks the install.
BOOTSTRAP = f"""# Colab or a fresh runtime: install dancenow into this kernel (README: "Colab"); elsewhere it checks it
import os
import subprocess
import sys

REPO_URL = os.environ.get("DANCENOW_REPO", "{REPO_URL}")  # a fork: its git URL
KEEP_ON_DRIVE = False  # Colab: True keeps every data folder (datasets, checkpoints, results) on Google Drive
try:
    from dancenow_utils.notebook import colab
except ImportError:  # not installed: the clone here or one level up, else ./dancenow (cloned if missing)
    repo = next((d for d in (".", "..") if os.path.isfile(d + "/dancenow_utils/notebook/colab.py")), "dancenow")
    if not os.path.isdir(repo):
        subprocess.run(["git", "clone", "-q", "--depth", "1", REPO_URL, repo], check=True)
    sys.path.insert(0, os.path.abspath(repo))
    from dancenow_utils.notebook import colab
colab.bootstrap(keep_on_drive=KEEP_ON_DRIVE);
"""

# The end of every notebook's introduction: the outputs committed with it come from a small run.
OUTPUTS_NOTE = """
*The outputs saved in this notebook come from a small run of the demo (`make notebook-outputs`: fewer frames and
training steps than the defaults), so its pictures are rougher than a full run's.*
"""

# the cells of each notebook, in the order (and under the names) of dancenow_utils.layout.NOTEBOOKS
_CELLS: tuple[list[tuple[str, str]], ...] = (
    [  # 01_pose_extraction
        ("md", """# Step 1: pose extraction

Everybody Dance Now learns to draw one person, the **target**, in any pose. To teach it we need pairs: a frame of
the target and a picture of the pose in that frame. This notebook makes those pairs from a video.

1. **Detect keypoints** in every frame: body (OpenPose's BODY_25 layout), face (70 points) and hands (21 each).
   The default backend runs MediaPipe's models (BlazePose) offline on a CPU. Users of the real OpenPose can import its
   `--write_json` output with `backend="openpose_json"`.
2. **Smooth** them over time with a median over 7 frames (confident detections only), as the paper does, so the
   stick figures do not jitter.
3. **Crop** every frame with one square around all keypoints of the video (no per-frame jitter) and resize it.
4. **Draw** each pose as an OpenPose-style stick figure on black and write aligned pairs:
   `dataset/train_A/<id>.png` (pose) and `dataset/train_B/<id>.png` (frame), plus the keypoints as OpenPose JSON.

With an empty `source` the notebook uses the built-in **demo character**, a procedurally drawn game character, and
also prepares a held-out clip of new moves in `dataset_test/` for cross-validation (notebook 03).

After the extraction has run, one frame is taken through each of the four stages, with a figure per stage.
""" + OUTPUTS_NOTE),
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
depth = "none"         # "none" | "order" | "shade": how the stick figure shows which arm is in front
smooth_window = 7
frame_step = 1
max_frames = 0         # 0: all frames
sequence = None        # None: a video is a sequence, a folder of images independent photos; True/False to say
normalize_to = ""      # a target's keypoint folder, to prepare a transfer source (see notebook 04)
heldout_dataroot = "dataset_test"
demo_dir = "demo_data"
demo_frames = [1000, 240, 300]  # demo clip lengths: training, held-out, source dancer
demo_depth = True      # demo only: the character's own depth (its drawing order) instead of MediaPipe's z
lesson_frames = 40     # frames the stage-by-stage lesson shows (extraction's raw keypoints, detections.npz)
lesson_joint = "RWrist"  # the joint whose track the smoothing figure plots
"""),
        ("code", SETUP + """from dancenow_utils.notebook import pipeline
from dancenow_utils.synthetic.demo import DemoPaths
"""),
        ("md", """## Run the extraction

Each run writes into a staging folder and swaps it into place only when it has finished, so an interrupted run
never leaves half a dataset. Frames where nobody (or more than one person) is found are skipped and counted.
"""),
        ("code", """summaries = pipeline.pose_step(
    source, dataroot, phase, heldout_dataroot=heldout_dataroot, demo_dir=demo_dir, demo_frames=tuple(demo_frames),
    demo_depth=demo_depth, backend=backend, weights=weights, keypoints_dir=keypoints_dir, image_size=image_size,
    pose_format=pose_format, draw_face=draw_face, draw_hands=draw_hands, depth=depth, smooth_window=smooth_window,
    frame_step=frame_step, max_frames=max_frames, normalize_to=normalize_to, sequence=sequence)
for summary in summaries.values():
    print(summary)
"""),
        ("md", """## One frame through each stage

Extraction ran all four stages in one call. To see what each does, the lesson takes the raw keypoints that
extraction detected in the first `lesson_frames` frames (saved beside the smoothed ones, in
`{phase}_keypoints/detections.npz`) and the middle frame through the stages with the crop and drawing settings
extraction saved (`crop.json` and `settings.json`).
"""),
        ("code", """lesson = pipeline.extraction_lesson(source, dataroot, phase, demo_dir, lesson_frames, frame_step,
                                    weights, keypoints_dir)
"""),
        ("md", """### 1. Detect

The detector's keypoints on the original frame: body joints, face points and hand joints, each with a confidence.
They are *raw*: a detector looks at every frame on its own, so a joint wobbles a little from frame to frame.
"""),
        ("code", """show(lesson.detected_image(), "raw keypoints", figsize=(6, 6))
"""),
        ("md", """### 2. Smooth

A median over `smooth_window` frames, per joint and coordinate, using confident detections only (short gaps are
filled in between). A median removes jitter and single-frame mistakes but keeps sharp moves; the price is a lag
at the turns of a fast move. The demo draws its character from known keypoints, so its ground truth is plotted
too: compare the distance of each curve to it. On the clean demo video the detector barely jitters, so the figure
mostly shows the lag; the median is there for real footage, where blur and occlusion can make single frames
jump.
"""),
        ("code", """display(lesson.jitter_figure(lesson_joint))
"""),
        ("md", """### 3. Crop

One box for the whole video, around every keypoint of every frame plus a margin, at the training images' aspect
ratio: a box per frame would make the background jump. Everything outside it is dropped and the rest is resized
to `image_size`.
"""),
        ("code", """show(lesson.crop_image(), "the crop", figsize=(10, 5))
"""),
        ("md", """### 4. Draw

The smoothed keypoints, moved into the crop, drawn as an OpenPose stick figure on black: this pair (frame and
pose) is one training example. The generator only ever sees the stick figure, so everything it knows about the
pose must be in these coloured lines.
"""),
        ("code", """show(lesson.drawn_image(), "a training pair", figsize=(12, 4.5))
"""),
        ("md", """### Which arm is in front

OpenPose draws the limbs in a fixed order, the left arm last: where the arms cross, the stick figure cannot say
which one is in front, and the generator has to guess (the original project's "overlap of hands was not
registered"). MediaPipe gives every keypoint a relative depth and the demo character knows its own drawing order;
extraction keeps that depth beside each keypoint file (`{phase}_keypoints/depth/`). With `depth="order"` the limbs
and hands are drawn far to near, so the nearer arm lies on top; `depth="shade"` also makes nearer parts brighter.
Here is one crossed-arms frame of this dataset drawn each way (below: the arms, magnified). Keypoints without a
depth, such as OpenPose's JSON, are drawn as today whatever `depth` says, and the summary says so.
"""),
        ("code", """depth_figure = pipeline.depth_figure(dataroot, phase)
if depth_figure is not None:
    show(depth_figure, "one crossed-arms frame: today's drawing and with depth", figsize=(12, 6))
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
        ("md", "## Browse the frames\n\nIn Jupyter, move the slider to check every pair (the slider needs a running "
               "kernel; the static figure above is always there)."),
        ("code", "pipeline.frame_browser(dataroot, phase)"),
        ("md", """## What to try next

- **Your own video**: `source="me.mp4"` (whole body in view, steady camera), with `max_frames=300` and
  `frame_step=2` for a first try.
- **Smoothing**: run again with `smooth_window=1` (off) or `15` and look at the jitter figure: what happens to the
  wrist at the turns of a fast move? Try `lesson_joint="LAnkle"` too: feet stand still more often.
- **The drawing**: `draw_hands=False`, `draw_face=False` or `pose_format="COCO_18"` change what the generator
  sees (a model must be trained on poses drawn the way it will be used); so does `depth="order"` or `"shade"`
  (bench/RESULTS.md measures each on the demo).
- **Real OpenPose**: `backend="openpose_json"` with `keypoints_dir` set to OpenPose's `--write_json` folder.
"""),
    ],
    [  # 02_training
        ("md", """# Step 2: training the pose-to-appearance GAN

The generator (pix2pixHD's global generator) learns to turn a stick figure into a frame of the target. A
multiscale discriminator judges (pose, frame) pairs at two resolutions; the generator is trained to fool it, to
match its internal features on real frames (feature matching), and, when VGG19 weights are available, to match
VGG features (perceptual loss).

Everything the run produces lives in `checkpoints/<name>/`: the config, checkpoints (`latest.pth`, `epoch_N.pth`),
a loss log with named columns, loss curves and a page of visuals. Re-running this notebook **resumes exactly**
where the last run stopped: same weights, optimiser state, learning rate and data order.

pix2pixHD also translates **label maps** (one class index per pixel) into images. With `input_kind="parts"` (and a
new `name`, e.g. `"parts"`) the same notebook trains on the demo character's body-part maps instead of stick
figures: 16 classes one-hot encoded, plus the boundaries of the character's instance map (README: label maps).
""" + OUTPUTS_NOTE),
        ("params", """dataroot = "dataset"
name = "demo"
preset = "demo"        # "demo" | "tiny" | "seed" | "edn_global" | "edn_local"
overrides = {}         # any TrainConfig field, e.g. {"niter": 5, "lr": 1e-4}
checkpoints_dir = "checkpoints"
resume = True
device = "auto"        # picks CUDA when present
stage = "all"          # "all" (every stage of the preset, in order) | "global" | "local" | "face"
input_kind = "pose"    # "pose": stick figures from step 1; "parts": the demo's body-part label maps
gpus = 1               # training processes: 2 or more trains on that many GPUs at once (as torchrun would)
"""),
        ("code", SETUP + """import json

from dancenow_utils.checkpoint import describe_stages
from dancenow_utils.config import make_config
from dancenow_utils.notebook import pipeline
from dancenow_utils.training.stages import planned_stages
"""),
        ("md", "## The configuration\n\nA preset plus your overrides; it is saved beside every checkpoint."),
        ("code", """dataroot, overrides = pipeline.input_step(input_kind, dataroot, overrides)
cfg = make_config(preset, {**overrides, "device": device})
print(json.dumps(cfg.to_dict(), indent=1))
"""),
        ("md", "## The data\n\nPairs from step 1, resized to the config's size."),
        ("code", """show(pipeline.sample_pairs_figure(dataroot, "train", label_maps=bool(cfg.label_nc)),
     figsize=(14, 5))
"""),
        ("md", """## What the reconstruction loss weighs

Hands are a few percent of a frame's pixels, so a loss averaged over the frame hardly notices a hand left out,
and the hands in front of the shirt are the ones a generator drops (the original project's "a hand went
missing"). With `hand_weight` above 0 (the `demo` preset's is 30) the L1 term counts the hands and forearms
`1 + hand_weight` times: below, one training frame per pose kind with those pixels tinted, mapped from the
frame's keypoints (a thick line from elbow to wrist, a disc over the hand), and the share of the frame they
cover.
"""),
        ("code", """hand_figure = pipeline.hand_weight_figure(cfg, dataroot)
if hand_figure is not None:
    show(hand_figure, f"what the L1 term counts {1 + cfg.hand_weight:g} times", figsize=(14, 4))
"""),
        ("md", """## What jitter does

A camera films a dance from one place, so the training clip shows every pose at one size and in a few places
only; the generator learns those and falters on a pose it saw rarely (crossed arms, hands in front of each
other). Jitter moves, scales and turns each training pair by a small random amount, the stick figure and the
frame alike, so they stay aligned and the generator sees each pose in more places. With `jitter_kind="sharp"`
the frame is resampled by nearest neighbour, so the hands and the shirt's star keep their colours. Jitter also
moves the background, which a fixed camera never does; kept to the end it makes the generated video flicker, so
the `demo` preset trains its last `jitter_off_epochs` epochs without it. Below: the first training pair as filmed
and as three draws move it (the stick figure drawn over its frame).
"""),
        ("code", """jitter_figure = pipeline.jitter_figure(cfg, dataroot)
if jitter_figure is not None:
    show(jitter_figure, f"jitter {cfg.jitter:g} ({cfg.jitter_kind}), off in the last {cfg.jitter_off_epochs} "
         f"of {cfg.total_epochs} epochs", figsize=(14, 4))
"""),
        ("md", """## Seen in a mirror

A dance crosses its arms one way in one place and the other way somewhere else: a held-out frame may ask for
a crossing the training clip never shows in that place, and the generator then leaves out the hand that should
lie on the other arm. pix2pixHD flips half its training pairs left to right, but a flipped stick figure lies: the
right arm's colours end up on the left side, so the colours would stop saying which side is which. With `mirror`
(the chance that an epoch draws a pair mirrored) the frame is flipped and the pose is **drawn again** from the
mirrored keypoints, right arm as right arm. `mirror_kinds` keeps it to the pose kinds that need it; the `demo`
preset mirrors crossed arms and overlapping hands half the time, draws them more often (`pose_balance=0.5`:
about a quarter of the draws instead of an eighth; the run prints each kind's share) and trains every other pose
as filmed. Below: the first crossed-arms training pair as filmed, flipped, and mirrored (each stick figure drawn
over its frame).
"""),
        ("code", """mirror_figure = pipeline.mirror_figure(cfg, dataroot)
if mirror_figure is not None:
    show(mirror_figure, f"mirror {cfg.mirror:g} ({cfg.mirror_kinds})", figsize=(14, 4))
"""),
        ("md", """## Train

The learning rate is constant for `niter` epochs and then decays linearly to zero over `niter_decay` epochs.
Each iteration does one generator step, then one discriminator step. The `demo` preset trains at four times
pix2pixHD's rate (`lr=8e-4`): its networks are small, and at the same steps the higher rate drew every pose kind
better on the demo (`bench/RESULTS.md`).

The full Everybody Dance Now method trains in **stages**; `stage="all"` runs every stage of the preset in order,
or name one:

- `"global"`: the global generator. For a local-enhancer preset (`edn_local`) it is trained **coarse to
  fine**: first at half resolution with twice the filters and one discriminator scale fewer, in
  `checkpoints/<name>/global/`;
- `"local"`: the local enhancer at full resolution. Its global branch starts from the global stage's generator and
  its discriminator from the global stage's (each scale moves one up: it now sees a twice larger image);
- `"face"`: a residual GAN that sharpens the face, with the main generator frozen (Everybody Dance Now's face
  generator and batch-norm face discriminator). It is trained on the face GAN loss, the face's VGG loss and the
  full-frame losses of the corrected frame. Its sizes and schedule are the config's `face_*` fields
  (e.g. `overrides={"face_niter": 4}`), saved in `checkpoints/<name>/face/`. The `demo` preset leaves it out of
  `"all"` (`face_stage=False`): without VGG weights, which cannot be downloaded offline, it made the demo's faces
  worse (`bench/RESULTS.md`). The demo uses Everybody Dance Now's L1 term (`use_l1`) in VGG's place.

Every stage is trained by the same trainer, so each one resumes exactly, logs the same named losses and gets the
same page of visuals. Numbered checkpoints (`epoch_<n>_G.pth`) keep only the generator, which is all that
evaluation and transfer read; `latest.pth` keeps everything needed to resume.

A GAN's generator never settles: each step nudges it towards whatever last fooled the discriminator. The `demo`
preset therefore saves, for evaluation and transfer, a **moving average of the generator's weights** over its
last steps (`ema_decay=0.999`) instead of the last step's weights: a steadier generator, at no extra training
time. Training itself is unchanged (`latest.pth` keeps the trained weights to resume from).

With `overrides={"temporal": True}` the generator also sees its previous frame and the discriminator judges pairs
of consecutive frames, which reduces flicker in videos.

Before training on a GPU the trainer prints its **memory estimate** for the preset, size and batch, and refuses a
run that cannot fit in the GPU's free memory, saying what to change (a smaller `batch_size`, `amp`, a smaller size
or preset); an out-of-memory error during training gives the same advice. It also prints what the checkpoints
will take on disk: the EDN presets keep only the newest 4 numbered checkpoints (`keep_epoch_checkpoints`).

With **several GPUs** (Kaggle, some Colab tiers), `gpus=2` trains in two processes, one per GPU, with distributed
data parallel: the same code `torchrun` runs, started by torch's own launcher. Each process trains on its half of
the data; the first writes the files.
"""),
        ("code", """from dancenow_utils.training.launch import train_stages_on

print("stages:", planned_stages(cfg, stage))
results = train_stages_on(gpus, stage, cfg, dataroot, name, checkpoints_dir, resume)
print(describe_stages(name, checkpoints_dir))
"""),
        ("md", """## Loss curves and latest visuals

`G_GAN` and `D_real`/`D_fake` should hover around 0.25-0.5 (neither network wins outright); `G_GAN_Feat` and
`G_VGG` should fall as the generated frames approach the real ones. Then: pose input, generated frame and real
frame for fixed training samples (the full history is on `checkpoints/<name>/web/index.html`). For the face stage:
pose, generated, corrected and real face crops.
"""),
        ("code", """for st, result in results.items():
    print(f"stage {st!r}:")
    for path in pipeline.training_figures(result):
        display(Image(filename=str(path)))
"""),
        ("md", """## What to try next

- **Train longer**: `overrides={"niter": 10, "niter_decay": 10}`; interrupt it and run the notebook again: it
  resumes where it stopped. Compare the loss curves and the visuals with this run's.
- **Less flicker**: `overrides={"temporal": True}`, then compare the `flicker` score in notebook 03.
- **One stage at a time**: `stage="global"`, then `"local"`, then `"face"`: each resumes on its own.
- **The face stage on the demo**: `stage="face"`, then compare `face_ssim` in notebook 03 with this run's.
- **Bigger models**: on a GPU, `preset="edn_global"` (Everybody Dance Now's 512x256 global stage) or `"seed"`.
- **The learning rate**: `overrides={"lr": 2e-4}` (pix2pixHD's) or `{"lr": 2e-3}`: watch `D_real`/`D_fake`, the
  visuals and notebook 03's scores.
- **Without the average**: `overrides={"ema_decay": 0}` saves the last step's weights, as pix2pixHD does; compare
  notebook 03's scores with this run's.
- **Rare poses more often**: `overrides={"pose_balance": 1.0}` draws each pose kind (crossed arms, overlapping
  hands, arms raised, others) equally often; the run prints each kind's share. Compare the crossed-arms row of
  notebook 03's table with this run's.
- **Without jitter**: `overrides={"jitter": 0}`, or jittered to the end: `{"jitter_off_epochs": 0}`. Measured
  on the demo at the same steps: without jitter crossed arms 0.820 and overlapping hands 0.847 body SSIM (0.835
  and 0.844 with the preset's); jittered to the end the video flickers (1.45 instead of 0.99, 1 = as steady as the
  real one) and the star on the shirt is lost more often. Look at notebook 03's table, its flicker and the star.
- **Without the mirror**: `overrides={"mirror": 0, "pose_balance": 0}` trains every pose as filmed and as often
  as filmed. Measured on the demo at the same steps: 12.2 % of the hands in front of the body left out instead
  of 6.5 %, each pose kind's body SSIM about the same. Compare the coverage report's "arms in front" in notebook
  03 and the crossed-arms frames. `{"mirror_kinds": "all"}` mirrors every pose.
- **Without the hand weight**: `overrides={"hand_weight": 0}` weighs every pixel alike, as Everybody Dance Now
  does. Measured on the demo at its rate: more than twice as many hands left out (12.0 % instead of 4.9 %) and
  a higher pose error; does the generated hand look like a hand either way?
- **Label maps**: `input_kind="parts", name="parts"`, then notebooks 03 and 04 with `name="parts"`; add
  `overrides={"instance_feat": True}` for pix2pixHD's feature encoder (a style vector per instance).
"""),
    ],
    [  # 03_cross_validation
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
""" + OUTPUTS_NOTE),
        ("params", """dataroot = "dataset_test"
name = "demo"
which_epoch = "latest"
checkpoints_dir = "checkpoints"
max_samples = 0        # 0: all held-out frames
train_dataroot = "dataset"
forensic_steps = 300   # training steps of the forensic detector (0: skip it)
input_kind = "pose"    # "parts": a label-map run of notebook 02 on the demo's part maps (its own datasets)
"""),
        ("code", SETUP + """import json

from dancenow_utils.evaluation.coverage import coverage_report, coverage_vs_per_sample
from dancenow_utils.evaluation.crossval import evaluate
from dancenow_utils.evaluation.forensics import forensic_check
from dancenow_utils.evaluation.metrics import format_by_pose_kind
from dancenow_utils.io_utils import read_image
from dancenow_utils.layout import DatasetLayout, RunLayout
from dancenow_utils.notebook import pipeline
from dancenow_utils.params import check_int

forensic_steps = check_int("forensic_steps", forensic_steps, 0, " (0: skip it)")  # papermill's "0" is 0
"""),
        ("code", """dataroot, train_dataroot = pipeline.cross_validation_data(input_kind, dataroot, train_dataroot)
metrics = evaluate(name, dataroot, which_epoch, checkpoints_dir, max_samples, train_dataroot)
print(json.dumps(metrics, indent=1))
"""),
        ("md", "## GAN against retrieval\n\nHigher SSIM is better; lower pose error is better."),
        ("code", """for key in ("ssim", "body_ssim", "psnr", "pose_error_px"):
    print(f"{key:>15}: GAN {metrics[key]}   nearest neighbour {metrics['nn_' + key]}")
display(Image(filename=str(RunLayout(checkpoints_dir, name).test.metrics_plot)))
"""),
        ("md", """## By pose kind

Reproductions of Everybody Dance Now fail on particular poses: crossed arms and hands in front of each other (the
overlap is not registered, the arms smear), and raised arms, rare in most training footage. Each held-out frame
gets one kind from its keypoints (`dancenow_utils.pose.kinds`), and the scores are split by kind, so those failures
are measured rather than eyeballed. A kind with few frames gives a noisy figure: `n` says how many.
"""),
        ("code", """print(format_by_pose_kind(metrics["by_pose_kind"]))
"""),
        ("md", "## Samples\n\nInput pose, generated frame, ground truth and the nearest training frame. All "
               "samples are on `checkpoints/<name>_test/index.html`."),
        ("code", """show(pipeline.cross_validation_samples(name, checkpoints_dir, n=4),
     "input | generated | ground truth | nearest neighbour", figsize=(9, 9.6))
"""),
        ("md", """## Where will the output fail? Pose coverage

A generator draws poses near the ones it was trained on well, and poses far from all of them badly. The
**coverage** of a frame is the distance of its pose to the nearest training pose, in fractions of the target's
height (per body part too). Measured on the held-out clip, it should go with lower quality: the correlation below
is what the threshold (frames flagged above it) rests on. Notebook 04 runs the same check on a source video
*before* generating anything.
"""),
        ("code", """test_dir = RunLayout(checkpoints_dir, name).test_dir
cov = coverage_report(DatasetLayout(dataroot).keypoints, DatasetLayout(train_dataroot).keypoints,
                      test_dir / "coverage")
print(cov.summary())
print("coverage against body SSIM:", coverage_vs_per_sample(cov, test_dir, "body_ssim"))
show(read_image(cov.curve_path), "pose coverage of the held-out clip", figsize=(12, 4))
"""),
        ("md", """## Telling generated frames from real ones

Everybody Dance Now ships a forensic detector with its method, as a safeguard against misuse. This one is a small
CNN trained on real target frames against frames this generator made for the same poses, then scored on held-out
frames it never saw (accuracy and ROC AUC; 0.5 would be chance). `forensics.score_video` scores any video with the
saved detector.
"""),
        ("code", """if forensic_steps:
    res = forensic_check(name, train_dataroot, dataroot, checkpoints_dir, steps=forensic_steps,
                         max_train=200, max_test=max_samples)
    print(res.metrics["heldout"])
    display(Image(filename=str(res.figure_path)))
"""),
        ("md", """## What to try next

- **Earlier checkpoints**: `which_epoch=1` (after notebook 02 saved one): from which epoch on does the GAN beat the
  nearest neighbour?
- **The worst poses**: sort `checkpoints/<name>_test/per_sample.csv` by `ssim` and look those samples up on the
  page: are they poses the training clip never showed?
- **Less data**: train with `overrides={"max_dataset_size": 100}` in notebook 02 and evaluate again; does the
  gap to the nearest-neighbour baseline shrink (memorising rather than learning)?
- **Fool the detector**: train the generator longer (or with the face stage) and run the forensic section again:
  does its held-out AUC drop?
"""),
    ],
    [  # 04_pose_transfer
        ("md", """# Step 4: pose transfer

Now the target dances like someone else. The **source** video's poses are extracted with step 1's code, then:

1. **Normalised** onto the target (global pose normalisation): the source may be taller, shorter or stand
   elsewhere in the frame, so its poses are scaled and moved using the ankle positions and heights of both videos.
2. **Smoothed** over time, and drawn in the target's crop.
3. Turned into frames by the generator trained in step 2, in batches.

The results go to `results/<name>/`: frames, `transfer.mp4`, `side_by_side.mp4` (source | pose | generated), a
GIF and an HTML page. A folder holding ready pose images (`test_A`) can be given as `source` instead.
A temporal generator is run frame by frame, each output fed back; a trained face stage corrects every face.

Two figures explain the method: the source skeleton over the target before and after normalisation, and a
**pose puppet**: bend the skeleton's joints with sliders and watch what the generator draws.

A run trained on label maps (notebook 02 with `input_kind="parts"`) translates a folder of label maps as they
are (`source`: a `test_A` folder; empty: the demo source dancer's body-part maps): normalisation, pose coverage
and the puppet are for stick figures and are skipped.
""" + OUTPUTS_NOTE),
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
runtime = "auto"       # "torch" | "onnxruntime" (the exported model) | "auto": the faster here, measured
export = True          # export the character: ONNX models and the puppet page (results/<name>_export)
"""),
        ("code", SETUP + """from dancenow_utils.checkpoint import run_config
from dancenow_utils.evaluation.coverage import coverage_report
from dancenow_utils.io_utils import read_image
from dancenow_utils.layout import DatasetLayout, ResultsLayout
from dancenow_utils.notebook import pipeline
from dancenow_utils.notebook.lessons import NormalizationLesson
from dancenow_utils.params import check_bool
from dancenow_utils.transfer.export import export_generator
from dancenow_utils.transfer.pose_transfer import prepare_poses, run_transfer
from dancenow_utils.transfer.puppet import Puppet
from dancenow_utils.video import notebook_video

normalize = check_bool("normalize", normalize)  # papermill's -p normalize false arrives as the text "false"
export = check_bool("export", export)
"""),
        ("md", "## Prepare the source poses\n\nThe stick figures are drawn at the size the generator was trained at, "
               "and the way the target's training poses were drawn (keypoint format, face, hands: the target "
               "dataset's `settings.json`). A model refuses poses drawn another way."),
        ("code", """cfg = run_config(name, checkpoints_dir)  # config.json, or the copy inside the run's checkpoint
src, ready = pipeline.resolve_transfer_source(source, dataroot, demo_dir, cfg)
poses_dir = src if ready else prepare_poses(src, dataroot, normalize, target_keypoints, smooth_window,
                                            image_size=[cfg.width, cfg.height], max_frames=max_frames,
                                            normalize_method=normalize_method)
print("poses from", poses_dir)
"""),
        ("md", """## Global pose normalisation, drawn

The source dancer stands elsewhere and has another size than the target. Normalisation gives every source frame
one **scale** and one shift, read from where its feet are: each video's **ankle lines** (the ankles' position when
the dancer is farthest from the camera and closest to it) are mapped onto each other, and the scale grows from
the far end to the close end, so that a dancer walking towards the camera grows as the target would.

Below, the source skeleton is drawn over the target's crop before normalisation (left, with the source's ankle
lines) and after it (middle, with the target's); the right plot shows the scale of every frame against its
ankle position. `normalize_method="edn"` uses Everybody Dance Now's statistics, `"project"` a more robust variant
(docs/normalization.md). The lesson reads the source's raw bodies from what `prepare_poses` detected
(`detections.npz` beside the poses), so nothing is detected twice.
"""),
        ("code", """if normalize and not ready:
    norm = NormalizationLesson.run(src, target_keypoints, normalize_method, smooth_window, max_frames,
                                   detections=DatasetLayout.of_pose_dir(poses_dir).detections)
    print(norm.describe())
    display(norm.figure())
"""),
        ("md", """## Which source frames will be hard? Pose coverage, before generating

For every source frame, the distance of its normalised pose to the nearest pose in the target's training video
(notebook 03 shows that this distance goes with lower quality). Frames above the threshold ask for poses the target
never showed: expect smudges there. The sheet shows the worst ones beside their nearest training frames.
"""),
        ("code", """if not ready:
    cov = coverage_report(DatasetLayout.of_pose_dir(poses_dir).keypoints, target_keypoints,
                          ResultsLayout(results_dir, name).coverage)
    print(cov.summary())
    show(read_image(cov.curve_path), "pose coverage of the source", figsize=(12, 4))
    show(read_image(cov.sheet_path), "worst frames | nearest training frame | that frame under the pose",
         figsize=(12, 6))
"""),
        ("md", "## Generate the frames and videos"),
        ("code", """result = run_transfer(name, poses_dir, results_dir, source="" if ready else src,
                      which_epoch=which_epoch, checkpoints_dir=checkpoints_dir, fps=fps, runtime=runtime)
print(f"{result.n_frames} frames -> {result.video}, {result.side_by_side}, {result.gif}")
"""),
        ("md", """## Watch it

Source | normalised pose | generated target: the H.264 video plays here, in Colab and in browsers (a saved
notebook embeds it); the GIF below is what a code host such as GitHub shows.
"""),
        ("code", """display(notebook_video(result.side_by_side, width=3 * cfg.width))
display(Image(filename=str(result.gif)))
"""),
        ("md", """## The pose puppet

Start from a training pose of the target, turn its joints and see what the generator draws: a sharp, plausible
frame near poses it was trained on, smudges far from them. Each slider is a rotation from the training pose in
degrees (counter-clockwise on the screen); a shoulder carries its elbow and hand along. The figure below (a few
preset poses, saved as `results/<name>/puppet.png`) is there in every run; the sliders need a running kernel.
"""),
        ("code", """puppet = None if cfg.label_nc else Puppet.load(name, target_keypoints, which_epoch, checkpoints_dir)
if puppet:
    show(puppet.save_grid(result.out_dir / "puppet.png"),
         "preset poses (top) and what the generator draws (bottom)", figsize=(14, 5))
"""),
        ("code", """puppet.widget() if puppet else None"""),
        ("md", """## Export: the character without Python

The trained generator leaves PyTorch: it is exported to **ONNX** (`results/<name>_export/model.onnx`, with named
inputs, a dynamic batch axis and the drawing settings in its metadata; the face stage as `face.onnx`), and each
model is run by ONNX Runtime on held-out poses and compared with PyTorch (the largest difference is printed; it
must stay under 1e-3 on the [-1, 1] scale). The same export runs the transfer above when `runtime="onnxruntime"`
(`"auto"` measured which runtime is faster on this machine and used it).

For a pose run the folder also holds a **puppet page**: sliders bend the joints, the page draws the stick figure
and runs the generator in the browser (ONNX Runtime Web, copied into the folder: it works offline). Serve the
folder and open it: `python -m http.server -d results/demo_export 8000`, then port 8000 of 127.0.0.1 in a browser
(a page from `file://` cannot run WebAssembly). The command line exports too: `python -m
dancenow_utils.transfer.export <name>`.
"""),
        ("code", """if export:
    exported = export_generator(name, which_epoch, checkpoints_dir, results_dir,
                                keypoints_dir="" if cfg.label_nc else target_keypoints)
    print(exported)
    if exported.page:
        print(f"serve it: python -m http.server -d {exported.dir} 8000, then open port 8000 of 127.0.0.1")
"""),
        ("md", """## What to try next

- **Without normalisation**: `normalize=False`: the source's skeleton keeps its own size and place; how do the
  frames change?
- **The two methods**: `normalize_method="edn"` and `"project"`: compare the figures' scales and ankle lines.
- **Break the generator**: with the puppet, lift a knee or an arm beyond anything the target did in training.
  Where does the picture fall apart? That is where more varied training video helps.
- **Your own dancer**: `source="dancer.mp4"`; a clip with the whole body in view and steady feet works best.
- **The runtimes**: `runtime="torch"` and `runtime="onnxruntime"`: how long does the generation take with each, and
  do the frames differ (`bench/RESULTS.md`, "Export and runtimes", has the figures for this machine)?
"""),
    ],
    [  # 05_epoch_visualization
        ("md", """# Step 5: watching the network learn

The original project showed how the generator's output evolves in its first iterations. This notebook
reproduces that figure: it trains a **fresh** model for `iterations` steps and keeps its outputs for a fixed set
of poses every `snapshot_every` steps. First the output is noise, then a silhouette, then colours (the shirt,
trousers), and only later the details (face, star).
""" + OUTPUTS_NOTE),
        ("params", """dataroot = "dataset"
name = "Initial_epoch"
preset = "demo"
iterations = 100
snapshot_every = 5
overrides = {}
checkpoints_dir = "checkpoints"
"""),
        ("code", SETUP + """from dancenow_utils.config import make_config
from dancenow_utils.training.snapshots import learn_with_snapshots
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
        ("md", """## What to try next

- **Longer**: `iterations=500, snapshot_every=50`: when does the star on the shirt appear?
- **The learning rate**: `overrides={"lr": 1e-3}` or `{"lr": 5e-5}`: faster, slower, or unstable?
- **A smaller generator**: `overrides={"ngf": 8}`: what does it stop drawing?
- **Another seed**: `overrides={"seed": 1}`: does it learn in the same order?
"""),
    ],
)
NOTEBOOKS: dict[str, list[tuple[str, str]]] = {f"{name}.ipynb": cells
                                                for name, cells in zip(NOTEBOOK_NAMES, _CELLS, strict=True)}


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
    """The notebook's text without outputs (what the committed notebook is, its outputs stripped)."""
    return nbformat.writes(build(name)) + "\n"


# The small demo whose outputs are committed (`--execute`): a few minutes on two CPU cores.
OUTPUT_PARAMETERS: dict[str, dict] = {
    "01_pose_extraction.ipynb": {"demo_frames": [120, 30, 30]},
    "02_training.ipynb": {"overrides": {"niter": 2, "niter_decay": 1, "face_niter": 1}},
    "03_cross_validation.ipynb": {},
    "04_pose_transfer.ipynb": {},
    "05_epoch_visualization.ipynb": {"iterations": 40, "snapshot_every": 10},
}


def _with_kept_outputs(name: str, path: Path) -> str:
    """The source, with the committed notebook's outputs for every code cell whose source is unchanged (a changed
    cell loses its outputs until ``make notebook-outputs`` runs again)."""
    built = build(name)
    if not path.exists():
        return nbformat.writes(built) + "\n"
    committed = [c for c in nbformat.reads(path.read_text(), as_version=4).cells if c.cell_type == "code"]
    dropped = 0
    for cell in (c for c in built.cells if c.cell_type == "code"):
        same = next((i for i, c in enumerate(committed) if c.source == cell.source), None)
        if same is None:
            dropped += 1
            continue
        old = committed.pop(same)
        cell.outputs, cell.execution_count = old.get("outputs", []), old.get("execution_count")
    if dropped:
        print(f"{name}: {dropped} changed code cell(s) without outputs; run `make notebook-outputs` to store new ones")
    return nbformat.writes(built) + "\n"


def execute(out: Path, workdir: Path) -> None:
    """Run every notebook in ``workdir`` on the small demo, in pipeline order, and write each with its slimmed
    outputs to ``out``."""
    from dancenow_utils.notebook.runner import run_notebook
    from dancenow_utils.notebook.saved_outputs import image_outputs, merge_outputs

    executed_dir = workdir / "executed"
    for name in NOTEBOOKS:
        (out / name).write_text(render(name))  # the notebook papermill runs is the current source
    # the kernels inherit fd 2: MediaPipe's native log lines go to a file, shown only if a notebook fails
    log_path = workdir / "kernel_stderr.log"
    try:
        with stderr_to(log_path):
            for name in NOTEBOOKS:
                t0 = time.time()
                print(f"== {name}", flush=True)
                run_notebook(out / name, executed_dir / name, OUTPUT_PARAMETERS[name], cwd=workdir, timeout=1800)
                merged = merge_outputs(build(name), nbformat.read(str(executed_dir / name), as_version=4))
                text = nbformat.writes(merged) + "\n"
                (out / name).write_text(text)
                print(f"   {time.time() - t0:.0f} s, {image_outputs(merged)} pictures, {len(text) / 1e3:.0f} kB",
                      flush=True)
    except Exception:
        print("--- the kernels' stderr (last lines) ---\n" + "".join(log_path.read_text().splitlines(True)[-30:]))
        raise


BADGES_START, BADGES_END = "<!-- colab-badges: written by tools/build_notebooks.py -->", "<!-- /colab-badges -->"


def readme_with_badges(text: str) -> str:
    """README's text with its "Open in Colab" table (between the two markers) made from REPO_URL."""
    if BADGES_START not in text or BADGES_END not in text:
        raise ValueError(f"README.md lacks the markers {BADGES_START!r} and {BADGES_END!r} around its Colab badges")
    head, rest = text.split(BADGES_START, 1)
    tail = rest.split(BADGES_END, 1)[1]
    return f"{head}{BADGES_START}\n{colab_badges()}\n{BADGES_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--execute", action="store_true",
                    help="run the notebooks on a small demo and store their outputs (a few minutes)")
    ap.add_argument("--workdir", default="", help="with --execute: where the demo runs (default: a temporary "
                                                   "folder, removed afterwards)")
    a = ap.parse_args(argv)
    out = ROOT / "notebooks"
    out.mkdir(exist_ok=True)
    if a.execute:
        if a.workdir:
            Path(a.workdir).mkdir(parents=True, exist_ok=True)
            execute(out, Path(a.workdir).resolve())
        else:
            with tempfile.TemporaryDirectory(prefix="dancenow-outputs-") as tmp:
                execute(out, Path(tmp))
        total = sum((out / n).stat().st_size for n in NOTEBOOKS)
        print(f"stored outputs in {len(NOTEBOOKS)} notebooks in {out} ({total / 1e6:.2f} MB)")
        return 0
    for name in NOTEBOOKS:
        path = out / name
        path.write_text(_with_kept_outputs(name, path))
    readme = ROOT / "README.md"
    readme.write_text(readme_with_badges(readme.read_text()))
    print(f"wrote {len(NOTEBOOKS)} notebooks to {out} and README's Colab badges for {REPO_URL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

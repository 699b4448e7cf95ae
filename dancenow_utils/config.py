"""Training configuration: one typed dataclass, named presets, JSON round-trip.

The config is saved beside every checkpoint (``config.json``) so that a model can always be rebuilt
exactly as it was trained. Papermill parameters map onto it through :func:`make_config`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dancenow_utils.io_utils import atomic_write_text
from dancenow_utils.runtime.precision import validate_amp

# the pose kinds, in the order pose.kinds.pose_kind tries them (TrainConfig.mirror_kinds names some of them)
POSE_KINDS = ("crossed arms", "hands overlapping", "arms raised", "others")
# how a training pair can be jittered (TrainConfig.jitter_kind; data.datasets.jitter_draws draws them)
JITTER_KINDS = ("affine", "sharp", "shift")


@dataclass
class TrainConfig:
    """Every option of the pix2pixHD pose-to-appearance model, its face stage and the training loop."""

    preset: str = "demo"
    # image size (width x height) the networks see
    width: int = 128
    height: int = 128
    input_nc: int = 3  # channels of RGB input images (label_nc=0); with label maps the input is label_nc channels
    output_nc: int = 3
    # input kind (pix2pixHD): 0 = RGB images in {phase}_A; N > 0 = label maps of N classes (one-hot encoded)
    label_nc: int = 0
    instance_maps: bool = False  # label maps only: read {phase}_inst and add instance boundaries as a channel
    # pix2pixHD's feature encoder: per-instance (or per-class) features of the real frame, concatenated to G's input
    instance_feat: bool = False  # pool the encoder's features per instance (needs instance_maps)
    label_feat: bool = False  # pool them per class of the label map
    feat_num: int = 3  # feature channels
    nef: int = 16  # encoder filters in its first layer
    n_downsample_E: int = 4
    # generator
    netG: str = "global"  # "global" or "local"
    ngf: int = 32
    n_downsample_global: int = 3
    n_blocks_global: int = 6
    n_local_enhancers: int = 1
    n_blocks_local: int = 3
    niter_fix_global: int = 0  # local stage: epochs that train only the local enhancer, global branch held fixed
    # temporal smoothing: the generator also sees its previous output (Everybody Dance Now)
    temporal: bool = False
    # discriminator
    num_D: int = 2
    ndf: int = 32
    n_layers_D: int = 3
    # losses
    lambda_feat: float = 10.0
    use_feat_loss: bool = True
    vgg_loss: str = "auto"  # "auto" | "on" | "off"
    vgg_weights: str = ""  # local VGG19 state-dict file; empty = torchvision's cache or download
    vgg_normalize_input: bool = False  # False: raw [-1, 1] images into VGG19 as pix2pixHD; True: ImageNet-normalised
    use_l1: bool = False  # EDN's --use_l1: an L1 term on the (last) generated frame, e.g. where VGG19 is unavailable
    lambda_l1: float = 10.0  # its weight (EDN's lambda_A)
    # the hands and forearms (from the training keypoints) count 1 + hand_weight times in the L1 term: hands are a
    # few percent of the pixels, and a frame-wide average hardly notices one left out; 0 = every pixel alike (EDN)
    hand_weight: float = 0.0
    # optimisation
    lr: float = 2e-4
    beta1: float = 0.5
    niter: int = 10  # epochs at constant learning rate
    niter_decay: int = 10  # epochs of linear decay to zero
    batch_size: int = 4
    # the generator's (and feature encoder's) weights that inference uses (the saved *_G.pth files): 0 = the
    # trained weights as they are (pix2pixHD); 0.999 = their exponential moving average, the decay ramped up as
    # (1 + n) / (10 + n) until it reaches 0.999 (step 8990; about the last 300 steps at the end of the demo's
    # 3500, the last 1000 on longer runs): a steadier generator at no extra training cost (bench/RESULTS.md, issue
    # 25). Training itself, and the visuals it shows, use the trained weights
    ema_decay: float = 0.0
    max_dataset_size: int = 0  # 0 = all pairs
    flip: bool = False  # off: flipping a coloured skeleton swaps the meaning of left and right
    # the chance that an epoch draws a training pair mirrored: flipped as pix2pixHD flips, but with the pose drawn
    # again from the mirrored keypoints, so the colours keep saying which side is which (data.mirror). The
    # generator then also sees poses the other way round (crossed arms with the other arm in front). 0 = off, 0.5 =
    # pix2pixHD's flip rate. For characters that look alike in a mirror; needs the keypoints. Label maps are not
    # mirrored (their classes name sides the code cannot swap): a label-map run trains them as filmed and says so
    mirror: float = 0.0
    # the pose kinds (pose.kinds.POSE_KINDS) that are mirrored, comma-separated, or "all": e.g. "crossed arms,hands
    # overlapping", the poses a dance tends to show one way round, leaves the others as filmed
    mirror_kinds: str = "all"
    # how much more often an epoch draws frames of rare pose kinds (crossed arms, overlapping hands): each frame's
    # weight is count(its kind) ** -pose_balance; 0 = every frame equally often (pix2pixHD), 1 = every kind equally
    pose_balance: float = 0.0
    # geometric jitter of each training pair (pose and frame alike): shifts up to 10 % of the image, scale +-10 % and
    # turns up to 10 degrees at 1.0, proportionally less below; 0 = none (pix2pixHD). Teaches the generator poses
    # in places and tilts the footage never showed them in
    jitter: float = 0.0
    # "affine": moves, scales and turns, resampled bilinearly; "sharp": the same, resampled by nearest neighbour (no
    # blur: hands and the shirt's star keep their colours); "shift": whole-pixel moves only
    jitter_kind: str = "affine"
    # the last epochs train without jitter (0: every epoch jitters). Jitter moves the whole frame, background
    # included, which a fixed camera never does: epochs without it at the end let the generator settle again
    jitter_off_epochs: int = 0
    cache_images: bool = True  # keep decoded images in memory (only without loader workers, and when they fit)
    num_workers: int = -1  # data-loader worker processes; -1 = auto (0 on CPU, up to 4 on CUDA)
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" ...
    amp: str = "auto"  # "auto" (bf16 where it is measurably faster, fp16/bf16 on CUDA) | "fp32" | "bf16" | "fp16"
    threads: int = 0  # 0 = leave torch's default
    face_stage: bool = True  # the full method (stage="all") ends with the face stage
    # face GAN stage (Everybody Dance Now, section 3.4): a residual generator on face crops, an n-layer face
    # discriminator with batch norm, and the full-frame losses through the corrected frame (EDN's sizes by default)
    face_ngf: int = 64
    face_n_downsample: int = 3
    face_n_blocks: int = 5
    face_ndf: int = 64
    face_n_layers_D: int = 3
    face_lr: float = 2e-4
    face_niter: int = 2  # face-stage epochs at constant learning rate
    face_niter_decay: int = 0  # face-stage epochs of linear decay
    face_niter_fix_main: int = 0  # face-stage epochs that train the face D alone (full-frame D held fixed)
    # bookkeeping
    save_latest_freq: int = 200  # iterations between `latest` checkpoints
    save_latest_seconds: float = 0.0  # also save `latest` when this much time has passed (0 = off)
    save_epoch_freq: int = 5  # epochs between numbered (generator-only) checkpoints
    keep_epoch_checkpoints: int = 0  # numbered checkpoints kept per run, the newest (0 = all)
    check_freq: int = 0  # iterations between the checks all ranks agree on (finite losses, Ctrl-C, time limits),
    # each one a device sync; 0 = every step on a CPU, every 10 on a GPU (and always before a checkpoint is written)
    memory_check: bool = True  # on a GPU, refuse to start when the memory estimate exceeds the free memory
    display_freq: int = 100  # iterations between visuals on the HTML page
    log_freq: int = 10  # iterations between loss-log lines (loss values are read back only then)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Reject values that cannot work, naming the key and what is valid (before any work starts)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if _kind(f) == "float" and (not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise ValueError(f"config key {f.name!r} must be a finite number, got {value!r} (NaN and "
                                 "infinity would make every loss NaN)")
        positive = ("width", "height", "input_nc", "output_nc", "ngf", "ndf", "n_layers_D", "num_D", "batch_size",
                    "save_latest_freq", "save_epoch_freq", "display_freq", "log_freq", "face_ngf", "face_ndf",
                    "face_n_layers_D", "feat_num", "nef")
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"config key {key!r} must be at least 1, got {getattr(self, key)!r}")
        non_negative = ("n_downsample_global", "n_blocks_global", "n_local_enhancers", "n_blocks_local", "niter",
                        "niter_decay", "max_dataset_size", "threads", "face_n_downsample", "face_n_blocks",
                        "face_niter", "face_niter_decay", "save_latest_seconds", "lr", "face_lr", "lambda_feat",
                        "niter_fix_global", "face_niter_fix_main", "lambda_l1", "hand_weight", "label_nc",
                        "n_downsample_E", "keep_epoch_checkpoints", "check_freq", "jitter_off_epochs")
        for key in non_negative:
            if getattr(self, key) < 0:
                raise ValueError(f"config key {key!r} must be 0 or more, got {getattr(self, key)!r}")
        if not 0.0 <= self.pose_balance <= 1.0:
            raise ValueError(f"config key 'pose_balance' must be between 0 (every frame equally often) and 1 (every "
                             f"pose kind equally often), got {self.pose_balance!r}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"config key 'jitter' must be between 0 (no jitter) and 1 (shifts up to 10 % of the "
                             f"image, scale +-10 %, turns up to 10 degrees), got {self.jitter!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"config key 'ema_decay' must be 0 (no average) or more and below 1 (e.g. 0.999: a "
                             f"moving average of the weights over about the last 1000 steps of a long run), got "
                             f"{self.ema_decay!r}")
        if not 0.0 <= self.mirror <= 1.0:
            raise ValueError(f"config key 'mirror' is the chance that a training pair is drawn mirrored, between 0 "
                             f"(never) and 1 (always; 0.5 as pix2pixHD flips), got {self.mirror!r}")
        mirror_kinds(self.mirror_kinds)
        if self.mirror and self.flip:
            raise ValueError("config keys 'mirror' and 'flip' both flip training pairs, flip=True without drawing "
                             "the poses again (their colours then change sides): set flip=False, or mirror=0")
        if self.hand_weight and not self.use_l1:
            raise ValueError(f"config key 'hand_weight' ({self.hand_weight}) weighs the hands in the L1 term, which "
                             "is off: set use_l1=True as well, or hand_weight=0")
        if self.num_workers < -1:
            raise ValueError(f"config key 'num_workers' must be -1 (auto) or 0 or more, got {self.num_workers}")
        validate_amp(self.amp)
        choices = {"netG": ("global", "local"), "vgg_loss": ("auto", "on", "off"), "jitter_kind": JITTER_KINDS}
        for key, valid in choices.items():
            if getattr(self, key) not in valid:
                raise ValueError(f"config key {key!r} must be one of {valid}, got {getattr(self, key)!r}")
        if self.device != "auto" and not (self.device == "cpu" or self.device == "mps"
                                          or self.device.split(":")[0] == "cuda"):
            raise ValueError(f"config key 'device' must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', "
                             f"got {self.device!r}")
        self._validate_input_kind()
        k = 2 ** (self.n_downsample_global + (self.n_local_enhancers if self.netG == "local" else 0))
        if self.width % k or self.height % k:
            raise ValueError(f"width and height ({self.width}x{self.height}) must be multiples of {k} for "
                             f"{self.n_downsample_global} downsamplings" +
                             (f" and {self.n_local_enhancers} local enhancer(s)" if self.netG == "local" else ""))

    def _validate_input_kind(self) -> None:
        """Label maps, instance maps and the feature encoder: only the combinations pix2pixHD defines."""
        if self.instance_maps and not self.label_nc:
            raise ValueError("config key 'instance_maps' needs label maps: set label_nc to the number of classes "
                             "(instance maps go with label maps, as in pix2pixHD), or instance_maps=False")
        if self.instance_feat and self.label_feat:
            raise ValueError("config keys 'instance_feat' and 'label_feat' exclude each other: the encoder's "
                             "features are pooled per instance or per class; set one of them False")
        if self.instance_feat and not self.instance_maps:
            raise ValueError("config key 'instance_feat' pools features per instance: it needs instance_maps=True "
                             "(or use label_feat=True to pool per class)")
        if self.label_feat and not self.label_nc:
            raise ValueError("config key 'label_feat' pools features per class: it needs label maps (label_nc > 0)")
        if self.use_features:
            if self.temporal:
                raise ValueError("the feature encoder (instance_feat / label_feat) works per frame: set "
                                 "temporal=False, or turn the encoder off")
            k = 2 ** self.n_downsample_E
            if self.width % k or self.height % k:
                raise ValueError(f"width and height ({self.width}x{self.height}) must be multiples of {k} for the "
                                 f"feature encoder's {self.n_downsample_E} downsamplings (n_downsample_E)")

    @property
    def use_features(self) -> bool:
        """Whether the generator also sees encoded features (pix2pixHD's ``instance_feat`` or ``label_feat``)."""
        return self.instance_feat or self.label_feat

    @property
    def total_epochs(self) -> int:
        return self.niter + self.niter_decay

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no config file; train a model first (notebook 02).") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc}); delete it (a run's checkpoints hold a copy of its "
                             "config, read in its place) or retrain.") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A config from a saved dict; keys this version does not know (an older or newer run) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls().with_overrides({k: v for k, v in data.items() if k in known})

    def with_overrides(self, overrides: dict[str, Any] | str | None) -> TrainConfig:
        """Return a copy with ``overrides`` applied; an unknown key is an error listing the valid keys.

        ``overrides`` may also be a JSON string (papermill's ``-p overrides '{...}'`` passes one)."""
        overrides = parse_overrides(overrides)
        valid = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise KeyError(f"unknown config key(s) {unknown}; valid keys are: {', '.join(sorted(valid))}")
        typed = {k: _coerce(valid[k], v) for k, v in overrides.items()}
        return dataclasses.replace(self, **typed)


def parse_overrides(overrides: dict[str, Any] | str | None) -> dict[str, Any]:
    """A dict of overrides from a dict, a JSON object string, or None."""
    if overrides is None or overrides == "":
        return {}
    if isinstance(overrides, str):
        try:
            overrides = json.loads(overrides)
        except json.JSONDecodeError as exc:
            raise ValueError(f"overrides {overrides!r} is not a JSON object ({exc}); write it as "
                             "'{\"niter\": 5}' or pass a dict") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides must be a dict of config keys, got {type(overrides).__name__}: {overrides!r}")
    return dict(overrides)


def parse_key_values(items: list[str]) -> dict[str, str]:
    """``["niter=5", "lr=1e-4"]`` -> ``{"niter": "5", "lr": "1e-4"}`` (the CLI's ``--set``)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: write KEY=VALUE, e.g. --set niter=5")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


def mirror_kinds(value: str) -> tuple[str, ...]:
    """The pose kinds a ``mirror_kinds`` value names (``"all"``: every kind); a ValueError lists the valid ones."""
    if value.strip() == "all":
        return POSE_KINDS
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in kinds if k not in POSE_KINDS]
    if unknown or not kinds:
        raise ValueError(f"config key 'mirror_kinds' must be \"all\" or pose kinds among {POSE_KINDS}, "
                         f"comma-separated; got {value!r}")
    return kinds


def _kind(f: dataclasses.Field) -> str:
    """A field's type name (``"int"``, ``"float"``, ...)."""
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """Cast JSON/papermill values to the field's type (ints given as floats, numbers given as strings)."""
    kind = _kind(f)
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() in {"true", "1", "yes", "on"}:
                    return True
                if value.lower() in {"false", "0", "no", "off"}:
                    return False
                raise ValueError(value)
            return bool(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, str):
                value = float(value)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind == "float":
            if isinstance(value, bool):  # a switch where a number is meant (mirror=True is not a chance of 1)
                raise ValueError(value)
            return float(value)
        if kind == "str":
            return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"config key {f.name!r} expects {kind}, got {value!r}") from None
    return value


# keys of the config that change the networks' shapes: a checkpoint only loads into the same values
ARCH_KEYS = ("width", "height", "input_nc", "output_nc", "netG", "ngf", "n_downsample_global", "n_blocks_global",
             "n_local_enhancers", "n_blocks_local", "temporal", "num_D", "ndf", "n_layers_D", "label_nc",
             "instance_maps", "instance_feat", "label_feat", "feat_num", "nef", "n_downsample_E")
FACE_ARCH_KEYS = ("face_ngf", "face_n_downsample", "face_n_blocks", "face_ndf", "face_n_layers_D")

# EDN's face stage schedule (its sizes are TrainConfig's defaults)
_EDN_FACE = dict(face_niter=100, face_niter_decay=100, face_niter_fix_main=10, keep_epoch_checkpoints=4)

PRESETS: dict[str, dict[str, Any]] = {
    # Small and CPU-friendly: `make demo` trains it in 3500 steps (4 + 3 epochs over the demo's 1000 frames), about
    # 4.5 minutes on two cores in bf16. VGG19 cannot be fetched offline, so EDN's L1 term (weight 30, measured
    # best of 10 and 30) stands in as the reconstruction loss; the face stage is left out of stage="all" because,
    # without VGG, it lowered face SSIM on the demo (bench/RESULTS.md, issue 14). Inference uses a moving average of the
    # generator's weights (ema_decay): +0.006 body SSIM against the same runs' trained weights. Four times
    # pix2pixHD's learning rate, with the hands weighed 31 times in the L1 term: +0.033 body SSIM (every pose kind
    # +0.027 to +0.037), less than half the missing hands and a lower pose error at the same steps (issue 25).
    # Sharp jitter (0.1) but in the last 2 epochs: crossed arms and overlapping hands over 0.83 body SSIM with two
    # seeds; the 2 epochs without it keep the frames steady (flicker 0.99 against 1.45-1.55 jittered to the end and
    # 1.08 without jitter); the shirt's star is kept in 87.5 % of frames (91 % without jitter; lost in crossed arms).
    # Crossed arms and overlapping hands mirrored half the time (the other arm in front, which the training clip
    # shows rarely) and drawn more often (pose_balance 0.5: 27 % of the draws instead of 13 %): the hands missing in
    # front of the body fall from 12.2 % to 6.5 % (4.6 % and 8.4 % over two seeds), every pose kind as before.
    "demo": dict(width=128, height=128, ngf=16, n_downsample_global=3, n_blocks_global=4, ndf=16, num_D=2,
                 batch_size=2, niter=4, niter_decay=3, lr=8e-4, use_l1=True, lambda_l1=30.0, hand_weight=30.0,
                 jitter=0.1, jitter_kind="sharp", jitter_off_epochs=2,
                 mirror=0.5, mirror_kinds="crossed arms,hands overlapping", pose_balance=0.5,
                 face_stage=False, ema_decay=0.999, save_latest_freq=250, display_freq=250, log_freq=10),
    # Tiny networks for tests and smoke runs (about 0.07 s per step at 64x64 on a laptop CPU).
    "tiny": dict(width=64, height=64, ngf=16, n_downsample_global=3, n_blocks_global=3, ndf=16, num_D=2,
                 n_layers_D=2, batch_size=2, niter=1, niter_decay=1, vgg_loss="off", save_latest_freq=5,
                 display_freq=5, log_freq=1, face_ngf=8, face_n_downsample=2, face_n_blocks=2, face_ndf=8,
                 face_n_layers_D=2, face_niter=1),
    # The original hobby project: pix2pixHD global generator at 512x512 (182,443,267 parameters).
    "seed": dict(width=512, height=512, ngf=64, n_downsample_global=4, n_blocks_global=9, ndf=64, num_D=2,
                 batch_size=1, niter=20, niter_decay=20, vgg_loss="auto", keep_epoch_checkpoints=4),
    # Everybody Dance Now's official recipe: always temporal, 100 + 100 epochs per stage; the global stage at
    # 512x256 with 2 discriminator scales, then the local enhancer at 1024x512 with 3 (the global stage of
    # `edn_local` is built from it: half the size, twice the filters, one scale fewer), then the face stage with
    # the face D trained alone for its first 10 epochs. Only the newest 4 numbered checkpoints are kept (each of
    # 0.2-0.7 GB; 40 per stage would fill a free Drive).
    "edn_global": dict(width=512, height=256, ngf=64, n_downsample_global=4, n_blocks_global=9, ndf=64,
                       num_D=2, batch_size=1, temporal=True, niter=100, niter_decay=100, **_EDN_FACE),
    "edn_local": dict(width=1024, height=512, netG="local", ngf=32, n_downsample_global=4, n_blocks_global=9,
                      n_local_enhancers=1, n_blocks_local=3, ndf=64, num_D=3, batch_size=1, temporal=True,
                      niter=100, niter_decay=100, **_EDN_FACE),
}


def make_config(preset: str = "demo", overrides: dict[str, Any] | str | None = None) -> TrainConfig:
    """Build the config of a named preset, then apply ``overrides`` (e.g. papermill's ``overrides`` dict)."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    return TrainConfig(preset=preset).with_overrides(PRESETS[preset]).with_overrides(overrides)


__all__ = ["ARCH_KEYS", "FACE_ARCH_KEYS", "PRESETS", "TrainConfig", "make_config", "mirror_kinds",
           "parse_key_values", "parse_overrides"]

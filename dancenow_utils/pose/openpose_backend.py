"""OpenPose backend: CMU's COCO body and hand networks in PyTorch and a part-affinity-field (PAF) decoder.

For users who bring converted CMU weights (``body_pose_model.pth``, about 209 MB, state-dict keys named after the
Caffe layers such as ``conv1_1.weight`` or ``Mconv7_stage6_L1.weight``). They cannot be downloaded here, so the
file is always a local path. The network: a VGG-19 front (conv1_1 .. conv4_2), conv4_3_CPM and conv4_4_CPM, then
six stages of two branches (38 PAF channels, 19 heatmap channels). The decoder finds heatmap peaks, scores every
candidate limb by integrating the PAF along it, matches limbs greedily and assembles people (COCO-18, returned as
BODY_25), with the rules of Hzzone/pytorch-openpose's decoder. With ``hand_pose_model.pth`` beside the body file,
the hand network runs at four scales on CMU's square box around each wrist, and the strongest region of each of its
21 heatmaps gives a hand keypoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from dancenow_utils.checkpoint import load_weights_file
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person, coco18_to_body25
from dancenow_utils.runtime.device import resolve_device

N_PARTS = 18
# (part a, part b, PAF x channel, PAF y channel) for the COCO model's 19 limbs, parts 0-based in COCO-18 order
LIMBS = (
    (1, 2, 12, 13), (1, 5, 20, 21), (2, 3, 14, 15), (3, 4, 16, 17), (5, 6, 22, 23), (6, 7, 24, 25),
    (1, 8, 0, 1), (8, 9, 2, 3), (9, 10, 4, 5), (1, 11, 6, 7), (11, 12, 8, 9), (12, 13, 10, 11),
    (1, 0, 28, 29), (0, 14, 30, 31), (14, 16, 34, 35), (0, 15, 32, 33), (15, 17, 36, 37), (2, 16, 18, 19),
    (5, 17, 26, 27),
)

_BODY_FRONT = (("conv1_1", 3, 64), ("conv1_2", 64, 64), "pool", ("conv2_1", 64, 128), ("conv2_2", 128, 128), "pool",
               ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256), "pool",
               ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3_CPM", 512, 256), ("conv4_4_CPM", 256, 128))
_HAND_FRONT = _BODY_FRONT[:12] + (("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512),
                                  ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3_CPM", 512, 128))


class _StagedNet(nn.Module):
    """A VGG-style front, then six refinement stages; every layer is an attribute named as in CMU's Caffe model,
    so converted state dicts load by name. ``branches`` maps a suffix to its output channels."""

    def __init__(self, front: tuple, first_stage: dict[str, list[tuple[str, int, int, int]]],
                 branches: dict[str, int]) -> None:
        super().__init__()
        self.front: list[str] = []
        for layer in front:
            if layer == "pool":
                self.front.append("pool")
                continue
            name, cin, cout = layer
            setattr(self, name, nn.Conv2d(cin, cout, 3, padding=1))
            self.front.append(name)
        in_later = 128 + sum(branches.values())
        self.stages: list[list[list[str]]] = []
        for t in range(1, 7):
            stage = []
            for suffix, out_c in branches.items():
                if t == 1:
                    spec = first_stage[suffix]
                else:
                    tag = f"_stage{t}{suffix}"
                    spec = [(f"Mconv1{tag}", in_later, 128, 7)]
                    spec += [(f"Mconv{k}{tag}", 128, 128, 7) for k in (2, 3, 4, 5)]
                    spec += [(f"Mconv6{tag}", 128, 128, 1), (f"Mconv7{tag}", 128, out_c, 1)]
                for name, cin, cout, k in spec:
                    setattr(self, name, nn.Conv2d(cin, cout, k, padding=k // 2))
                stage.append([name for name, *_ in spec])
            self.stages.append(stage)
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """BGR image normalised as x/256 - 0.5 -> one map per branch, at 1/8 size."""
        for name in self.front:
            x = self.pool(x) if name == "pool" else torch.relu(getattr(self, name)(x))
        feats, outs = x, None
        for stage in self.stages:
            inp = feats if outs is None else torch.cat([*outs, feats], 1)
            outs = []
            for names in stage:
                y = inp
                for i, name in enumerate(names):
                    y = getattr(self, name)(y)
                    if i < len(names) - 1:
                        y = torch.relu(y)
                outs.append(y)
        return outs


def _cpm_head(tag: str, out_c: int) -> list[tuple[str, int, int, int]]:
    spec = [(f"conv5_{k}_CPM{tag}", 128, 128, 3) for k in (1, 2, 3)]
    return spec + [(f"conv5_4_CPM{tag}", 128, 512, 1), (f"conv5_5_CPM{tag}", 512, out_c, 1)]


class BodyPoseNet(_StagedNet):
    """CMU's 6-stage COCO body network (about 52.3 M parameters): PAFs (38 channels) and heatmaps (19)."""

    def __init__(self) -> None:
        super().__init__(_BODY_FRONT, {"_L1": _cpm_head("_L1", 38), "_L2": _cpm_head("_L2", 19)},
                         {"_L1": 38, "_L2": 19})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        paf, heat = super().forward(x)
        return paf, heat


class HandPoseNet(_StagedNet):
    """CMU's 6-stage hand network (about 36.8 M parameters): 21 keypoint heatmaps plus background."""

    def __init__(self) -> None:
        super().__init__(_HAND_FRONT, {"": [("conv6_1_CPM", 128, 512, 1), ("conv6_2_CPM", 512, 22, 1)]}, {"": 22})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[0]


WEIGHT_FILES = {"body": "body_pose_model.pth", "hand": "hand_pose_model.pth"}


def _weights_file(weights: str | Path, kind: str) -> Path | None:
    """``weights`` may be the body file itself or a folder holding both files; the hand file sits beside it."""
    if not weights:
        return None
    p = Path(weights)
    folder = p if p.is_dir() else p.parent
    if kind == "body" and p.is_file():
        return p
    f = folder / WEIGHT_FILES[kind]
    return f if f.is_file() else None


def _load(net: nn.Module, path: Path) -> nn.Module:
    state = load_weights_file(path, f"CMU OpenPose {type(net).__name__} weights",
                              "Use body_pose_model.pth / hand_pose_model.pth as published with PyTorch ports of "
                              "OpenPose, or backend='mediapipe'.")
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a CMU {type(net).__name__} state dict (it holds a {type(state).__name__})")
    missing, _ = net.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{path}: not a CMU {type(net).__name__} state dict; missing keys such as {missing[:3]}")
    return net.eval()


def load_body_net(weights: str | Path) -> BodyPoseNet:
    """The body network with weights from a local file; a missing file says what is needed and where."""
    path = _weights_file(weights, "body")
    if path is None:
        raise FileNotFoundError(
            f"{weights or '(no weights given)'}: the openpose backend needs CMU's body weights converted to PyTorch, "
            "`body_pose_model.pth` (about 209 MB, as published with PyTorch ports of OpenPose). They cannot be "
            "downloaded here: copy the file, e.g. to checkpoints/openpose/body_pose_model.pth, and pass its path "
            "as `weights`, or use backend='mediapipe'.")
    return _load(BodyPoseNet(), path)


def load_hand_net(weights: str | Path) -> HandPoseNet | None:
    """The hand network from ``hand_pose_model.pth`` beside the body weights, or None when it is not there."""
    path = _weights_file(weights, "hand")
    return None if path is None else _load(HandPoseNet(), path)


# --------------------------------------------------------------------------------------------------- decoder
# The decoder follows Hzzone/pytorch-openpose (the PyTorch port of CMU's COCO model) rule for rule, so that the same
# maps give the same people: see docs/faithful.md for the list and the one deliberate difference (flat-top peaks).
N_STARTING_LIMBS = 17  # the last two limbs (shoulder-ear) only complete people, they never start one
BOX_SIZE = 368  # network input height at scale 1
STRIDE = 8  # the networks' output stride; inputs are padded to a multiple of it with grey (128)
HAND_SCALES = (0.5, 1.0, 1.5, 2.0)  # the hand network's scales, as in Hzzone's port
HAND_RATIO_WRIST_ELBOW = 0.33  # the hand box's centre lies this far beyond the wrist, in forearms


@dataclass
class DecoderParams:
    peak_threshold: float = 0.1
    paf_threshold: float = 0.05
    samples: int = 10
    min_inlier_ratio: float = 0.8
    min_parts: int = 4
    min_mean_score: float = 0.4
    sigma: float = 3.0


def gaussian_blur(m: np.ndarray, sigma: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(m, sigma)`` via OpenCV: the same kernel radius (``int(4 sigma + 0.5)``) and
    scipy's ``reflect`` border (``dcba|abcd``, OpenCV's BORDER_REFLECT, not its default REFLECT_101)."""
    if sigma <= 0:
        return m
    k = 2 * int(4.0 * sigma + 0.5) + 1
    return cv2.GaussianBlur(m, (k, k), sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def find_peaks(heat: np.ndarray, threshold: float, sigma: float) -> np.ndarray:
    """``(n, 3)`` x, y, score of the local maxima of a Gaussian-smoothed heatmap above ``threshold``, in row-major
    order; the score is the unsmoothed map's value there."""
    smooth = gaussian_blur(heat.astype(np.float64), sigma)
    p = np.pad(smooth, 1, constant_values=-np.inf)
    c = p[1:-1, 1:-1]
    # >= towards up/left and > towards down/right: a flat top of two equal pixels gives one peak, not two
    is_peak = (c >= p[:-2, 1:-1]) & (c > p[2:, 1:-1]) & (c >= p[1:-1, :-2]) & (c > p[1:-1, 2:]) & (c > threshold)
    ys, xs = np.nonzero(is_peak)
    return np.stack([xs, ys, heat[ys, xs]], axis=1).astype(np.float32) if len(xs) else np.zeros((0, 3), np.float32)


def score_limb(peaks_a: np.ndarray, peaks_b: np.ndarray, paf_x: np.ndarray, paf_y: np.ndarray, image_height: int,
               prm: DecoderParams) -> list[tuple[int, int, float]]:
    """Candidate connections ``(i, j, score)`` between peaks of part a and part b, in (i, j) order.

    The score is the PAF projected on the segment, averaged over ``samples`` points, plus a prior that penalises
    segments longer than half the image height; a candidate needs more than ``min_inlier_ratio`` of the samples
    above ``paf_threshold`` and a positive score.
    """
    t = np.linspace(0.0, 1.0, prm.samples)
    cands = []
    for i, pa in enumerate(peaks_a):
        for j, pb in enumerate(peaks_b):
            vec = pb[:2].astype(np.float64) - pa[:2]
            norm = float(np.hypot(vec[0], vec[1]))
            if norm < 1e-3:  # coincident peaks: no direction, every projection is 0, never an inlier
                continue
            xs = np.clip(np.round(pa[0] + t * vec[0]).astype(int), 0, paf_x.shape[1] - 1)
            ys = np.clip(np.round(pa[1] + t * vec[1]).astype(int), 0, paf_x.shape[0] - 1)
            unit = vec / norm
            proj = paf_x[ys, xs] * unit[0] + paf_y[ys, xs] * unit[1]
            score = float(proj.mean()) + min(0.5 * image_height / norm - 1.0, 0.0)
            if np.count_nonzero(proj > prm.paf_threshold) > prm.min_inlier_ratio * len(proj) and score > 0:
                cands.append((i, j, score))
    return cands


def select_connections(cands: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching: candidates by decreasing score (the PAF score and length prior only, not the
    peaks' heights; ties keep their order), each taken if neither of its peaks is taken yet."""
    used_a, used_b, chosen = set(), set(), []
    for i, j, s in sorted(cands, key=lambda c: -c[2]):
        if i not in used_a and j not in used_b:
            chosen.append((i, j, s))
            used_a.add(i)
            used_b.add(j)
    return chosen


@dataclass
class _Partial:
    """A person being assembled: part -> peak index, and the running part count and score the final filter uses
    (as in the reference, an overwritten part still counts once more and its score is not taken back)."""

    parts: dict[int, int]
    count: int
    score: float


def assemble(connections: list[list[tuple[int, int, float]]], peaks: list[np.ndarray],
             prm: DecoderParams) -> list[np.ndarray]:
    """Chosen connections of every limb (in ``LIMBS`` order) -> people as ``(18, 3)`` COCO-18 arrays.

    For each connection (peak i of part a, peak j of part b): no person holds either -> a new person (only for the
    first ``N_STARTING_LIMBS`` limbs); one person -> it takes peak j as part b, replacing the part b it had; two
    people -> merged when they share no part, otherwise the first takes peak j as part b.
    """
    people: list[_Partial] = []
    for k, ((a, b, _, _), chosen) in enumerate(zip(LIMBS, connections)):
        for i, j, s in chosen:
            owners = [p for p in people if p.parts.get(a) == i or p.parts.get(b) == j]
            if not owners:
                if k < N_STARTING_LIMBS:
                    people.append(_Partial({a: i, b: j}, 2, float(peaks[a][i, 2] + peaks[b][j, 2]) + s))
                continue
            first = owners[0]
            if len(owners) == 1:
                if first.parts.get(b) != j:
                    first.parts[b] = j
                    first.count += 1
                    first.score += float(peaks[b][j, 2]) + s
                continue
            second = owners[1]
            if not set(first.parts) & set(second.parts):
                first.parts.update(second.parts)
                first.count += second.count
                first.score += second.score + s
                people.remove(second)
            else:
                first.parts[b] = j
                first.count += 1
                first.score += float(peaks[b][j, 2]) + s
    out = []
    for p in people:
        if p.count < prm.min_parts or p.score / p.count < prm.min_mean_score:
            continue
        arr = np.zeros((N_PARTS, 3), np.float32)
        for part, idx in p.parts.items():
            arr[part] = peaks[part][idx]
        out.append(arr)
    return out


def decode(heatmaps: np.ndarray, pafs: np.ndarray, params: DecoderParams | None = None) -> list[np.ndarray]:
    """Heatmaps ``(H, W, 19)`` and PAFs ``(H, W, 38)`` at image resolution -> people as ``(18, 3)`` COCO-18 arrays."""
    prm = params or DecoderParams()
    peaks = [find_peaks(heatmaps[..., k], prm.peak_threshold, prm.sigma) for k in range(N_PARTS)]
    connections = [select_connections(score_limb(peaks[a], peaks[b], pafs[..., cx], pafs[..., cy],
                                                 heatmaps.shape[0], prm))
                   for a, b, cx, cy in LIMBS]
    return assemble(connections, peaks, prm)


def hand_box(shoulder: np.ndarray, elbow: np.ndarray, wrist: np.ndarray, image_hw: tuple[int, int],
             ratio: float = HAND_RATIO_WRIST_ELBOW) -> tuple[int, int, int] | None:
    """Square ``(x0, y0, side)`` in whole pixels around a hand, as CMU OpenPose's hand detector (and Hzzone's port).

    Centre: ``wrist + ratio * (wrist - elbow)``; side: ``1.5 * max(forearm, 0.9 * upper arm)``. A box over the
    top or left edge is moved inside, one over the right or bottom edge is cut (the side shrinks); None when a
    joint is missing (confidence 0) or the side ends up under 20 px.
    """
    if min(shoulder[2], elbow[2], wrist[2]) <= 0:
        return None
    sh, el, wr = (np.asarray(v[:2], np.float64) for v in (shoulder, elbow, wrist))
    cx, cy = wr + ratio * (wr - el)
    side = 1.5 * max(float(np.hypot(*(wr - el))), 0.9 * float(np.hypot(*(el - sh))))
    x0, y0 = max(cx - side / 2, 0.0), max(cy - side / 2, 0.0)
    side = min(side, image_hw[1] - x0, image_hw[0] - y0)
    if side < 20:
        return None
    return int(x0), int(y0), int(side)


def decode_hand(heat: np.ndarray, threshold: float = 0.05, sigma: float = 3.0) -> np.ndarray:
    """Hand heatmaps ``(S, S, 22)`` at crop resolution -> ``(21, 3)`` x, y, score (zeros when not found).

    Per keypoint, as Hzzone's port: smooth the map, keep the 8-connected region above ``threshold`` whose unsmoothed
    values sum highest, and take the unsmoothed map's maximum inside it.
    """
    out = np.zeros((21, 3), np.float32)
    for k in range(21):
        raw = heat[..., k].astype(np.float64)
        mask = (gaussian_blur(raw, sigma) > threshold).astype(np.uint8)
        if not mask.any():
            continue
        n, labels = cv2.connectedComponents(mask, connectivity=8)
        sums = np.bincount(labels.ravel(), weights=raw.ravel(), minlength=n)[1:]
        inside = np.where(labels == int(np.argmax(sums)) + 1, raw, 0.0)
        y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
        if inside[y, x] > 0:
            out[k] = [x, y, raw[y, x]]
    return out


class OpenPoseEstimator:
    """Callable: RGB frame -> people (BODY_25), running the CMU body network at ``scales`` x 368 px height and,
    with ``hands``, the hand network on a box around each wrist at ``hand_scales`` x 368 px."""

    def __init__(self, weights: str | Path, hands: bool = False, scales: tuple[float, ...] = (1.0,),
                 device: str = "auto", params: DecoderParams | None = None,
                 hand_scales: tuple[float, ...] = HAND_SCALES) -> None:
        if not scales or not hand_scales:
            raise ValueError("OpenPoseEstimator: `scales` and `hand_scales` need at least one scale, e.g. (1.0,)")
        self.device = resolve_device(device)
        self.net = load_body_net(weights).to(self.device)
        self.scales, self.hand_scales, self.params = tuple(scales), tuple(hand_scales), params or DecoderParams()
        self.hand_net = load_hand_net(weights) if hands else None
        if hands and self.hand_net is None:
            logging.getLogger("dancenow").warning(
                "no %s beside the body weights: hands are not detected by the openpose backend",
                WEIGHT_FILES["hand"])
        if self.hand_net is not None:
            self.hand_net.to(self.device)

    def _average_maps(self, net: nn.Module, bgr: np.ndarray, scales: tuple[float, ...]) -> list[np.ndarray]:
        """Run ``net`` on ``bgr`` resized to ``scale * 368`` px height for every scale (padded to a multiple of 8
        with grey), bring each output back to the image's size (cubic) and average over the scales."""
        h, w = bgr.shape[:2]
        sums: list[np.ndarray] = []
        for s in scales:
            f = BOX_SIZE * s / h
            img = cv2.resize(bgr, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
            ph, pw = (-img.shape[0]) % STRIDE, (-img.shape[1]) % STRIDE
            img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(128, 128, 128))
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(256).sub(0.5).to(self.device)
            outs = net(x)
            maps = []
            for t in (outs if isinstance(outs, (tuple, list)) else (outs,)):
                m = t[0].permute(1, 2, 0).float().cpu().numpy()
                m = cv2.resize(m, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_CUBIC)
                m = m[: img.shape[0] - ph, : img.shape[1] - pw]
                maps.append(cv2.resize(m, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, -1))
            sums = maps if not sums else [a + b for a, b in zip(sums, maps)]
        return [m / len(scales) for m in sums]

    @torch.no_grad()
    def hand(self, rgb: np.ndarray, shoulder: np.ndarray, elbow: np.ndarray, wrist: np.ndarray) -> np.ndarray | None:
        """21 hand keypoints (frame pixels) from the box :func:`hand_box` puts around the wrist, the hand network
        run at ``hand_scales``; None without a usable arm or without the hand network."""
        box = hand_box(shoulder, elbow, wrist, rgb.shape[:2])
        if box is None or self.hand_net is None:
            return None
        x0, y0, side = box
        crop = np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side, ::-1])
        (heat,) = self._average_maps(self.hand_net, crop, self.hand_scales)
        pts = decode_hand(heat)
        found = pts[:, 2] > 0
        pts[found, :2] += (x0, y0)
        return pts

    @torch.no_grad()
    def maps(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps ``(H, W, 19)`` and PAFs ``(H, W, 38)`` averaged over ``scales``, at the frame's resolution."""
        paf, heat = self._average_maps(self.net, np.ascontiguousarray(rgb[..., ::-1]), self.scales)
        return heat, paf

    def __call__(self, rgb: np.ndarray) -> list[Person]:
        heat, paf = self.maps(rgb)
        people = [Person(coco18_to_body25(p)) for p in decode(heat, paf, self.params)]
        if self.hand_net is not None:
            for p in people:
                b = p.body
                p.right_hand = self.hand(rgb, b[joint("RShoulder")], b[joint("RElbow")], b[joint("RWrist")])
                p.left_hand = self.hand(rgb, b[joint("LShoulder")], b[joint("LElbow")], b[joint("LWrist")])
        return people

    def close(self) -> None:
        pass

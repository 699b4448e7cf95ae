"""OpenPose backend: CMU's COCO body and hand networks in PyTorch and a part-affinity-field (PAF) decoder.

For users who bring converted CMU weights (``body_pose_model.pth``, about 209 MB, state-dict keys named after the
Caffe layers such as ``conv1_1.weight`` or ``Mconv7_stage6_L1.weight``). They cannot be downloaded here, so the
file is always a local path. The network: a VGG-19 front (conv1_1 .. conv4_2), conv4_3_CPM and conv4_4_CPM, then
six stages of two branches (38 PAF channels, 19 heatmap channels). The decoder finds heatmap peaks, scores every
candidate limb by integrating the PAF along it, matches limbs greedily and assembles people (COCO-18, returned as
BODY_25). With ``hand_pose_model.pth`` beside the body file, the hand network runs on a square crop around each
wrist and each of its 21 heatmaps' maximum becomes a hand keypoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from dancenow_utils.device import resolve_device
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person, coco18_to_body25

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
    state = torch.load(path, map_location="cpu", weights_only=True)
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
@dataclass
class DecoderParams:
    peak_threshold: float = 0.1
    paf_threshold: float = 0.05
    samples: int = 10
    min_inlier_ratio: float = 0.8
    min_parts: int = 4
    min_mean_score: float = 0.4
    sigma: float = 3.0


def find_peaks(heat: np.ndarray, threshold: float, sigma: float) -> np.ndarray:
    """``(n, 3)`` x, y, score of the local maxima of a Gaussian-smoothed heatmap above ``threshold``."""
    smooth = cv2.GaussianBlur(heat, (0, 0), sigma) if sigma > 0 else heat
    p = np.pad(smooth, 1, constant_values=-np.inf)
    c = p[1:-1, 1:-1]
    # >= towards up/left and > towards down/right: a flat top of two equal pixels gives one peak, not two
    is_peak = (c >= p[:-2, 1:-1]) & (c > p[2:, 1:-1]) & (c >= p[1:-1, :-2]) & (c > p[1:-1, 2:]) & (c > threshold)
    ys, xs = np.nonzero(is_peak)
    return np.stack([xs, ys, heat[ys, xs]], axis=1).astype(np.float32) if len(xs) else np.zeros((0, 3), np.float32)


def decode(heatmaps: np.ndarray, pafs: np.ndarray, params: DecoderParams | None = None) -> list[np.ndarray]:
    """Heatmaps ``(H, W, 19)`` and PAFs ``(H, W, 38)`` at image resolution -> people as ``(18, 3)`` COCO-18 arrays."""
    prm = params or DecoderParams()
    h = heatmaps.shape[0]
    peaks = [find_peaks(heatmaps[..., k], prm.peak_threshold, prm.sigma) for k in range(N_PARTS)]
    # score every candidate connection of every limb
    connections: list[list[tuple[int, int, float]]] = []
    for a, b, cx, cy in LIMBS:
        cands = []
        for i, pa in enumerate(peaks[a]):
            for j, pb in enumerate(peaks[b]):
                vec = pb[:2] - pa[:2]
                norm = float(np.linalg.norm(vec))
                if norm < 1e-6:
                    continue
                unit = vec / norm
                t = np.linspace(0, 1, prm.samples)
                xs = np.clip(np.round(pa[0] + t * vec[0]).astype(int), 0, pafs.shape[1] - 1)
                ys = np.clip(np.round(pa[1] + t * vec[1]).astype(int), 0, pafs.shape[0] - 1)
                scores = pafs[ys, xs, cx] * unit[0] + pafs[ys, xs, cy] * unit[1]
                prior = float(scores.mean() + min(0.5 * h / norm - 1, 0))
                if (scores > prm.paf_threshold).mean() > prm.min_inlier_ratio and prior > 0:
                    cands.append((i, j, prior, prior + pa[2] + pb[2]))
        used_a, used_b, chosen = set(), set(), []
        for i, j, s, _ in sorted(cands, key=lambda c: -c[3]):
            if i not in used_a and j not in used_b:
                chosen.append((i, j, s))
                used_a.add(i)
                used_b.add(j)
        connections.append(chosen)
    # assemble people: each person maps part -> peak index, with a running score
    people: list[dict] = []
    for (a, b, _, _), chosen in zip(LIMBS, connections):
        for i, j, s in chosen:
            owners = [p for p in people if p["parts"].get(a) == i or p["parts"].get(b) == j]
            if not owners:
                people.append({"parts": {a: i, b: j}, "score": peaks[a][i, 2] + peaks[b][j, 2] + s})
                continue
            first = owners[0]
            if len(owners) == 2:  # two partial people joined by this limb: merge when they do not overlap
                second = owners[1]
                if not set(first["parts"]) & set(second["parts"]):
                    first["parts"].update(second["parts"])
                    first["score"] += second["score"] + s
                    people.remove(second)
                    continue
            if b not in first["parts"]:
                first["parts"][b] = j
                first["score"] += peaks[b][j, 2] + s
            elif a not in first["parts"]:
                first["parts"][a] = i
                first["score"] += peaks[a][i, 2] + s
    out = []
    for p in people:
        n = len(p["parts"])
        if n < prm.min_parts or p["score"] / n < prm.min_mean_score:
            continue
        arr = np.zeros((N_PARTS, 3), np.float32)
        for part, idx in p["parts"].items():
            arr[part] = peaks[part][idx]
        out.append(arr)
    return out


def hand_box(elbow: np.ndarray, wrist: np.ndarray) -> tuple[float, float, float] | None:
    """Square ``(x0, y0, side)`` around a hand: centred a third of a forearm beyond the wrist, 2.2 forearms wide."""
    if elbow[2] <= 0.05 or wrist[2] <= 0.05:
        return None
    fore = wrist[:2] - elbow[:2]
    length = float(np.linalg.norm(fore))
    if length < 2:
        return None
    center = wrist[:2] + 0.33 * fore
    side = max(2.2 * length, 20.0)
    return float(center[0] - side / 2), float(center[1] - side / 2), side


def decode_hand(heat: np.ndarray, threshold: float = 0.05, sigma: float = 3.0) -> np.ndarray:
    """Hand heatmaps ``(S, S, 22)`` at crop resolution -> ``(21, 3)``: each map's maximum, if above ``threshold``."""
    out = np.zeros((21, 3), np.float32)
    for k in range(21):
        m = cv2.GaussianBlur(heat[..., k], (0, 0), sigma) if sigma > 0 else heat[..., k]
        y, x = np.unravel_index(int(np.argmax(m)), m.shape)
        if m[y, x] > threshold:
            out[k] = [x, y, heat[y, x, k]]
    return out


class OpenPoseEstimator:
    """Callable: RGB frame -> people (BODY_25), running the CMU body network at ``scales`` x 368 px height."""

    def __init__(self, weights: str | Path, hands: bool = False, scales: tuple[float, ...] = (1.0,),
                 device: str = "auto", params: DecoderParams | None = None) -> None:
        self.device = resolve_device(device)
        self.net = load_body_net(weights).to(self.device)
        self.scales, self.params = scales, params or DecoderParams()
        self.hand_net = load_hand_net(weights) if hands else None
        if hands and self.hand_net is None:
            import logging

            logging.getLogger("dancenow").warning(
                "no %s beside the body weights: hands are not detected by the openpose backend",
                WEIGHT_FILES["hand"])
        if self.hand_net is not None:
            self.hand_net.to(self.device)

    @torch.no_grad()
    def hand(self, rgb: np.ndarray, elbow: np.ndarray, wrist: np.ndarray, size: int = 368) -> np.ndarray | None:
        """21 hand keypoints (frame pixels) from a crop around the wrist, or None without a usable arm."""
        box = hand_box(elbow, wrist)
        if box is None or self.hand_net is None:
            return None
        x0, y0, side = box
        s = size / side
        m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float32)
        crop = cv2.warpAffine(np.ascontiguousarray(rgb[..., ::-1]), m, (size, size), borderValue=(128, 128, 128))
        x = torch.from_numpy(crop).permute(2, 0, 1)[None].float().div(256).sub(0.5).to(self.device)
        heat = self.hand_net(x)[0].permute(1, 2, 0).float().cpu().numpy()
        heat = cv2.resize(heat, (size, size), interpolation=cv2.INTER_CUBIC)
        pts = decode_hand(heat)
        ok = pts[:, 2] > 0
        pts[ok, :2] = pts[ok, :2] / s + (x0, y0)
        return pts

    @torch.no_grad()
    def maps(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Averaged heatmaps and PAFs at the frame's resolution."""
        h, w = rgb.shape[:2]
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        heat_sum = np.zeros((h, w, 19), np.float32)
        paf_sum = np.zeros((h, w, 38), np.float32)
        for s in self.scales:
            f = 368 * s / h
            img = cv2.resize(bgr, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
            ph, pw = (-img.shape[0]) % 8, (-img.shape[1]) % 8
            img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(128, 128, 128))
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(256).sub(0.5).to(self.device)
            paf, heat = self.net(x)

            def restore(t: torch.Tensor, shape=img.shape, ph=ph, pw=pw) -> np.ndarray:
                m = t[0].permute(1, 2, 0).float().cpu().numpy()
                m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
                m = m[: shape[0] - ph, : shape[1] - pw]
                return cv2.resize(m, (w, h), interpolation=cv2.INTER_CUBIC)

            heat_sum += restore(heat)
            paf_sum += restore(paf)
        return heat_sum / len(self.scales), paf_sum / len(self.scales)

    def __call__(self, rgb: np.ndarray) -> list[Person]:
        heat, paf = self.maps(rgb)
        people = [Person(coco18_to_body25(p)) for p in decode(heat, paf, self.params)]
        if self.hand_net is not None:
            for p in people:
                b = p.body
                p.right_hand = self.hand(rgb, b[joint("RElbow")], b[joint("RWrist")])
                p.left_hand = self.hand(rgb, b[joint("LElbow")], b[joint("LWrist")])
        return people

    def close(self) -> None:
        pass

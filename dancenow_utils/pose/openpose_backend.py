"""OpenPose backend: CMU's COCO body network in PyTorch and a part-affinity-field (PAF) decoder.

For users who bring converted CMU weights (``body_pose_model.pth``, about 209 MB, state-dict keys named after the
Caffe layers such as ``conv1_1.weight`` or ``Mconv7_stage6_L1.weight``). They cannot be downloaded here, so the
file is always a local path. The network: a VGG-19 front (conv1_1 .. conv4_2), conv4_3_CPM and conv4_4_CPM, then
six stages of two branches (38 PAF channels, 19 heatmap channels). The decoder finds heatmap peaks, scores every
candidate limb by integrating the PAF along it, matches limbs greedily and assembles people (COCO-18, returned as
BODY_25).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from dancenow_utils.pose.keypoints import Person, coco18_to_body25

N_PARTS = 18
# (part a, part b, PAF x channel, PAF y channel) for the COCO model's 19 limbs, parts 0-based in COCO-18 order
LIMBS = (
    (1, 2, 12, 13), (1, 5, 20, 21), (2, 3, 14, 15), (3, 4, 16, 17), (5, 6, 22, 23), (6, 7, 24, 25),
    (1, 8, 0, 1), (8, 9, 2, 3), (9, 10, 4, 5), (1, 11, 6, 7), (11, 12, 8, 9), (12, 13, 10, 11),
    (1, 0, 28, 29), (0, 14, 30, 31), (14, 16, 34, 35), (0, 15, 32, 33), (15, 17, 36, 37), (2, 16, 18, 19),
    (5, 17, 26, 27),
)

_VGG = (("conv1_1", 3, 64), ("conv1_2", 64, 64), "pool", ("conv2_1", 64, 128), ("conv2_2", 128, 128), "pool",
        ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256), "pool",
        ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3_CPM", 512, 256), ("conv4_4_CPM", 256, 128))


class BodyPoseNet(nn.Module):
    """CMU's 6-stage COCO body network; parameter names match the converted ``body_pose_model.pth``."""

    def __init__(self) -> None:
        super().__init__()
        self.front: list[str] = []
        for layer in _VGG:
            if layer == "pool":
                self.front.append("pool")
                continue
            name, cin, cout = layer
            setattr(self, name, nn.Conv2d(cin, cout, 3, padding=1))
            self.front.append(name)
        self.stages: list[dict[str, list[str]]] = []
        for t in range(1, 7):
            branches = {}
            for branch, out_c in (("L1", 38), ("L2", 19)):
                names = []
                if t == 1:
                    spec = [(f"conv5_{k}_CPM_{branch}", 128, 128, 3) for k in (1, 2, 3)]
                    spec += [(f"conv5_4_CPM_{branch}", 128, 512, 1), (f"conv5_5_CPM_{branch}", 512, out_c, 1)]
                else:
                    spec = [(f"Mconv1_stage{t}_{branch}", 185, 128, 7)]
                    spec += [(f"Mconv{k}_stage{t}_{branch}", 128, 128, 7) for k in (2, 3, 4, 5)]
                    spec += [(f"Mconv6_stage{t}_{branch}", 128, 128, 1), (f"Mconv7_stage{t}_{branch}", 128, out_c, 1)]
                for name, cin, cout, k in spec:
                    setattr(self, name, nn.Conv2d(cin, cout, k, padding=k // 2))
                    names.append(name)
                branches[branch] = names
            self.stages.append(branches)
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """BGR image normalised as x/256 - 0.5 -> (PAFs with 38 channels, heatmaps with 19), at 1/8 size."""
        for name in self.front:
            x = self.pool(x) if name == "pool" else torch.relu(getattr(self, name)(x))
        feats = x
        paf = heat = None
        for branches in self.stages:
            inp = feats if paf is None else torch.cat([paf, heat, feats], 1)
            outs = []
            for names in (branches["L1"], branches["L2"]):
                y = inp
                for i, name in enumerate(names):
                    y = getattr(self, name)(y)
                    if i < len(names) - 1:
                        y = torch.relu(y)
                outs.append(y)
            paf, heat = outs
        return paf, heat


def load_body_net(weights: str | Path) -> BodyPoseNet:
    """The body network with weights from a local file; a missing file says what is needed and where."""
    path = Path(weights) if weights else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"{weights or '(no weights given)'}: the openpose backend needs CMU's body weights converted to PyTorch, "
            "`body_pose_model.pth` (about 209 MB, as published with PyTorch ports of OpenPose). They cannot be "
            "downloaded here: copy the file, e.g. to checkpoints/openpose/body_pose_model.pth, and pass its path "
            "as `weights`, or use backend='mediapipe'.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = BodyPoseNet()
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{path}: not a CMU body_pose_model state dict; missing keys such as {missing[:3]}")
    return net.eval()


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


class OpenPoseEstimator:
    """Callable: RGB frame -> people (BODY_25), running the CMU body network at ``scales`` x 368 px height."""

    def __init__(self, weights: str | Path, hands: bool = False, scales: tuple[float, ...] = (1.0,),
                 device: str = "auto", params: DecoderParams | None = None) -> None:
        from dancenow_utils.models.pix2pixhd import resolve_device

        self.device = resolve_device(device)
        self.net = load_body_net(weights).to(self.device)
        self.scales, self.params = scales, params or DecoderParams()

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
        return [Person(coco18_to_body25(p)) for p in decode(heat, paf, self.params)]

    def close(self) -> None:
        pass

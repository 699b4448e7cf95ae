"""MediaPipe Holistic's pipeline written out in NumPy: BlazePose body, face mesh and hands on LiteRT.

MediaPipe's graphs (Apache-2.0) chain small networks through regions of interest (ROIs): a rotated square in the
image, cropped and resampled to each network's input. This module follows the legacy Holistic graph of
mediapipe 0.10.14 with its models (:mod:`~dancenow_utils.pose.tflite_models`):

1. **Body**: the pose detector (224 px, SSD with 2254 anchors) finds the hips' centre and a point that gives the
   body's size and tilt; the ROI around them (x1.25) goes to the landmark network (256 px): 33 landmarks plus two
   that give the next frame's ROI (tracking), visibility, a segmentation mask and heatmaps that refine x and y.
2. **Face**: the pose's face points give a loose ROI (x3); the short-range face detector (128 px) finds the face in
   it, and its eye line and keypoints give the ROI (x2) of the face-mesh network (192 px, 468 points).
3. **Hands**: wrist, index and pinky of the pose give a ROI (x2.7) that the re-crop network (256 px) tightens; the
   hand network (224 px) gives 21 points in OpenPose's order.

Coordinates are pixels with edges at 0 and the image size (MediaPipe's normalised coordinates times the size).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

N_BODY_LM = 33  # BlazePose landmarks; 33 and 34 are the auxiliary points for the next frame's ROI


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))


def _normalize_radians(a: float) -> float:
    return a - 2 * math.pi * math.floor((a + math.pi) / (2 * math.pi))


@dataclass(frozen=True)
class Roi:
    """A rotated rectangle in pixels: centre, width, height and rotation (radians, clockwise on screen)."""

    cx: float
    cy: float
    w: float
    h: float
    angle: float = 0.0

    @staticmethod
    def aligned(center: np.ndarray, scale_point: np.ndarray, target_degrees: float) -> Roi:
        """MediaPipe's alignment-points rectangle: a square centred on ``center``, twice the distance to
        ``scale_point`` wide, turned so that the vector between them points at ``target_degrees``."""
        size = 2.0 * float(np.hypot(*(scale_point - center)))
        return Roi(float(center[0]), float(center[1]), size, size, rotation(center, scale_point, target_degrees))

    @staticmethod
    def around(points: np.ndarray, angle: float) -> Roi:
        """The axis-aligned bounding box of ``points`` (``(N, 2)``) with a rotation attached (MediaPipe's
        detection-to-rectangle conversion, which rotates the box about its centre)."""
        lo, hi = points.min(axis=0), points.max(axis=0)
        c = (lo + hi) / 2
        return Roi(float(c[0]), float(c[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]), angle)

    def transformed(self, scale: float = 1.0, shift_y: float = 0.0) -> Roi:
        """MediaPipe's rectangle transformation: shift along the rotated y axis (a fraction of the height),
        scale, and make it square on its longer side."""
        cx = self.cx - self.h * shift_y * math.sin(self.angle)
        cy = self.cy + self.h * shift_y * math.cos(self.angle)
        side = max(self.w, self.h) * scale
        return Roi(cx, cy, side, side, self.angle)

    def fitted(self, width: int, height: int) -> Roi:
        """Grown along one side to the tensor's aspect ratio (letterboxing, as ``keep_aspect_ratio`` does)."""
        if self.w * height > self.h * width:
            return Roi(self.cx, self.cy, self.w, self.w * height / width, self.angle)
        return Roi(self.cx, self.cy, self.h * width / height, self.h, self.angle)

    def tensor_to_image(self, width: int, height: int) -> np.ndarray:
        """3x3 matrix from a ``width`` x ``height`` tensor's pixel centres to the image's pixel centres."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        sx, sy = self.w / width, self.h / height
        # image edge coords = centre + R @ ((u_edge / W - 0.5) w, (v_edge / H - 0.5) h); pixel centres are edge - 0.5
        a = np.array([[c * sx, -s * sy], [s * sx, c * sy]])
        t = np.array([self.cx, self.cy]) + a @ np.array([0.5 - width / 2, 0.5 - height / 2]) - 0.5
        return np.array([[a[0, 0], a[0, 1], t[0]], [a[1, 0], a[1, 1], t[1]], [0, 0, 1]])

    def to_image(self, fractions: np.ndarray) -> np.ndarray:
        """``(N, 2)`` positions as fractions of the ROI (0..1, x right, y down) -> image pixels."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        x, y = (fractions[:, 0] - 0.5) * self.w, (fractions[:, 1] - 0.5) * self.h
        return np.stack([self.cx + c * x - s * y, self.cy + s * x + c * y], axis=1).astype(np.float32)


def rotation(start: np.ndarray, end: np.ndarray, target_degrees: float) -> float:
    """The ROI rotation that turns the vector ``start -> end`` (pixels, y down) to ``target_degrees``."""
    return _normalize_radians(math.radians(target_degrees)
                              - math.atan2(-(float(end[1]) - float(start[1])), float(end[0]) - float(start[0])))


def crop(rgb: np.ndarray, roi: Roi, size: int, signed: bool, zero_border: bool) -> np.ndarray:
    """The ROI resampled to a ``size`` x ``size`` float tensor, in [-1, 1] (``signed``) or [0, 1]."""
    m = roi.tensor_to_image(size, size)[:2]
    border = cv2.BORDER_CONSTANT if zero_border else cv2.BORDER_REPLICATE
    out = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border,
                         borderValue=(0, 0, 0))
    out = out.astype(np.float32)
    return out / 127.5 - 1.0 if signed else out / 255.0


def ssd_anchors(size: int, strides: tuple[int, ...]) -> np.ndarray:
    """Centres ``(N, 2)`` (fractions of the input) of MediaPipe's SSD anchors with fixed anchor size: two anchors
    per layer and cell, layers of one stride sharing their grid."""
    centres = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = 2 * (j - i)
        n = math.ceil(size / strides[i])
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
        i = j
    return np.concatenate(centres).astype(np.float32)


@dataclass
class Detection:
    score: float
    box: np.ndarray  # xmin, ymin, xmax, ymax (fractions of the input)
    keypoints: np.ndarray  # (K, 2) fractions of the input


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, size: int,
                      n_keypoints: int, min_score: float = 0.5, iou: float = 0.3) -> list[Detection]:
    """SSD outputs -> detections, best first, merged by MediaPipe's weighted non-maximum suppression."""
    scores = _sigmoid(np.clip(raw_scores.reshape(-1), -100, 100))
    keep = np.flatnonzero(scores >= min_score)
    if not len(keep):
        return []
    raw, anc = raw_boxes.reshape(len(anchors), -1)[keep] / size, anchors[keep]
    centre = raw[:, :2] + anc
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    kps = raw[:, 4:4 + 2 * n_keypoints].reshape(-1, n_keypoints, 2) + anc[:, None, :]
    return weighted_nms(scores[keep], boxes, kps, iou)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - inter
    return np.where(area > 0, inter / np.maximum(area, 1e-12), 0.0)


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, kps: np.ndarray, iou: float) -> list[Detection]:
    """Take the best remaining detection, average it with every one overlapping it by more than ``iou``
    (weighted by score), drop those, repeat."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while len(order):
        overlap = _iou(boxes[order[0]], boxes[order]) > iou
        group, order = order[overlap], order[~overlap]
        w = scores[group][:, None]
        out.append(Detection(float(scores[group[0]]), (boxes[group] * w).sum(0) / w.sum(),
                             (kps[group] * w[:, :, None]).sum(0) / w.sum()))
    return out


def refine_from_heatmap(xy: np.ndarray, heatmap: np.ndarray, kernel: int = 7, min_conf: float = 0.5) -> np.ndarray:
    """MediaPipe's heatmap refinement: each landmark (fractions of the ROI) moves to the confidence-weighted mean
    position of its heatmap channel in a ``kernel``-wide window, where that window is confident enough."""
    h, w, n = heatmap.shape
    out = xy.copy()
    r = (kernel - 1) // 2
    for i in range(min(n, len(xy))):
        col, row = int(xy[i, 0] * w), int(xy[i, 1] * h)
        if not (0 <= col < w and 0 <= row < h):
            continue
        r0, r1, c0, c1 = max(0, row - r), min(h, row + r + 1), max(0, col - r), min(w, col + r + 1)
        conf = _sigmoid(heatmap[r0:r1, c0:c1, i])
        total = conf.sum()
        if conf.max() >= min_conf and total > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[i] = ((cols * conf).sum() / w / total, (rows * conf).sum() / h / total)
    return out


class TFLiteNet:
    """One ``.tflite`` network on LiteRT, outputs by name."""

    def __init__(self, path: str | Path, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self._it = Interpreter(model_path=str(path), num_threads=threads)
        self._it.allocate_tensors()
        self._input = self._it.get_input_details()[0]["index"]
        self._outputs = {d["name"]: d["index"] for d in self._it.get_output_details()}

    def __call__(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        self._it.set_tensor(self._input, tensor[None].astype(np.float32))
        self._it.invoke()
        return {name: self._it.get_tensor(i)[0] for name, i in self._outputs.items()}


@dataclass
class BodyResult:
    landmarks: np.ndarray  # (33, 5): x, y (pixels), z (pixels, relative to the hips), visibility, presence
    auxiliary: np.ndarray  # (2, 2) pixels: the next frame's ROI points
    roi: Roi
    segmentation: np.ndarray | None  # (H, W) float in [0, 1], the person's mask, when asked for


@dataclass
class HolisticResult:
    body: BodyResult | None = None
    face: np.ndarray | None = None  # (468, 3): x, y (pixels), z
    left_hand: np.ndarray | None = None  # (21, 3)
    right_hand: np.ndarray | None = None


POSE_ANCHORS = ssd_anchors(224, (8, 16, 32, 32, 32))
FACE_ANCHORS = ssd_anchors(128, (8, 16, 16, 16))
HAND_CHAINS = {"left_hand": (15, 17, 19), "right_hand": (16, 18, 20)}  # wrist, pinky, index in BlazePose


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Holistic:
    """Body, face and hands of one person per frame (module docstring). ``video=True`` tracks the body from the
    previous frame's landmarks instead of running the detector on every frame."""

    def __init__(self, models: dict[str, Path], face: bool = True, hands: bool = True, video: bool = False,
                 segmentation: bool = False, min_detection_confidence: float = 0.5, threads: int | None = None) -> None:
        threads = threads or default_threads()
        self.face, self.hands, self.video, self.segmentation = face, hands, video, segmentation
        self.min_detection_confidence = min_detection_confidence
        self.pose_detector = TFLiteNet(models["pose_detection.tflite"], threads)
        self.pose_landmarks = TFLiteNet(models["pose_landmark_full.tflite"], threads)
        if face:
            self.face_detector = TFLiteNet(models["face_detection_short_range.tflite"], threads)
            self.face_mesh = TFLiteNet(models["face_landmark.tflite"], threads)
        if hands:
            self.hand_recrop = TFLiteNet(models["hand_recrop.tflite"], threads)
            self.hand_landmarks = TFLiteNet(models["hand_landmark_full.tflite"], threads)
        self._track: Roi | None = None

    def reset(self) -> None:
        """Forget the tracked body: the next frame runs the detector."""
        self._track = None

    # --- body -----------------------------------------------------------------------------------------------
    def detect_bodies(self, rgb: np.ndarray) -> list[Roi]:
        """The ROIs of the bodies the detector finds in the frame, most confident first."""
        h, w = rgb.shape[:2]
        frame = Roi(w / 2, h / 2, w, h).fitted(224, 224)
        out = self.pose_detector(crop(rgb, frame, 224, signed=True, zero_border=True))
        found = decode_detections(out["Identity"], out["Identity_1"], POSE_ANCHORS, 224, 4,
                                  self.min_detection_confidence)
        rois = []
        for det in found:
            kps = frame.to_image(det.keypoints)
            rois.append(Roi.aligned(kps[0], kps[1], 90).transformed(1.25))
        return rois

    def detect_body(self, rgb: np.ndarray) -> Roi | None:
        """The ROI of the most confident body in the frame (as MediaPipe takes it), or None."""
        rois = self.detect_bodies(rgb)
        return rois[0] if rois else None

    def body_in(self, rgb: np.ndarray, roi: Roi) -> BodyResult | None:
        """Body landmarks inside ``roi``; None when the network says no body is there."""
        out = self.pose_landmarks(crop(rgb, roi, 256, signed=False, zero_border=False))
        if float(np.asarray(out["Identity_1"]).reshape(-1)[0]) < 0.5:
            return None
        raw = out["Identity"].reshape(-1, 5)
        xy = refine_from_heatmap(raw[:, :2] / 256.0, out["Identity_3"])
        pts = roi.to_image(xy)
        lm = np.zeros((len(raw), 5), np.float32)
        lm[:, :2] = pts
        lm[:, 2] = raw[:, 2] / 256.0 * roi.w
        lm[:, 3], lm[:, 4] = _sigmoid(raw[:, 3]), _sigmoid(raw[:, 4])
        seg = None
        if self.segmentation:
            h, w = rgb.shape[:2]
            mask = _sigmoid(out["Identity_2"][..., 0]).astype(np.float32)
            seg = cv2.warpAffine(mask, roi.tensor_to_image(256, 256)[:2], (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return BodyResult(lm[:N_BODY_LM], lm[N_BODY_LM:N_BODY_LM + 2, :2], roi, seg)

    def body(self, rgb: np.ndarray) -> BodyResult | None:
        """The body in this frame: tracked from the previous frame's ROI in video mode, else detected."""
        if self._track is not None:
            found = self.body_in(rgb, self._track)
            if found is not None:
                self._track = self._next_roi(found) if self.video else None
                return found
        roi = self.detect_body(rgb)
        found = self.body_in(rgb, roi) if roi is not None else None
        self._track = self._next_roi(found) if self.video and found is not None else None
        return found

    @staticmethod
    def _next_roi(body: BodyResult) -> Roi:
        return Roi.aligned(body.auxiliary[0], body.auxiliary[1], 90).transformed(1.25)

    # --- face -----------------------------------------------------------------------------------------------
    def face_mesh_points(self, rgb: np.ndarray, body: np.ndarray) -> np.ndarray | None:
        """468 face-mesh points ``(468, 3)`` for the body's face (BlazePose landmarks ``(33, >=2)``), or None."""
        pts = body[:11, :2]
        loose = Roi.around(pts, rotation(pts[5], pts[2], 0)).transformed(3.0)  # right eye -> left eye
        out = self.face_detector(crop(rgb, loose, 128, signed=True, zero_border=True))
        found = decode_detections(out["regressors"], out["classificators"], FACE_ANCHORS, 128, 6)
        if not found:
            return None
        kps = loose.to_image(found[0].keypoints)
        roi = Roi.around(kps, rotation(kps[0], kps[1], 0)).transformed(2.0, shift_y=-0.1)
        out = self.face_mesh(crop(rgb, roi, 192, signed=False, zero_border=False))
        if float(_sigmoid(np.asarray(out["conv2d_31"]).reshape(-1)[0])) < 0.5:
            return None
        raw = np.asarray(out["conv2d_21"]).reshape(-1, 3)
        mesh = np.zeros((len(raw), 3), np.float32)
        mesh[:, :2] = roi.to_image(raw[:, :2] / 192.0)
        mesh[:, 2] = raw[:, 2] / 192.0 * roi.w
        return mesh

    # --- hands ----------------------------------------------------------------------------------------------
    def hand_points(self, rgb: np.ndarray, body: np.ndarray, chain: tuple[int, int, int]) -> np.ndarray | None:
        """21 hand points ``(21, 3)`` for one of the body's hands (``chain``: wrist, pinky, index), or None."""
        wrist, pinky, index = body[list(chain), :2]
        if body[chain[0], 3] < 0.1:  # the wrist is not visible: no hand to look for
            return None
        middle = (2 * index + pinky) / 3
        size = 2 * float(np.hypot(*(middle - wrist)))
        if size < 1:
            return None
        loose = Roi(float(middle[0]), float(middle[1]), size, size, rotation(wrist, middle, 90))
        loose = loose.transformed(2.7, shift_y=-0.1)
        out = self.hand_recrop(crop(rgb, loose, 256, signed=False, zero_border=False))
        kps = loose.to_image(np.asarray(out["output_crop"]).reshape(2, 2) / 256.0)
        roi = Roi.aligned(kps[0], kps[1], -90).transformed(1.0, shift_y=-0.1)
        if roi.w < 1:
            return None
        out = self.hand_landmarks(crop(rgb, roi, 224, signed=False, zero_border=False))
        if float(np.asarray(out["Identity_1"]).reshape(-1)[0]) < 0.5:
            return None
        raw = np.asarray(out["Identity"]).reshape(21, 3)
        hand = np.zeros((21, 3), np.float32)
        hand[:, :2] = roi.to_image(raw[:, :2] / 224.0)
        hand[:, 2] = raw[:, 2] / 224.0 * roi.w
        return hand

    def __call__(self, rgb: np.ndarray) -> HolisticResult:
        body = self.body(rgb)
        if body is None:
            return HolisticResult()
        res = HolisticResult(body)
        if self.face:
            res.face = self.face_mesh_points(rgb, body.landmarks)
        if self.hands:
            res.left_hand = self.hand_points(rgb, body.landmarks, HAND_CHAINS["left_hand"])
            res.right_hand = self.hand_points(rgb, body.landmarks, HAND_CHAINS["right_hand"])
        return res

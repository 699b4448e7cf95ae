"""MediaPipe backend: offline body, face and hand keypoints on the CPU, mapped into OpenPose's layouts.

Runs MediaPipe Holistic's models (BlazePose full, face mesh, hands; mediapipe 0.10.14's ``.tflite`` files, fetched
once by :mod:`~dancenow_utils.pose.tflite_models`) on LiteRT, through the same chain of detectors and regions of
interest as MediaPipe's own graph (:mod:`~dancenow_utils.pose.blazepose`), on every Python from 3.10 to 3.14.
BlazePose's 33 landmarks become BODY_25 (Neck and MidHip are midpoints; heels and toes come from MediaPipe's foot
points), the 468-point face mesh becomes OpenPose's 70 face points through :data:`FACE_MESH_TO_IBUG70`, and hands
are already in OpenPose's 21-point order. Confidence is BlazePose's visibility for body points and 1 for detected
face and hand points. Every point also gets MediaPipe's depth (:attr:`Person.depth`): BlazePose's z relative to
the hips, with the hands' and the face's own relative z placed at the body's wrists and nose.

BlazePose tracks a single person. To skip frames with several people (the extractor must not pair a frame with
the wrong person's skeleton) people are counted from bodies: the first person is masked out of the frame (its
segmentation mask and a thick outline of its skeleton, filled with the frame's mean colour) and a second,
still-image pass of the pose networks looks at what is left (the detector's three best candidates, since
the best one may hold no body the landmark network accepts); a confident body there, whose torso lies outside the
mask, is a second person. This runs on every still image and on every ``count_every``-th frame of a video (every
frame while it sees several people); the extractor then also marks the frames just before such a detection
(:data:`MULTI_PERSON_BACKFILL`). How many several-person frames still get through is measured on the demo
generator's hard footage (``bench/hard_footage.py``; bench/RESULTS.md, "Hard footage").
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

import cv2
import numpy as np

from dancenow_utils.pose.formats import N_BODY, joint
from dancenow_utils.pose.keypoints import Person

# BODY_25 index -> BlazePose landmark index (Neck and MidHip are computed; small toes reuse the foot index)
BODY25_FROM_BLAZEPOSE = {
    "Nose": 0, "RShoulder": 12, "RElbow": 14, "RWrist": 16, "LShoulder": 11, "LElbow": 13, "LWrist": 15,
    "RHip": 24, "RKnee": 26, "RAnkle": 28, "LHip": 23, "LKnee": 25, "LAnkle": 27, "REye": 5, "LEye": 2,
    "REar": 8, "LEar": 7, "LBigToe": 31, "LSmallToe": 31, "LHeel": 29, "RBigToe": 32, "RSmallToe": 32,
    "RHeel": 30,
}

# OpenPose face point (iBUG 68 order + 2 pupils) -> MediaPipe face-mesh vertex. Chosen by hand on the canonical
# mesh: jaw along the lower face oval from the subject's right ear to the left; upper brow edges; nose bridge to
# tip; nostril wings; six points per eye contour starting at the outer corner of the right eye and the inner corner
# of the left; outer and inner lip contours from the right mouth corner. The pupils (68, 69) are the mean of their
# eye's six contour points (the mesh has no pupil vertex without the refined iris model).
FACE_MESH_TO_IBUG70 = (
    # jaw 0-16
    234, 93, 132, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 361, 323, 454,
    # right brow 17-21 (outer to inner), left brow 22-26 (inner to outer)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27-30, nostrils 31-35
    168, 197, 5, 1, 98, 97, 2, 326, 327,
    # right eye 36-41, left eye 42-47
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # outer lips 48-59
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    # inner lips 60-67
    78, 81, 13, 311, 308, 402, 14, 178,
)
MULTI_PERSON_BACKFILL = 4  # video frames before a multi-person detection that may have had two people too
# BlazePose bones drawn (thick) into the mask that hides the first person from the second pass
BLAZEPOSE_BONES = ((11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24), (23, 25), (25, 27),
                   (24, 26), (26, 28), (27, 31), (28, 32), (0, 11), (0, 12))
BLAZEPOSE_CORE = (0, 11, 12, 23, 24)  # nose, shoulders, hips: where a second body must be to count
SECOND_PASS_CANDIDATES = 3  # detections the second pass tries before it says "one person"
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)


def _confident(points: np.ndarray) -> np.ndarray:
    """``(N, >=2)`` detected points -> ``(N, 3)`` pixels with confidence 1 (face and hand networks give none)."""
    out = np.ones((len(points), 3), np.float32)
    out[:, :2] = points[:, :2]
    return out


def blazepose_to_body25(lm: np.ndarray) -> np.ndarray:
    """``(33, 3)`` BlazePose landmarks (pixels, visibility) -> ``(25, 3)`` BODY_25."""
    body = np.zeros((N_BODY, 3), np.float32)
    for name, idx in BODY25_FROM_BLAZEPOSE.items():
        body[joint(name)] = lm[idx]
    for name, (a, b) in (("Neck", (11, 12)), ("MidHip", (23, 24))):
        body[joint(name)] = [(lm[a, 0] + lm[b, 0]) / 2, (lm[a, 1] + lm[b, 1]) / 2, min(lm[a, 2], lm[b, 2])]
    return body


def blazepose_depth(lm: np.ndarray) -> np.ndarray:
    """BODY_25 depth from ``(33, >=3)`` BlazePose landmarks (x, y, z in pixels): BlazePose's z, relative to the
    hips' midpoint, smaller nearer the camera; Neck and MidHip take their two points' mean."""
    z = np.zeros(N_BODY, np.float32)
    for name, idx in BODY25_FROM_BLAZEPOSE.items():
        z[joint(name)] = lm[idx, 2]
    for name, (a, b) in (("Neck", (11, 12)), ("MidHip", (23, 24))):
        z[joint(name)] = (lm[a, 2] + lm[b, 2]) / 2
    return z


def hand_depth(hand: np.ndarray, wrist_z: float) -> np.ndarray:
    """A hand's 21 depths in the body's frame: the hand network's z is relative to its own wrist, so it is put
    where the body's wrist is."""
    return (hand[:, 2] - hand[0, 2] + wrist_z).astype(np.float32)


def face_depth(mesh: np.ndarray, nose_z: float) -> np.ndarray:
    """The 70 face points' depths in the body's frame: the face mesh's z (relative to the face) shifted so that
    its nose tip (vertex 1) is at the body's nose."""
    z = np.zeros(70, np.float32)
    z[:68] = mesh[list(FACE_MESH_TO_IBUG70), 2]
    z[68], z[69] = z[RIGHT_EYE].mean(), z[LEFT_EYE].mean()
    return (z - mesh[1, 2] + nose_z).astype(np.float32)


def face_mesh_to_face70(mesh: np.ndarray) -> np.ndarray:
    """``(468+, 3)`` face-mesh points -> OpenPose's ``(70, 3)`` face points."""
    face = np.zeros((70, 3), np.float32)
    face[:68] = mesh[list(FACE_MESH_TO_IBUG70)]
    face[68] = face[RIGHT_EYE].mean(axis=0)
    face[69] = face[LEFT_EYE].mean(axis=0)
    return face


# What the native code (LiteRT, absl logging as MediaPipe used it) prints that nobody needs to read: absl info and
# warning lines ("W0000 00:00:1795552684.399313   12740 inference_feedback_manager.cc:114] ..."), TFLite's
# "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." and absl's notice that logging is not initialised.
NATIVE_NOISE = re.compile(r"[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] |INFO: |"
                          r"WARNING: All log messages before absl::InitializeLog\(\) is called")
_capture_lock = threading.Lock()
_capture: dict = {"depth": 0}


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Run MediaPipe's C++ code without its log lines in the notebook, keeping everything else.

    LiteRT (and MediaPipe before it) logs from native code straight to file descriptor 2, which Jupyter and
    Colab kernels forward into cell output; GLOG_minloglevel and TF_CPP_MIN_LOG_LEVEL do not reach it. So fd 2 is
    sent to a temporary file for the duration, and afterwards every line that is not native info/warning noise
    (Python warnings, native errors) is written to ``sys.stderr``: nothing but the noise is lost. Python
    exceptions are not affected (they propagate; tracebacks print after the block). Thread-safe and re-entrant:
    the outermost block swaps fd 2.
    """
    with _capture_lock:
        if _capture["depth"] == 0:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError, AttributeError):  # no fd 2 (e.g. a GUI interpreter): nothing to quiet
                saved = None
            if saved is not None:
                log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below, by the outermost block)
                os.dup2(log.fileno(), 2)
                _capture.update(saved=saved, log=log)
        _capture["depth"] += 1
    try:
        yield
    finally:
        with _capture_lock:
            _capture["depth"] -= 1
            if _capture["depth"] == 0 and _capture.get("saved") is not None:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()
                saved, log = _capture.pop("saved"), _capture.pop("log")
                os.dup2(saved, 2)
                os.close(saved)
                log.seek(0)
                kept = [line for line in log.read().decode(errors="replace").splitlines(keepends=True)
                        if not NATIVE_NOISE.match(line)]
                log.close()
                if kept:
                    sys.stderr.write("".join(kept))


def person_mask(landmarks: np.ndarray, height: int, width: int, segmentation: np.ndarray | None = None) -> np.ndarray:
    """A uint8 mask (255 inside) covering one person: a thick outline of its ``(33, 3)`` BlazePose landmarks
    (pixels), joined with its segmentation mask when there is one."""
    pts = landmarks[:, :2]
    ys = pts[[0, 11, 12, 23, 24, 27, 28], 1]
    body_h = max(float(ys.max() - ys.min()), 0.1 * height)
    mask = np.zeros((height, width), np.uint8)
    thickness = max(2, int(0.16 * body_h))
    for a, b in BLAZEPOSE_BONES:
        cv2.line(mask, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), 255, thickness)
    cv2.circle(mask, tuple(int(v) for v in pts[0]), max(2, int(0.13 * body_h)), 255, -1)
    if segmentation is not None:
        seg = (segmentation > 0.3).astype(np.uint8) * 255
        k = int(0.03 * height) + 1
        mask = np.maximum(mask, cv2.dilate(seg, np.ones((k, k), np.uint8)))
    return mask


class MediaPipeEstimator:
    """Callable: RGB frame -> list of :class:`Person` (empty, one, or two when a second body is seen).

    ``video=True`` tracks the body from frame to frame (faster and steadier on consecutive frames); ``face`` and
    ``hands`` add face-mesh and hand landmarks (:class:`~dancenow_utils.pose.blazepose.Holistic`).
    ``count_people`` looks for a second body with the first person masked out (module docstring); the second
    person is returned as an empty :class:`Person` (BlazePose cannot say which of the two it tracked).
    ``models_dir``: where the model files are (:func:`~dancenow_utils.pose.tflite_models.model_paths`).
    """

    def __init__(self, face: bool = True, hands: bool = True, video: bool = False, count_people: bool = True,
                 min_detection_confidence: float = 0.5, count_every: int = MULTI_PERSON_BACKFILL + 1,
                 models_dir: str | None = None, threads: int | None = None) -> None:
        from dancenow_utils.pose.blazepose import Holistic
        from dancenow_utils.pose.tflite_models import model_paths

        self.face, self.hands, self._count = face, hands, count_people
        self.count_every = count_every if video else 1
        self._since_count, self._last_count = 0, 1
        models = model_paths(models_dir)
        with quiet_native_logs():
            self._model = Holistic(models, face=face, hands=hands, video=video, segmentation=count_people,
                                   min_detection_confidence=min_detection_confidence, threads=threads)

    def close(self) -> None:
        """Nothing to release (kept for the estimator protocol: the interpreters go with the object)."""

    def reset(self) -> None:
        """Forget the tracked person (a new shot starts): the next frame is searched from scratch."""
        self._model.reset()
        self._since_count, self._last_count = 0, 1

    def __enter__(self) -> MediaPipeEstimator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def count_people(self, rgb: np.ndarray, landmarks: np.ndarray, segmentation: np.ndarray | None = None) -> int:
        """1 or 2: whether a second body is seen once the person at ``landmarks`` (``(33, 3)`` pixels) is hidden."""
        if not self._count:
            return 1
        h, w = rgb.shape[:2]
        mask = person_mask(landmarks, h, w, segmentation)
        hidden = rgb.copy()
        hidden[mask > 0] = rgb.reshape(-1, 3).mean(axis=0).astype(np.uint8)
        with quiet_native_logs():
            # a few of the detector's candidates: the best one may hold no body the landmark network accepts
            for roi in self._model.detect_bodies(hidden)[:SECOND_PASS_CANDIDATES]:
                res = self._model.body_in(hidden, roi)
                if res is None:
                    continue
                other = res.landmarks[list(BLAZEPOSE_CORE)][:, [0, 1, 3]]
                xs = np.clip(other[:, 0].astype(int), 0, w - 1)
                ys = np.clip(other[:, 1].astype(int), 0, h - 1)
                inside = float(np.mean(mask[ys, xs] > 0))  # the first person found again through the mask's gaps
                if inside < 0.5 and float(other[:, 2].mean()) > 0.5:
                    return 2
        return 1

    def __call__(self, rgb: np.ndarray) -> list[Person]:
        rgb = np.ascontiguousarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 frame of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
        with quiet_native_logs():
            res = self._model(rgb)
        if res.body is None:
            return []
        landmarks = res.body.landmarks[:, [0, 1, 3]]  # x, y, visibility
        person = Person(blazepose_to_body25(landmarks))
        body_z = blazepose_depth(res.body.landmarks)
        person.depth["body"] = body_z
        if res.face is not None:
            person.face = face_mesh_to_face70(_confident(res.face))
            person.depth["face"] = face_depth(res.face, body_z[joint("Nose")])
        # Holistic names hands from the subject's point of view (its left hand is the person's left)
        for part, hand, wrist in (("left_hand", res.left_hand, "LWrist"), ("right_hand", res.right_hand, "RWrist")):
            if hand is not None:
                setattr(person, part, _confident(hand))
                person.depth[part] = hand_depth(hand, body_z[joint(wrist)])
        if self._last_count > 1 or self._since_count % self.count_every == 0:
            self._last_count = self.count_people(rgb, landmarks, res.body.segmentation)
            self._since_count = 0
        self._since_count += 1
        return [person] + [Person() for _ in range(self._last_count - 1)]

"""MediaPipe backend: offline body, face and hand keypoints on the CPU, mapped into OpenPose's layouts.

Uses MediaPipe's legacy ``mp.solutions`` models that ship inside the mediapipe 0.10.14 wheel; only
``model_complexity=1`` is available offline (0 and 2 would download). BlazePose's 33 landmarks become BODY_25
(Neck and MidHip are midpoints; heels and toes come from MediaPipe's foot points), the 468-point face mesh becomes
OpenPose's 70 face points through :data:`FACE_MESH_TO_IBUG70`, and hands are already in OpenPose's 21-point order.
Confidence is MediaPipe's visibility for body points and 1 for detected face and hand points.

BlazePose tracks a single person. To skip frames with several people (the extractor must not pair a frame with
the wrong person's skeleton) a face detector that finds every face in the frame runs beside it: on every frame for
still images, on every ``count_every``-th frame of a video (every frame while it sees several faces). The
extractor then also marks the frames just before such a detection (:data:`MULTI_PERSON_BACKFILL`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

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
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)


def _landmarks(lms, width: int, height: int, visibility: bool) -> np.ndarray:
    arr = np.array([(lm.x * width, lm.y * height, lm.visibility if visibility else 1.0) for lm in lms.landmark],
                   np.float32)
    return arr


def blazepose_to_body25(lm: np.ndarray) -> np.ndarray:
    """``(33, 3)`` BlazePose landmarks (pixels, visibility) -> ``(25, 3)`` BODY_25."""
    body = np.zeros((N_BODY, 3), np.float32)
    for name, idx in BODY25_FROM_BLAZEPOSE.items():
        body[joint(name)] = lm[idx]
    for name, (a, b) in (("Neck", (11, 12)), ("MidHip", (23, 24))):
        body[joint(name)] = [(lm[a, 0] + lm[b, 0]) / 2, (lm[a, 1] + lm[b, 1]) / 2, min(lm[a, 2], lm[b, 2])]
    return body


def face_mesh_to_face70(mesh: np.ndarray) -> np.ndarray:
    """``(468+, 3)`` face-mesh points -> OpenPose's ``(70, 3)`` face points."""
    face = np.zeros((70, 3), np.float32)
    face[:68] = mesh[list(FACE_MESH_TO_IBUG70)]
    face[68] = face[RIGHT_EYE].mean(axis=0)
    face[69] = face[LEFT_EYE].mean(axis=0)
    return face


# What MediaPipe's native code (absl logging, TensorFlow Lite) prints that nobody needs to read: absl info and
# warning lines ("W0000 00:00:1795552684.399313   12740 inference_feedback_manager.cc:114] ..."), TFLite's
# "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." and absl's notice that logging is not initialised.
NATIVE_NOISE = re.compile(r"[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] |INFO: |"
                          r"WARNING: All log messages before absl::InitializeLog\(\) is called")
_capture_lock = threading.Lock()
_capture: dict = {"depth": 0}


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Run MediaPipe's C++ code without its log lines in the notebook, keeping everything else.

    mediapipe 0.10.14 logs through absl from its own threads straight to file descriptor 2, which Jupyter and
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


class MediaPipeEstimator:
    """Callable: RGB frame -> list of :class:`Person` (empty, one, or several when extra faces are seen).

    ``video=True`` uses MediaPipe's tracking mode (faster and steadier on consecutive frames);
    ``face``/``hands`` switch to the Holistic model, which adds face-mesh and hand landmarks.
    ``count_people`` runs a face detector to notice frames with more than one person.
    """

    def __init__(self, face: bool = True, hands: bool = True, video: bool = False, count_people: bool = True,
                 min_detection_confidence: float = 0.5, count_every: int = MULTI_PERSON_BACKFILL + 1) -> None:
        import mediapipe as mp

        self.face, self.hands = face, hands
        self.count_every = count_every if video else 1
        self._since_count, self._last_faces = 0, 0
        with quiet_native_logs():
            if face or hands:
                self._model = mp.solutions.holistic.Holistic(
                    static_image_mode=not video, model_complexity=1, refine_face_landmarks=False,
                    min_detection_confidence=min_detection_confidence)
            else:
                self._model = mp.solutions.pose.Pose(static_image_mode=not video, model_complexity=1,
                                                     min_detection_confidence=min_detection_confidence)
            self._faces = (mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.6)
                           if count_people else None)
            # The graphs open their models (and log about it) in their own threads after start; one blank frame
            # through each waits for that inside this quiet block, so no log line arrives later in a notebook.
            blank = np.zeros((64, 64, 3), np.uint8)
            for graph in (self._model, self._faces):
                if graph is not None:
                    graph.process(blank)

    def close(self) -> None:
        with quiet_native_logs():
            self._model.close()
            if self._faces is not None:
                self._faces.close()

    def __enter__(self) -> MediaPipeEstimator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def count_faces(self, rgb: np.ndarray) -> int:
        if self._faces is None:
            return 0
        with quiet_native_logs():
            res = self._faces.process(rgb)
        return len(res.detections or [])

    def __call__(self, rgb: np.ndarray) -> list[Person]:
        h, w = rgb.shape[:2]
        rgb = np.ascontiguousarray(rgb)
        with quiet_native_logs():
            res = self._model.process(rgb)
        if res.pose_landmarks is None:
            return []
        person = Person(blazepose_to_body25(_landmarks(res.pose_landmarks, w, h, True)))
        if self.face and getattr(res, "face_landmarks", None) is not None:
            person.face = face_mesh_to_face70(_landmarks(res.face_landmarks, w, h, False))
        if self.hands:
            # Holistic names hands from the subject's point of view (its left hand is the person's left)
            if getattr(res, "left_hand_landmarks", None) is not None:
                person.left_hand = _landmarks(res.left_hand_landmarks, w, h, False)
            if getattr(res, "right_hand_landmarks", None) is not None:
                person.right_hand = _landmarks(res.right_hand_landmarks, w, h, False)
        people = [person]
        if self._last_faces > 1 or self._since_count % self.count_every == 0:
            self._last_faces = self.count_faces(rgb)
            self._since_count = 0
        self._since_count += 1
        if self._last_faces > 1:
            # a second face means a second person; BlazePose cannot say which one it tracked
            people.append(Person())
        return people

"""The pose backend dancenow used until it moved to LiteRT: MediaPipe 0.10.14's ``mp.solutions.holistic``.

Kept only so that ``bench/pose_backends.py`` can measure both side by side in one run. mediapipe 0.10.14 installs on
Python 3.12 and older only (and wants protobuf < 5): ``pip install mediapipe==0.10.14`` in a bench environment.
"""

from __future__ import annotations

import numpy as np

from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.mediapipe_backend import blazepose_to_body25, face_mesh_to_face70, quiet_native_logs


def _points(lms, width: int, height: int, visibility: bool) -> np.ndarray:
    return np.array([(lm.x * width, lm.y * height, lm.visibility if visibility else 1.0) for lm in lms.landmark],
                    np.float32)


class LegacyHolistic:
    """RGB frame -> list with one :class:`Person` (or none), through mediapipe 0.10.14's Holistic graph."""

    def __init__(self, face: bool = True, hands: bool = True, video: bool = False) -> None:
        import mediapipe as mp

        self.face, self.hands = face, hands
        with quiet_native_logs():
            self._model = mp.solutions.holistic.Holistic(static_image_mode=not video, model_complexity=1,
                                                         refine_face_landmarks=False)

    def close(self) -> None:
        with quiet_native_logs():
            self._model.close()

    def __call__(self, rgb: np.ndarray) -> list[Person]:
        h, w = rgb.shape[:2]
        with quiet_native_logs():
            res = self._model.process(np.ascontiguousarray(rgb))
        if res.pose_landmarks is None:
            return []
        person = Person(blazepose_to_body25(_points(res.pose_landmarks, w, h, True)))
        if self.face and res.face_landmarks is not None:
            person.face = face_mesh_to_face70(_points(res.face_landmarks, w, h, False))
        if self.hands and res.left_hand_landmarks is not None:
            person.left_hand = _points(res.left_hand_landmarks, w, h, False)
        if self.hands and res.right_hand_landmarks is not None:
            person.right_hand = _points(res.right_hand_landmarks, w, h, False)
        return [person]

"""How a dataset's stick figures were drawn, saved beside its keypoints (``{phase}_keypoints/settings.json``).

A generator learns one drawing style: the keypoint layout, whether faces and hands are drawn, the image size and
aspect. Poses drawn any other way at transfer or evaluation time would silently give worse frames, so the settings
travel with the data and with every checkpoint, and a mismatch is an error naming both.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dancenow_utils.io_utils import write_json
from dancenow_utils.pose.formats import POSE_FORMATS

# the settings that change what a stick figure looks like (size is handled by resizing)
DRAWING_KEYS = ("pose_format", "draw_face", "draw_hands", "depth")
# how the stick figure shows which part is in front (:mod:`~dancenow_utils.pose.render`): "none" draws in OpenPose's
# fixed order; "order" draws limbs and hands far to near, so the nearer arm is on top; "shade" also makes nearer
# parts brighter and farther ones darker. Poses without depth (OpenPose JSON) are drawn as "none" whatever this says.
DEPTH_MODES = ("none", "order", "shade")
DEFAULT_DEPTH = "none"
LEGACY_DEPTH = "none"  # what settings saved before depth was recorded mean: today's drawing


@dataclass(frozen=True)
class PoseSettings:
    """Extraction and drawing settings of one dataset phase."""

    pose_format: str = "BODY_25"
    draw_face: bool = True
    draw_hands: bool = True
    width: int = 256
    height: int = 256
    smooth_window: int = 7
    backend: str = "mediapipe"
    sequence: bool = True  # frames of one video (smoothed over time) or independent images
    depth: str = DEFAULT_DEPTH  # one of DEPTH_MODES

    def __post_init__(self) -> None:
        if self.depth not in DEPTH_MODES:
            raise ValueError(f"unknown depth {self.depth!r}; use one of {DEPTH_MODES}")
        if self.pose_format not in POSE_FORMATS:
            raise ValueError(f"unknown pose_format {self.pose_format!r}; use one of {POSE_FORMATS}")
        if self.width < 8 or self.height < 8:
            raise ValueError(f"image size must be at least 8 px, got {self.width}x{self.height}")
        if self.smooth_window < 1:
            raise ValueError(f"smooth_window must be 1 (off) or more, got {self.smooth_window}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoseSettings:
        """Settings from their dictionary; one saved before depth was recorded draws as it did (``depth="none"``)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{"depth": LEGACY_DEPTH, **{k: v for k, v in data.items() if k in known}})

    @property
    def uses_depth(self) -> bool:
        return self.depth != "none"

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> PoseSettings | None:
        """The settings saved at ``path``; None for data extracted before settings were recorded."""
        path = Path(path)
        if not path.exists():
            return None
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}: unreadable pose settings ({exc}); re-run pose extraction") from None

    def drawing(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in DRAWING_KEYS}

    def describe(self) -> str:
        """``pose_format=BODY_25, draw_face=True, draw_hands=True`` (and ``depth=...`` unless it is "none")."""
        return ", ".join(f"{k}={v}" for k, v in self.drawing().items() if k != "depth" or v != "none")


# bodies only (no face, no hands): figures of the body keypoints, e.g. normalisation and coverage
BODY_ONLY = PoseSettings(draw_face=False, draw_hands=False)


def check_same_drawing(expected: PoseSettings | None, found: PoseSettings | None, expected_from: str,
                       found_from: str) -> None:
    """Error when two datasets' stick figures are drawn differently (unknown settings are not compared)."""
    if expected is None or found is None or expected.drawing() == found.drawing():
        return
    raise ValueError(
        f"the poses in {found_from} are drawn with {found.describe()}, but {expected_from} was trained on poses "
        f"drawn with {expected.describe()}. Re-extract them with the same settings (notebook 01 / prepare_poses "
        "read them from the target dataset), or train a model on data drawn this way.")

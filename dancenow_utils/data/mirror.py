"""Training pairs seen in a mirror, with stick figures that keep their meaning (``mirror``).

pix2pixHD flips half its training pairs left to right. A flipped stick figure is wrong, though: its right arm,
drawn in the right arm's colours, now sits where the left arm is, so the generator would learn that the colours
say nothing about the side (which is why ``flip`` is off). A mirrored pair flips the frame and draws the pose again
from the mirrored keypoints (:meth:`~dancenow_utils.pose.keypoints.Person.mirrored`): the arm on the image's left is
drawn as the left arm, whichever it was in the footage.

What it buys: every pose is also shown the other way round. A dance that crosses its arms one way in one place
teaches the other crossing there too: on the demo the hands that went missing were those of 15 held-out
crossed-arms frames whose nearest training pose has the other arm in front (``other_arm_in_front`` in notebook
03's coverage report; bench/RESULTS.md, issue 25). ``mirror`` is the chance
that an epoch draws a pair mirrored, and ``mirror_kinds`` can keep it to the pose kinds that need it (the others
are then trained as filmed, as often as before). It suits a character that looks about the same in a mirror;
lettering or a side parting would be learnt both ways round.
"""

from __future__ import annotations

import numpy as np

from dancenow_utils.data.datasets import resized
from dancenow_utils.layout import DatasetLayout
from dancenow_utils.pose.crop import Crops
from dancenow_utils.pose.keypoints import read_openpose_json
from dancenow_utils.pose.render import render_pose
from dancenow_utils.pose.settings import PoseSettings


class MirroredPoses:
    """Each frame's stick figure drawn from its mirrored keypoints, as notebook 01 drew the original (the same
    crop and drawing settings), at ``width`` x ``height`` as training reads the originals: ``poses[i]`` for frame
    ``names[i]``. A pose is drawn when first asked for (only pairs an epoch mirrors are), and kept with ``keep``
    (as the dataset keeps its decoded images). A frame whose JSON holds nobody gets a black image, as its original.
    Errors name the missing folder or file and the fix."""

    def __init__(self, layout: DatasetLayout, names: list[str], width: int, height: int, keep: bool = True) -> None:
        self.settings = PoseSettings.load(layout.settings)
        if self.settings is None or not layout.keypoints.is_dir():
            raise ValueError(f"mirror draws each pose again from its keypoints, but {layout.keypoints} has no "
                             "keypoints or settings.json: extract the poses with notebook 01 (which writes them), "
                             "or set mirror=0")
        missing = [n for n in names if not layout.keypoint_file(n).exists()]
        if missing:
            raise FileNotFoundError(f"{layout.keypoints}: no keypoints for {', '.join(missing[:5])}"
                                    f"{' ...' if len(missing) > 5 else ''}; mirror needs the keypoints of every "
                                    "training frame: re-run pose extraction (notebook 01), or set mirror=0")
        self.layout, self.names, self.size, self.keep = layout, names, (width, height), keep
        self.crops = Crops.load(layout)
        self._kept: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> np.ndarray:
        if i in self._kept:
            return self._kept[i]
        people = read_openpose_json(self.layout.keypoint_file(self.names[i]))
        crop = self.crops.of(self.names[i])
        if people:
            image = render_pose([crop.apply_person(people[0]).mirrored(crop.width)], self.settings, size=crop.size)
        else:
            image = np.zeros((crop.height, crop.width, 3), np.uint8)
        image = resized(image, *self.size)
        if self.keep:
            self._kept[i] = image
        return image


__all__ = ["MirroredPoses"]

"""A pose puppet: bend a skeleton's joints and see what the trained generator draws (notebook 04).

A :class:`Puppet` starts from one training pose of the target. Each controllable joint (head, shoulders, elbows,
hips, knees) takes an angle in degrees, a rotation from the training pose: the joint's bone and everything beyond
it (forearm, hand, lower leg, foot) turn about the joint, like a puppet's limb; 0 everywhere is the training pose.
Positive angles turn counter-clockwise on the screen. The posed skeleton is drawn exactly as the target's training
poses were (the dataset's ``settings.json``: format, face, hands, size, then resized to the generator's size as
training resizes them) and the generator turns it into a frame.

Headless use is plain function calls: ``Puppet(gen, person).set({"RElbow": 45})`` returns the frame,
``pose_image()`` the stick figure, ``preset_grid()`` a static figure of a few poses. :meth:`Puppet.widget` adds
sliders in Jupyter (an ``IntSlider`` per joint and an ``Image`` widget, no ``interact``: see
:func:`dancenow_utils.visualize.image_browser`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import cv2
import numpy as np
import torch

from dancenow_utils.io_utils import write_image
from dancenow_utils.layout import DatasetLayout
from dancenow_utils.models.inference import Generator, load_generator
from dancenow_utils.pose.crop import Crops, keypoint_files, people_in_image
from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import MIN_CONF, Person
from dancenow_utils.pose.render import render_pose
from dancenow_utils.pose.settings import PoseSettings, check_same_drawing
from dancenow_utils.visualize import grid, label

_FACE_POINTS = ("Nose", "REye", "LEye", "REar", "LEar")
_R_FOOT = ("RAnkle", "RBigToe", "RSmallToe", "RHeel")
_L_FOOT = ("LAnkle", "LBigToe", "LSmallToe", "LHeel")

# controllable joint -> (body keypoints it moves, hand or face it carries), parents before children
JOINTS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "Head": (_FACE_POINTS, "face"),
    "RShoulder": (("RElbow", "RWrist"), "right_hand"),
    "RElbow": (("RWrist",), "right_hand"),
    "LShoulder": (("LElbow", "LWrist"), "left_hand"),
    "LElbow": (("LWrist",), "left_hand"),
    "RHip": (("RKnee", *_R_FOOT), None),
    "RKnee": (_R_FOOT, None),
    "LHip": (("LKnee", *_L_FOOT), None),
    "LKnee": (_L_FOOT, None),
}
# the point each joint turns about ("Head" turns about the neck)
PIVOTS = {name: ("Neck" if name == "Head" else name) for name in JOINTS}
LABELS = {"Head": "head", "RShoulder": "R shoulder", "RElbow": "R elbow", "LShoulder": "L shoulder",
          "LElbow": "L elbow", "RHip": "R hip", "RKnee": "R knee", "LHip": "L hip", "LKnee": "L knee"}

# a few poses for the static figure: angles from the training pose (degrees, counter-clockwise on the screen)
PRESETS: dict[str, dict[str, float]] = {
    "training pose": {},
    "R shoulder +60": {"RShoulder": 60},
    "L shoulder -60": {"LShoulder": -60},
    "elbows bent": {"RElbow": 70, "LElbow": -70},
    "R knee up": {"RHip": -40, "RKnee": 70},
    "head tilted": {"Head": 25},
}


def check_angles(angles: Mapping[str, float]) -> dict[str, float]:
    """``angles`` as floats; a ValueError naming the unknown joints and the valid ones."""
    unknown = sorted(set(angles) - set(JOINTS))
    if unknown:
        raise ValueError(f"unknown puppet joints {unknown}; use any of {', '.join(JOINTS)}")
    return {k: float(v) for k, v in angles.items()}


def pose_person(base: Person, angles: Mapping[str, float]) -> Person:
    """``base`` with each joint of ``angles`` turned by that many degrees (counter-clockwise on the screen)
    about its pivot, carrying every keypoint beyond it. Parents turn first, so a shoulder carries the elbow's
    turn along; a joint whose pivot was not detected in ``base`` does nothing."""
    angles = check_angles(angles)
    out = base.copy()
    for name, (moved, part) in JOINTS.items():
        a = angles.get(name, 0.0)
        pivot = out.body[joint(PIVOTS[name])]
        if not a or pivot[2] <= MIN_CONF:
            continue
        t = np.deg2rad(a)
        # image y grows downwards: a counter-clockwise turn on the screen is clockwise in (x, y) coordinates
        rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]], np.float32)
        idx = [joint(n) for n in moved]
        arrays = [(out.body, idx)]
        extra = getattr(out, part) if part else None
        if extra is not None:
            arrays.append((extra, list(range(len(extra)))))
        for arr, rows in arrays:
            rows = [r for r in rows if arr[r, 2] > 0]
            arr[rows, :2] = (arr[rows, :2] - pivot[:2]) @ rot.T + pivot[:2]
    return out


class Puppet:
    """A training pose of the target whose joints can be turned; the generator draws each posed skeleton.

    ``base`` is a person in the pixels of the target dataset's images (``settings.width`` x ``settings.height``,
    as :meth:`from_dataset` reads them); ``settings`` is how that dataset's poses were drawn (default: the
    generator's record of it). ``poses`` (optional) are other training poses to start from (:meth:`use_pose`).
    On a CPU the generator runs with ``cpu_threads`` torch threads (0: torch's setting): one thread stays fast
    when other processes share the cores, where a second one makes a frame several times slower
    (bench/RESULTS.md).
    """

    def __init__(self, gen: Generator, base: Person, settings: PoseSettings | None = None,
                 poses: list[Person] | None = None, cpu_threads: int = 1) -> None:
        if gen.label_maps:
            raise ValueError(f"{gen.path} translates label maps (label_nc={gen.cfg.label_nc}); the pose puppet "
                             "draws stick figures and works with pose runs only")
        settings = settings or gen.pose_settings or PoseSettings(width=gen.size[0], height=gen.size[1])
        check_same_drawing(gen.pose_settings, settings, str(gen.path), "the puppet's drawing settings")
        self.gen, self.settings, self.base = gen, settings, base
        self.poses = poses or [base]
        self.angles: dict[str, float] = {}
        self.cpu_threads = cpu_threads
        self.last_ms = 0.0  # wall time of the last set(): drawing plus generating

    @classmethod
    def from_dataset(cls, gen: Generator, keypoints_dir: str | Path = "dataset/train_keypoints",
                     index: int | None = None) -> Puppet:
        """A puppet on the target's training poses (``{phase}_keypoints`` of its dataset): pose ``index``, or
        by default the first in which every puppet joint was detected."""
        folder = Path(keypoints_dir)
        ids = [f.name.removesuffix("_keypoints.json") for f in keypoint_files(folder)]
        layout = DatasetLayout.of_keypoints_dir(folder)
        settings = PoseSettings.load(layout.settings)
        width, height = (settings.width, settings.height) if settings is not None else Crops.load(layout).size
        # training poses in the pixels of the dataset's images; frames with nobody come back empty
        poses = [p for p in people_in_image(layout, ids, width, height) if p.body[:, 2].max() > 0]
        if not poses:
            raise ValueError(f"{folder}: no frame with exactly one person")
        if index is None:
            index = next((i for i, p in enumerate(poses) if _all_joints(p)), 0)
        if not 0 <= index < len(poses):
            raise ValueError(f"index={index}: {folder} has {len(poses)} training poses (0..{len(poses) - 1})")
        return cls(gen, poses[index], settings or PoseSettings(width=width, height=height), poses)

    @classmethod
    def load(cls, name: str, keypoints_dir: str | Path = "dataset/train_keypoints", which_epoch: str | int = "latest",
             checkpoints_dir: str | Path = "checkpoints", device: str = "auto", index: int | None = None) -> Puppet:
        """Load the trained generator ``checkpoints/<name>`` and start from a training pose of its target."""
        return cls.from_dataset(load_generator(name, which_epoch, checkpoints_dir, device), keypoints_dir, index)

    def use_pose(self, index: int) -> None:
        """Start from training pose ``index`` of :attr:`poses` (the angles are kept)."""
        self.base = self.poses[index]

    def person(self, angles: Mapping[str, float] | None = None) -> Person:
        """The posed person (dataset image pixels) for ``angles`` (default: the current ones)."""
        return pose_person(self.base, self.angles if angles is None else angles)

    def pose_image(self, angles: Mapping[str, float] | None = None) -> np.ndarray:
        """The stick figure the generator sees, at its size: drawn at the dataset's size with its settings, then
        resized as training resizes its pose images."""
        return self.gen.read_poses([render_pose([self.person(angles)], self.settings)])[0]

    def frame(self, angles: Mapping[str, float] | None = None) -> np.ndarray:
        """The generator's frame for ``angles`` (default: the current ones); the face stage corrects the face."""
        w, h = self.gen.size
        s = self.settings
        person = self.person(angles).transformed(np.array([w / s.width, h / s.height], np.float32), (0.0, 0.0))
        with self._threads():
            return next(iter(self.gen.frames([self.pose_image(angles)], [person])))

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        if self.gen.device.type != "cpu" or self.cpu_threads <= 0:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(self.cpu_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def set(self, angles: Mapping[str, float]) -> np.ndarray:
        """Make ``angles`` the puppet's angles (joints not named: 0, the training pose) and return its frame."""
        t = time.perf_counter()
        self.angles = check_angles(angles)
        out = self.frame()
        self.last_ms = 1000 * (time.perf_counter() - t)
        return out

    def view(self, angles: Mapping[str, float] | None = None) -> np.ndarray:
        """Pose and generated frame side by side."""
        return np.concatenate([self.pose_image(angles), self.frame(angles)], axis=1)

    def preset_grid(self, presets: Mapping[str, Mapping[str, float]] | None = None) -> np.ndarray:
        """A static figure for headless runs: one column per preset (default :data:`PRESETS`), the posed
        skeleton above what the generator draws for it."""
        presets = PRESETS if presets is None else presets
        poses, frames = [], []
        for title, angles in presets.items():
            poses.append(label(self.pose_image(angles), title))
            frames.append(self.frame(angles))
        return grid([poses, frames])

    def save_grid(self, path: str | Path, presets: Mapping[str, Mapping[str, float]] | None = None) -> np.ndarray:
        """Write :meth:`preset_grid` to ``path`` (atomically) and return it (the figure for headless runs)."""
        img = self.preset_grid(presets)
        write_image(path, img)
        return img

    def widget(self, width: int = 512):
        """Sliders for every joint (and the training pose to start from) above the pose and the frame, redrawn
        on every change; the time each redraw took is shown under it."""
        import ipywidgets as widgets

        def png(img: np.ndarray) -> bytes:
            return cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()

        sliders = {name: widgets.IntSlider(value=int(self.angles.get(name, 0)), min=-180, max=180, step=5,
                                           description=LABELS[name], continuous_update=True)
                   for name in JOINTS}
        pose = widgets.IntSlider(value=_index_of(self.poses, self.base), min=0, max=len(self.poses) - 1,
                                 description="training pose", continuous_update=False)
        image = widgets.Image(value=png(self.view()), format="png", width=width)
        timing = widgets.Label()
        reset = widgets.Button(description="reset angles")
        hold = {"on": False}

        def redraw(_=None) -> None:
            if hold["on"]:
                return
            t = time.perf_counter()
            frame = self.set({name: s.value for name, s in sliders.items()})
            image.value = png(np.concatenate([self.pose_image(), frame], axis=1))
            timing.value = f"generator {self.last_ms:.0f} ms, redraw {1000 * (time.perf_counter() - t):.0f} ms"

        def on_pose(change) -> None:
            self.use_pose(change["new"])
            redraw()

        def on_reset(_) -> None:
            hold["on"] = True
            for s in sliders.values():
                s.value = 0
            hold["on"] = False
            redraw()

        for s in sliders.values():
            s.observe(redraw, names="value")
        pose.observe(on_pose, names="value")
        reset.on_click(on_reset)
        columns = [widgets.VBox(list(sliders.values())[k::2]) for k in (0, 1)]
        controls = [pose] if len(self.poses) > 1 else []
        return widgets.VBox([*controls, widgets.HBox(columns), reset, image, timing])


def _all_joints(p: Person) -> bool:
    names = {PIVOTS[n] for n in JOINTS} | {m for moved, _ in JOINTS.values() for m in moved}
    return all(p.body[joint(n), 2] > MIN_CONF for n in names)


def _index_of(poses: list[Person], base: Person) -> int:
    return next((i for i, p in enumerate(poses) if p is base), 0)

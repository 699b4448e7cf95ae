"""Hard footage for the pose extractor, drawn with the demo character: what real videos do to a one-person tool.

Four clips, each with its ground truth (how many people every frame shows, where the shot cuts are, every
visible keypoint):

- ``two_people``: the target character dances alone for the first third, then a second dancer (the source
  character) walks in from the right and dances beside it.
- ``crowd``: a crowd of small characters (different clothes, each its own dance) at several depths.
- ``cuts``: shots of different characters, framings and rooms joined by hard cuts, as in a film.
- ``closeup``: an upper-body close-up (legs below the frame), as in a music video.

Everything is deterministic from ``seed``. ``python -m dancenow_utils.synthetic --hard --out DIR`` writes them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dancenow_utils.io_utils import atomic_write_text
from dancenow_utils.pose.keypoints import Person, write_openpose_json
from dancenow_utils.synthetic.character import SOURCE_STYLE, TARGET_STYLE, CharacterStyle, background, render_character
from dancenow_utils.synthetic.dance import FPS, dance_trajectory
from dancenow_utils.synthetic.demo import DemoPaths
from dancenow_utils.video import write_video

HARD_CLIPS = ("two_people", "crowd", "cuts", "closeup")

# clothes for the crowd: (shirt, trousers, skin, hair)
_PALETTE = (
    ((226, 82, 44), (42, 72, 150), (236, 188, 150), (95, 55, 28)),
    ((58, 150, 92), (88, 66, 52), (196, 146, 108), (25, 22, 24)),
    ((240, 200, 40), (30, 30, 40), (140, 98, 70), (20, 16, 14)),
    ((130, 70, 190), (200, 200, 205), (236, 200, 170), (200, 160, 60)),
    ((40, 160, 210), (120, 40, 40), (110, 74, 52), (40, 30, 26)),
    ((230, 230, 230), (60, 110, 60), (220, 170, 130), (150, 80, 40)),
)


@dataclass(frozen=True)
class HardPaths(DemoPaths):
    """Where :func:`make_hard_footage` puts each clip, its keypoints and the ground truth (``hard.json``): the demo's
    folder layout with its own manifest."""

    @property
    def manifest(self) -> Path:
        return self.root / "hard.json"

    def truth(self, clip: str) -> dict:
        """``{"frames": n, "people": [people in frame, per frame], "cuts": [first frame of each new shot]}``; a
        person is in the frame when at least 8 of its 25 body joints are (:func:`is_visible`)."""
        return json.loads(self.manifest.read_text())["clips"][clip]


@dataclass(frozen=True)
class Actor:
    """One character in a scene: its look and placement, and its dance."""

    style: CharacterStyle
    params: np.ndarray  # (frames, len(PARAMS)) dance parameters
    first: int = 0  # the frame it appears
    walk_in: int = 0  # frames it takes to walk in from beyond the right edge of the frame


def visible(person: Person, width: int, height: int) -> Person:
    """The keypoints a camera of this frame sees: points outside the frame get confidence 0."""
    out = person.copy()
    for a in out.arrays():
        if a is not None:
            outside = (a[:, 0] < 0) | (a[:, 0] >= width) | (a[:, 1] < 0) | (a[:, 1] >= height)
            a[outside] = 0
    return out


def is_visible(person: Person, min_joints: int = 8) -> bool:
    """A person counts as in the frame when at least ``min_joints`` of its 25 body joints are."""
    return int((person.body[:, 2] > 0).sum()) >= min_joints


def compose(actors: list[tuple[CharacterStyle, np.ndarray]], width: int, height: int,
            bg: np.ndarray) -> tuple[np.ndarray, list[Person]]:
    """Draw several characters back to front on one background; returns the frame and their visible keypoints."""
    out = bg.astype(np.float32)
    people = []
    for style, params in actors:
        img, mask, person = render_character(style, params, width, height, bg)
        alpha = mask[..., None].astype(np.float32) / 255.0
        out = out * (1 - alpha) + img.astype(np.float32) * alpha
        people.append(visible(person, width, height))
    return np.clip(np.round(out), 0, 255).astype(np.uint8), people


def _dressed(style: CharacterStyle, colours: tuple) -> CharacterStyle:
    shirt, trousers, skin, hair = colours
    return dataclasses.replace(style, shirt=shirt, trousers=trousers, skin=skin, hair=hair, star=None)


def two_people_plan(n: int, seed: int) -> tuple[list[list[Actor]], list[int]]:
    """The target alone for the first third, then a second dancer walks in and dances beside it."""
    a = Actor(dataclasses.replace(TARGET_STYLE, height=0.62, center_x=0.30, floor_y=0.92),
              dance_trajectory(n, seed, "classic"))
    b = Actor(dataclasses.replace(SOURCE_STYLE, height=0.58, center_x=0.72, floor_y=0.90, wall=TARGET_STYLE.wall,
                                  floor=TARGET_STYLE.floor, horizon=TARGET_STYLE.horizon),
              dance_trajectory(n, seed + 1, "classic"), first=n // 3, walk_in=max(1, n // 8))
    return [[a, b]] * n, []


def crowd_plan(n: int, seed: int, count: int = 7) -> tuple[list[list[Actor]], list[int]]:
    """``count`` small characters at several depths (smaller further back), each dancing its own dance."""
    rng = np.random.default_rng(seed)
    actors = []
    for k in range(count):
        depth = (k + rng.uniform(0.1, 0.9)) / count  # 0 far .. 1 near, spread over the whole range
        floor_y = 0.55 + 0.4 * depth
        style = dataclasses.replace(
            _dressed(TARGET_STYLE, _PALETTE[k % len(_PALETTE)]), height=0.16 + 0.14 * depth, floor_y=floor_y,
            center_x=float((k * 0.618 + rng.uniform(-0.08, 0.08)) % 0.84 + 0.08))
        actors.append(Actor(style, dance_trajectory(n, seed + 10 + k, "classic")))
    actors.sort(key=lambda a: a.style.floor_y)  # back to front
    return [actors] * n, []


def cuts_plan(n: int, seed: int, shots: int = 4) -> tuple[list[list[Actor]], list[int]]:
    """``shots`` shots joined by hard cuts: the first half of the target character (new framing at each cut, same
    room), then the source character in its own room."""
    bounds = np.linspace(0, n, shots + 1).round().astype(int)
    # (height, centre x, floor y, horizon): the camera moves at every cut, so the horizon does too
    framings = ((0.80, 0.50, 0.93, 0.70), (0.55, 0.40, 0.86, 0.60), (0.70, 0.60, 0.90, 0.66), (0.62, 0.45, 0.88, 0.58))
    plan: list[list[Actor]] = []
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        base = TARGET_STYLE if k < shots / 2 else SOURCE_STYLE  # a reframing in the same room, then a new dancer
        h, cx, fy, hz = framings[k % len(framings)]
        style = dataclasses.replace(base, height=h, center_x=cx, floor_y=fy, horizon=hz)
        traj = dance_trajectory(int(b - a), seed + 20 + k, "classic")
        plan += [[Actor(style, traj, first=int(a))]] * int(b - a)
    return plan, [int(b) for b in bounds[1:-1]]


def closeup_plan(n: int, seed: int) -> tuple[list[list[Actor]], list[int]]:
    """An upper-body close-up: the character 1.45 times the frame's height, its hips near the bottom edge."""
    style = dataclasses.replace(TARGET_STYLE, height=1.45, floor_y=1.52)
    return [[Actor(style, dance_trajectory(n, seed + 30, "classic"))]] * n, []


PLANS = {"two_people": two_people_plan, "crowd": crowd_plan, "cuts": cuts_plan, "closeup": closeup_plan}


def frame_actors(plan: list[list[Actor]], i: int) -> list[tuple[CharacterStyle, np.ndarray]]:
    """The characters on screen at frame ``i`` with their dance parameters at that frame."""
    out = []
    for actor in plan[i]:
        t = i - actor.first
        if t < 0:
            continue
        style = actor.style
        if t < actor.walk_in:
            x = style.center_x + (1 - t / actor.walk_in) * (1.25 - style.center_x)
            style = dataclasses.replace(style, center_x=x)
        out.append((style, actor.params[t]))
    return out


def make_hard_footage(out_dir: str | Path, size: int = 256, n_frames: int = 90, seed: int = 0,
                      clips: tuple[str, ...] = HARD_CLIPS, progress: bool = True) -> HardPaths:
    """Write the hard clips (module docstring) as H.264 videos with their keypoints and ``hard.json``."""
    unknown = [c for c in clips if c not in PLANS]
    if unknown:
        raise ValueError(f"unknown clip(s) {unknown}; choose from {HARD_CLIPS}")
    if n_frames < 4:
        raise ValueError(f"n_frames must be at least 4, got {n_frames}")
    paths = HardPaths(Path(out_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    truth = {}
    for clip in clips:
        plan, cuts = PLANS[clip](n_frames, seed)
        counts: list[int] = []

        def frames(clip: str = clip, plan: list = plan, cuts: list = cuts, counts: list = counts):
            bg = None
            for i in tqdm(range(n_frames), desc=clip, disable=not progress, leave=False):
                actors = frame_actors(plan, i)
                if bg is None or i in cuts:
                    bg = background(actors[0][0], size, size)
                img, people = compose(actors, size, size, bg)
                counts.append(sum(is_visible(p) for p in people))
                write_openpose_json(paths.keypoints(clip) / f"frame_{i:06d}_keypoints.json", people)
                yield img

        write_video(paths.video(clip), frames(), FPS)
        truth[clip] = {"frames": n_frames, "people": counts, "cuts": cuts}
    manifest = {"seed": seed, "size": size, "fps": FPS, "clips": truth}
    if paths.manifest.exists():  # keep the truth of clips made earlier into the same folder
        old = json.loads(paths.manifest.read_text())
        if (old.get("seed"), old.get("size")) == (seed, size):
            manifest["clips"] = {**old.get("clips", {}), **truth}
    atomic_write_text(paths.manifest, json.dumps(manifest, indent=2) + "\n")
    return paths

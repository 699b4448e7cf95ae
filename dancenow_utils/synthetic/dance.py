"""Procedural dances: smooth, varied, deterministic joint-angle trajectories at 30 fps.

A dance is a sequence of *moves*. Each move combines an upper-body pattern (arm waves, arms raised, arms crossing...)
with a lower-body pattern (steps, squats, twists...), with its own tempo and amplitude drawn from the seed.
Consecutive moves are blended with a smoothstep so every trajectory is continuous. The held-out clip uses
upper/lower combinations that the training clip never contains, so cross-validation sees new poses; it opens with
the moves that bring the hands in front of the body (:data:`ARMS_IN_FRONT`), the poses the metrics break down.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

FPS = 30

# The pose parameters a dance drives, with their limits (radians or fractions of the character's size).
PARAM_LIMITS: dict[str, tuple[float, float]] = {
    "r_abd": (-0.6, 3.0),   # right upper-arm abduction: 0 hanging, pi/2 horizontal, pi up, <0 across the body
    "l_abd": (-0.6, 3.0),
    "r_elb": (-2.6, 2.4),   # elbow flex: >0 forearm turns up/out, <0 turns in across the body
    "l_elb": (-2.6, 2.4),
    "lean": (-0.35, 0.35),  # side bend of the torso
    "twist": (-0.6, 0.6),   # torso turn (narrows the shoulders)
    "head": (-0.3, 0.3),    # head tilt
    "sway": (-0.25, 0.25),  # pelvis shift, fraction of the leg length
    "squat": (0.0, 0.35),   # pelvis drop, fraction of the leg length
    "r_foot_x": (-0.35, 0.35),  # foot offsets from the rest stance, fraction of the leg length
    "l_foot_x": (-0.35, 0.35),
    "r_foot_up": (0.0, 0.3),
    "l_foot_up": (0.0, 0.3),
}
PARAMS = tuple(PARAM_LIMITS)


def _wave(phase: float, amp: float = 1.0) -> float:
    return amp * math.sin(2 * math.pi * phase)


def _upper_wave(ph: float, a: float) -> dict[str, float]:
    return {"r_abd": 1.5 + 0.15 * _wave(ph), "l_abd": 1.5 + 0.15 * _wave(ph + 0.5),
            "r_elb": 0.9 * a * _wave(ph), "l_elb": 0.9 * a * _wave(ph + 0.5), "head": 0.1 * _wave(ph)}


def _upper_raise(ph: float, a: float) -> dict[str, float]:
    return {"r_abd": 2.6 + 0.25 * a * _wave(ph), "l_abd": 2.6 + 0.25 * a * _wave(ph + 0.5),
            "r_elb": 0.3 + 0.3 * _wave(ph), "l_elb": 0.3 + 0.3 * _wave(ph + 0.5), "lean": 0.12 * a * _wave(ph)}


def _upper_cross(ph: float, a: float) -> dict[str, float]:
    c = 0.5 + 0.5 * _wave(ph)  # 0 open, 1 fully crossed
    return {"r_abd": 0.9 * (1 - c) - 0.35 * c, "l_abd": 0.9 * (1 - c) - 0.35 * c,
            "r_elb": 0.4 * (1 - c) - 2.1 * a * c, "l_elb": 0.4 * (1 - c) - 2.0 * a * c}


def _upper_clasp(ph: float, a: float) -> dict[str, float]:
    """Hands meet in front of the belly, one over the other, and hold there for about a third of each beat."""
    c = min(1.0, 1.6 * (0.5 + 0.5 * _wave(ph)))  # 0 open, 1 clasped (held while the wave is high)
    return {"r_abd": 0.6 * (1 - c) + 0.22 * c, "l_abd": 0.6 * (1 - c) + 0.22 * c,
            "r_elb": 0.5 * (1 - c) - 1.5 * a * c, "l_elb": 0.5 * (1 - c) - 1.4 * a * c, "head": 0.08 * _wave(ph)}


def _upper_disco(ph: float, a: float) -> dict[str, float]:
    s = _wave(ph)
    return {"r_abd": 1.6 + 1.0 * a * s, "l_abd": 1.6 - 1.0 * a * s, "r_elb": 0.2, "l_elb": 0.2,
            "lean": -0.15 * s, "head": 0.15 * s}


def _upper_swing(ph: float, a: float) -> dict[str, float]:
    return {"r_abd": 0.5 + 0.5 * a * _wave(ph), "l_abd": 0.5 - 0.5 * a * _wave(ph), "r_elb": 0.8 + 0.5 * _wave(ph),
            "l_elb": 0.8 - 0.5 * _wave(ph), "twist": 0.3 * a * _wave(ph)}


def _upper_punch(ph: float, a: float) -> dict[str, float]:
    r = max(0.0, _wave(ph))
    left = max(0.0, -_wave(ph))
    return {"r_abd": 0.7 + 1.6 * a * r, "l_abd": 0.7 + 1.6 * a * left, "r_elb": 1.6 * (1 - r),
            "l_elb": 1.6 * (1 - left), "head": 0.1 * _wave(ph)}


def _lower_step(ph: float, a: float) -> dict[str, float]:
    s = _wave(ph)
    return {"r_foot_x": -0.18 * a * max(s, 0), "l_foot_x": 0.18 * a * max(-s, 0),
            "r_foot_up": 0.12 * a * max(_wave(ph * 2), 0) * (s > 0),
            "l_foot_up": 0.12 * a * max(_wave(ph * 2), 0) * (s < 0),
            "sway": 0.08 * a * s}


def _lower_squat(ph: float, a: float) -> dict[str, float]:
    return {"squat": 0.14 * a * (1 - math.cos(2 * math.pi * ph)), "r_foot_x": -0.12, "l_foot_x": 0.12}


def _lower_twist(ph: float, a: float) -> dict[str, float]:
    return {"twist": 0.45 * a * _wave(ph), "sway": 0.06 * _wave(ph + 0.25), "squat": 0.05 + 0.04 * _wave(2 * ph)}


def _lower_bounce(ph: float, a: float) -> dict[str, float]:
    return {"squat": 0.06 * a * (1 - math.cos(4 * math.pi * ph)), "sway": 0.12 * a * _wave(ph),
            "lean": 0.1 * a * _wave(ph)}


def _lower_kick(ph: float, a: float) -> dict[str, float]:
    s = _wave(ph)
    return {"r_foot_up": 0.22 * a * max(s, 0), "l_foot_up": 0.22 * a * max(-s, 0),
            "r_foot_x": -0.12 * a * max(s, 0), "l_foot_x": 0.12 * a * max(-s, 0), "sway": -0.05 * s}


UPPER_MOVES = {"wave": _upper_wave, "raise": _upper_raise, "cross": _upper_cross, "disco": _upper_disco,
               "swing": _upper_swing, "punch": _upper_punch, "clasp": _upper_clasp}
# the moves that bring the hands in front of the body (crossed arms, overlapping hands): the held-out clip opens
# with them, so that its metrics per pose kind have enough of these frames to measure
ARMS_IN_FRONT = ("cross", "clasp")
LOWER_MOVES = {"step": _lower_step, "squat": _lower_squat, "twist": _lower_twist, "bounce": _lower_bounce,
               "kick": _lower_kick}

ALL_COMBOS = tuple(itertools.product(UPPER_MOVES, LOWER_MOVES))
# Every third combination is kept for the held-out clip; training sees the rest. Each upper and each lower move
# still appears in training, so held-out poses are new combinations of familiar parts.
HELDOUT_COMBOS = ALL_COMBOS[1::3]
TRAIN_COMBOS = tuple(c for c in ALL_COMBOS if c not in HELDOUT_COMBOS)


@dataclass(frozen=True)
class Move:
    upper: str
    lower: str
    frames: int
    tempo: float  # beats per second
    amp: float
    phase: float

    def params(self, t: float) -> dict[str, float]:
        ph = self.phase + self.tempo * t
        rest = dict.fromkeys(PARAMS, 0.0)
        rest.update({"r_abd": 0.25, "l_abd": 0.25, "r_elb": 0.3, "l_elb": 0.3})
        upper = UPPER_MOVES[self.upper](ph, self.amp)
        lower = LOWER_MOVES[self.lower](ph, self.amp)
        rest.update(lower)
        for k, v in upper.items():  # torso keys set by both parts add up
            rest[k] = rest[k] + v if k in lower else v
        return rest


def plan_moves(n_frames: int, seed: int, combos: tuple[tuple[str, str], ...], lead: tuple[str, ...] = (),
               seconds: tuple[float, float] = (1.6, 3.2)) -> list[Move]:
    """A seeded sequence of moves covering ``n_frames`` frames, each lasting ``seconds`` (low, high); with
    ``lead``, the plan opens with one combination of each of these upper moves (in that order), when the clip is
    long enough to hold other moves too (a clip shorter than that keeps the seeded order)."""
    rng = np.random.default_rng(seed)
    moves, total = [], 0
    order = list(rng.permutation(len(combos)))
    first = []
    if n_frames < (len(lead) + 1) * int(seconds[0] * FPS):
        lead = ()
    for upper in lead:
        pick = next((k for k in order if combos[k][0] == upper), None)
        if pick is not None:
            order.remove(pick)
            first.append(pick)
    order += first[::-1]  # popped from the end: the lead moves come first
    while total < n_frames:
        if not order:
            order = list(rng.permutation(len(combos)))
        upper, lower = combos[order.pop()]
        frames = int(rng.integers(int(seconds[0] * FPS), int(seconds[1] * FPS)))
        moves.append(Move(upper, lower, frames, tempo=float(rng.uniform(0.5, 1.0)), amp=float(rng.uniform(0.7, 1.0)),
                          phase=float(rng.uniform(0, 1))))
        total += frames
    return moves


# the combinations before the clasp move (issue 25): the hard footage keeps the dances its figures were measured on
CLASSIC_COMBOS = tuple(c for c in ALL_COMBOS if c[0] != "clasp")
COMBO_SETS = {"train": TRAIN_COMBOS, "heldout": HELDOUT_COMBOS, "all": ALL_COMBOS, "classic": CLASSIC_COMBOS}
# how each clip's moves are planned: the held-out clip opens with the arms-in-front moves, so that its metrics per
# pose kind have enough crossed-arm and overlapping-hand frames (bench/RESULTS.md, issue 25)
PLANS: dict[str, tuple[tuple[str, ...], tuple[float, float]]] = {
    "train": ((), (1.6, 3.2)), "heldout": (ARMS_IN_FRONT, (1.6, 3.2)), "all": ((), (1.6, 3.2)),
    "classic": ((), (1.6, 3.2))}


def dance_trajectory(n_frames: int, seed: int = 0, combos: str = "train", blend_s: float = 0.5) -> np.ndarray:
    """Pose parameters for ``n_frames`` frames, shape ``(n_frames, len(PARAMS))``, ordered as :data:`PARAMS`.

    ``combos`` picks the move combinations: "train", "heldout" (never used in training), "all" or "classic" (all
    but the clasp move's: the hard footage's).
    """
    lead, seconds = PLANS[combos]
    moves = plan_moves(n_frames, seed, COMBO_SETS[combos], lead, seconds)
    starts = np.cumsum([0] + [m.frames for m in moves])
    blend = int(blend_s * FPS)
    out = np.zeros((n_frames, len(PARAMS)), np.float32)
    for f in range(n_frames):
        i = int(np.searchsorted(starts, f, side="right") - 1)
        t = f / FPS
        vec = np.array([moves[i].params(t)[k] for k in PARAMS])
        into = f - starts[i]
        if i > 0 and into < blend:  # blend from the previous move with a smoothstep
            w = into / blend
            w = w * w * (3 - 2 * w)
            prev = np.array([moves[i - 1].params(t)[k] for k in PARAMS])
            vec = (1 - w) * prev + w * vec
        out[f] = vec
    lo = np.array([PARAM_LIMITS[k][0] for k in PARAMS])
    hi = np.array([PARAM_LIMITS[k][1] for k in PARAMS])
    return np.clip(out, lo, hi).astype(np.float32)

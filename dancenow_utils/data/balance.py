"""Drawing the rare pose kinds more often in training: crossed arms and overlapping hands (issue 25).

Footage holds few frames whose arms cross or whose hands meet in front of the body, and those are the poses the
generator smears (the original project's "overlap of hand was not registered"). With ``pose_balance`` b > 0 an
epoch draws each frame with weight ``count(kind) ** -b``, the frame's kind from its keypoints
(:func:`~dancenow_utils.pose.kinds.pose_kind`): b = 0 is every frame equally often (pix2pixHD), b = 1 every
kind equally often, in between a compromise. An epoch keeps its length, so the compute is the same.
"""

from __future__ import annotations

from collections import Counter

from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.kinds import POSE_KINDS, pose_kind


def pose_kinds(people: list[Person | None]) -> list[str]:
    """Each frame's pose kind (``others`` where nobody or not every arm joint was found)."""
    return [pose_kind(p) for p in people]


def kind_weights(kinds: list[str], balance: float) -> list[float] | None:
    """One sampling weight per frame, ``count(kind) ** -balance``; None (a plain shuffle) for ``balance=0`` or
    frames all of one kind."""
    if not 0.0 <= balance <= 1.0:
        raise ValueError(f"pose_balance must be between 0 (every frame equally often) and 1 (every pose kind "
                         f"equally often), got {balance!r}")
    counts = Counter(kinds)
    if balance == 0 or len(counts) < 2:  # one kind (or none): every frame alike, a plain shuffle
        return None
    return [counts[k] ** -balance for k in kinds]


def sampled_shares(kinds: list[str], weights: list[float] | None) -> dict[str, dict[str, float]]:
    """Per pose kind: its frames, its share of the frames and its expected share of what an epoch draws."""
    counts = Counter(kinds)
    total_w = sum(weights) if weights else float(len(kinds))
    out = {}
    for kind in POSE_KINDS:
        drawn = sum(w for k, w in zip(kinds, weights) if k == kind) if weights else float(counts[kind])
        out[kind] = {"frames": counts[kind], "share": round(counts[kind] / max(1, len(kinds)), 4),
                     "drawn": round(drawn / total_w, 4) if total_w else 0.0}
    return out


def describe(shares: dict[str, dict[str, float]]) -> str:
    """One line for the training log: each kind's frames and the share an epoch draws."""
    parts = [f"{kind} {s['frames']} ({100 * s['share']:.0f}% of frames, {100 * s['drawn']:.0f}% drawn)"
             for kind, s in shares.items()]
    return "pose kinds in training: " + ", ".join(parts)


__all__ = ["describe", "kind_weights", "pose_kinds", "sampled_shares"]

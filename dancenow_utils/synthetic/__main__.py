"""Command line: ``python -m dancenow_utils.synthetic --out DIR`` writes the demo clips and ground truth;
``--hard`` writes the hard footage instead (two people, a crowd, shot cuts, a close-up)."""

from __future__ import annotations

import argparse

from dancenow_utils.synthetic.demo import make_demo
from dancenow_utils.synthetic.hard import make_hard_footage


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write the built-in demo character's videos and ground truth.")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--size", type=int, default=256, help="frame width and height in pixels")
    ap.add_argument("--train-frames", type=int, default=1000)
    ap.add_argument("--heldout-frames", type=int, default=150)
    ap.add_argument("--source-frames", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hard", action="store_true",
                    help="write the hard footage (two_people, crowd, cuts, closeup) with --hard-frames frames each")
    ap.add_argument("--hard-frames", type=int, default=150)
    a = ap.parse_args(argv)
    for flag, value in (("--size", a.size), ("--train-frames", a.train_frames),
                        ("--heldout-frames", a.heldout_frames), ("--source-frames", a.source_frames),
                        ("--hard-frames", a.hard_frames)):
        if value < 1:
            ap.error(f"{flag} must be at least 1, got {value}")
    if a.hard:
        hard = make_hard_footage(a.out, a.size, a.hard_frames, a.seed)
        print(f"hard footage written to {hard.root} (ground truth: {hard.manifest})")
        return
    paths = make_demo(a.out, a.size, a.train_frames, a.heldout_frames, a.source_frames, a.seed)
    print(f"demo written to {paths.root} (contact sheet: {paths.contact_sheet})")


if __name__ == "__main__":
    main()

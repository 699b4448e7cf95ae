"""Command line: ``python -m dancenow_utils.synthetic --out DIR`` writes the demo clips and ground truth."""

from __future__ import annotations

import argparse

from dancenow_utils.synthetic.demo import make_demo


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write the built-in demo character's videos and ground truth.")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--size", type=int, default=256, help="frame width and height in pixels")
    ap.add_argument("--train-frames", type=int, default=1000)
    ap.add_argument("--heldout-frames", type=int, default=150)
    ap.add_argument("--source-frames", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    paths = make_demo(a.out, a.size, a.train_frames, a.heldout_frames, a.source_frames, a.seed)
    print(f"demo written to {paths.root} (contact sheet: {paths.contact_sheet})")


if __name__ == "__main__":
    main()

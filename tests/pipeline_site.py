"""A small real run of the pipeline laid out as ``make demo`` lays it out, for the browser tests.

Every step is the package's own code (training, cross-validation, transfer, learning snapshots, the results page),
on the session's tiny demo, under a run name with spaces and HTML characters, so the pages must escape it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

NAME = 'a <b> & "c"'  # a run name that a page must show escaped and link to quoted
FPS, N_FRAMES = 8, 8  # the transfer videos: 8 frames at 8 fps, one second


@dataclass(frozen=True)
class Site:
    """The folder (``root``) and the run name of a small pipeline run; ``pages`` are the HTML files it wrote."""

    root: Path
    name: str

    @property
    def pages(self) -> dict[str, Path]:
        """Every HTML page the pipeline writes, by what it is."""
        ck = self.root / "checkpoints"
        return {"results": self.root / "results" / "index.html",
                "transfer": self.root / "results" / self.name / "index.html",
                "training": ck / self.name / "web" / "index.html",
                "cross-validation": ck / f"{self.name}_test" / "index.html"}


def build_site(root: Path, demo_dir: Path, dataset_root: Path, name: str = NAME) -> Site:
    """Notebooks 01-05's steps on the tiny demo (``demo_dir``) and its extracted datasets (``dataset_root``)."""
    from dancenow_utils.config import make_config
    from dancenow_utils.evaluation import evaluate
    from dancenow_utils.learning import learn_with_snapshots
    from dancenow_utils.report_page import write_report
    from dancenow_utils.train import Trainer
    from dancenow_utils.transfer import prepare_poses, run_transfer

    shutil.copytree(demo_dir, root / "demo_data")
    for folder in ("dataset", "dataset_test"):
        shutil.copytree(dataset_root / folder, root / folder)
    ck = root / "checkpoints"
    cfg = make_config("tiny", {"max_dataset_size": 8})
    Trainer(cfg, root / "dataset", name, ck, resume=False, progress=False).train(max_iterations=4)
    evaluate(name, root / "dataset_test", checkpoints_dir=ck, max_samples=4, train_dataroot=root / "dataset",
             progress=False)
    source = root / "demo_data" / "source_dancer.mp4"
    poses = prepare_poses(source, root / "dataset_transfer", True, root / "dataset" / "train_keypoints", 3,
                          image_size=[cfg.width, cfg.height], max_frames=N_FRAMES, progress=False)
    run_transfer(name, poses, root / "results", source=source, checkpoints_dir=ck, fps=FPS, progress=False)
    learn_with_snapshots(cfg, root / "dataset", iterations=2, snapshot_every=1, n_samples=2, checkpoints_dir=ck,
                         progress=False)
    write_report(root, name)
    site = Site(root, name)
    missing = [str(p) for p in site.pages.values() if not p.exists()]
    assert not missing, f"the pipeline wrote no page at {missing}"
    return site

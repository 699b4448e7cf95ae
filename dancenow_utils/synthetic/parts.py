"""The demo as a label-map dataset: body-part maps -> frames, pix2pixHD's semantic input on the demo character.

:func:`make_parts_dataset` turns one demo clip into a ``dataset/``-style folder::

    {root}/{phase}_A/<frame>.png          body-part label maps (classes: synthetic.character.PARTS, 0 background)
    {root}/{phase}_inst/<frame>.png       instance maps (0 background, 1 the character)
    {root}/{phase}_B/<frame>.png          the frames, decoded from the clip's video as pose extraction does
    {root}/{phase}_keypoints/             the ground-truth OpenPose JSON and crop.json, so that cross-validation
                                          measures body SSIM and the nearest-neighbour baseline as for poses

framed as pose extraction frames a video: one crop around the character over the whole clip (``Crop.around``),
the maps cut with nearest-neighbour sampling.

and :func:`make_parts_datasets` writes the three the notebooks use: the training clip (``dataset_parts``), the
held-out clip (``dataset_parts_test``) and the source dancer's maps to translate (``dataset_parts_transfer``,
``test_A`` and ``test_inst``, no frames). Train on them with :data:`PARTS_CONFIG`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from dancenow_utils.data.labels import check_labels, read_index_image
from dancenow_utils.io_utils import list_images, swap_folders_into_place, write_image, write_json
from dancenow_utils.layout import PARTS_DATASET, PARTS_DATASET_TEST, PARTS_DATASET_TRANSFER, DatasetLayout
from dancenow_utils.pose.crop import Crop, read_single_person
from dancenow_utils.synthetic.character import PARTS
from dancenow_utils.synthetic.demo import DemoPaths
from dancenow_utils.video import read_frames

# the config keys of a part-map run: one class per body part, and the character's instance map
PARTS_CONFIG = {"label_nc": len(PARTS), "instance_maps": True}
RECORD = "parts.json"


def demo_record(demo: DemoPaths) -> dict:
    """What a parts dataset was made from: the demo's manifest (seed, size, clip lengths)."""
    if not demo.manifest.exists():
        raise FileNotFoundError(f"{demo.manifest}: no demo here; make it first (notebook 01 with an empty source, "
                                "or dancenow_utils.notebook.pipeline.ensure_demo)")
    return json.loads(demo.manifest.read_text())


def make_parts_dataset(demo: DemoPaths, clip: str, root: str | Path, phase: str = "train", frames: bool = True,
                       image_size: int = 0) -> DatasetLayout:
    """Write ``clip``'s part maps, instance maps, frames (with ``frames``) and keypoints under ``root`` at
    ``image_size`` (0: the demo's size), cropped around the character; returns the layout. Written into staging
    folders, then swapped in."""
    record = demo_record(demo)
    demo_size = int(record["size"])
    size = image_size or demo_size
    parts = list_images(demo.parts(clip))
    if not parts:
        raise FileNotFoundError(f"{demo.parts(clip)}: no part maps; make the demo again with this version "
                                "(make_demo writes them)")
    layout = DatasetLayout(root, phase)
    final = {"A": layout.A, "inst": layout.inst, "keypoints": layout.keypoints}
    if frames:
        final["B"] = layout.B
    staging = {k: v.with_name(f".{v.name}.staging") for k, v in final.items()}
    for d in staging.values():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    try:
        names = [p.stem for p in parts]
        keypoints = [demo.keypoints(clip) / f"{n}_keypoints.json" for n in names]
        people = [read_single_person(k) for k in keypoints]
        crop = Crop.around([p for p in people if p is not None], (demo_size, demo_size), size, size)
        for p, k in zip(parts, keypoints):
            labels = read_index_image(p)
            check_labels(labels, len(PARTS), str(p))
            write_image(staging["A"] / p.name, crop.apply_labels(labels))
            write_image(staging["inst"] / p.name,
                        crop.apply_labels(read_index_image(demo.instances(clip) / p.name, "instance map")))
            shutil.copyfile(k, staging["keypoints"] / k.name)
        if frames:
            wanted = set(names)
            for index, rgb in read_frames(demo.video(clip)):
                name = f"frame_{index:06d}"
                if name in wanted:
                    write_image(staging["B"] / f"{name}.png", crop.apply_image(rgb))
            missing = sorted(wanted - {p.stem for p in list_images(staging["B"])})
            if missing:
                raise ValueError(f"{demo.video(clip)}: {len(missing)} frames could not be decoded (first: "
                                 f"{missing[:5]}); make the demo again")
        crop.save(staging["keypoints"] / layout.crop.name)
        write_json(staging["keypoints"] / RECORD, {"demo": record, "clip": clip, "image_size": size,
                                                   "parts": list(PARTS)})
        swap_folders_into_place(staging, final)
    finally:
        for d in staging.values():
            shutil.rmtree(d, ignore_errors=True)
    return layout


def parts_dataset_current(demo: DemoPaths, root: str | Path, phase: str, image_size: int = 0) -> bool:
    """Whether ``root`` already holds this demo's parts dataset at this size."""
    path = DatasetLayout(root, phase).keypoints / RECORD
    if not path.exists() or not demo.manifest.exists():
        return False
    have = json.loads(path.read_text())
    record = demo_record(demo)
    return have.get("demo") == record and have.get("image_size") == (image_size or int(record["size"]))


def make_parts_datasets(demo: DemoPaths, root: str | Path = PARTS_DATASET, test_root: str | Path = PARTS_DATASET_TEST,
                        transfer_root: str | Path = PARTS_DATASET_TRANSFER, image_size: int = 0) -> dict[str, Path]:
    """The training, held-out and transfer part-map datasets of the demo (each made only when missing or made from
    another demo); returns their roots by role."""
    plan = (("train", "target_train", root, "train", True), ("test", "target_heldout", test_root, "train", True),
            ("transfer", "source_dancer", transfer_root, "test", False))
    out = {}
    for role, clip, where, phase, frames in plan:
        if not parts_dataset_current(demo, where, phase, image_size):
            make_parts_dataset(demo, clip, where, phase, frames, image_size)
        out[role] = Path(where)
    return out


__all__ = ["PARTS_CONFIG", "PARTS_DATASET", "PARTS_DATASET_TEST", "PARTS_DATASET_TRANSFER", "make_parts_dataset",
           "make_parts_datasets", "parts_dataset_current"]

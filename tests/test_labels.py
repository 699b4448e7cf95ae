"""pix2pixHD as a generic A -> B translator (issue 16): label maps, instance maps and the feature encoder.

Exact values on small hand-made maps (one-hot encoding, instance boundaries, instance-wise average pooling),
parameter counts against pix2pixHD's layer formulas, bad input named with its fix, and the demo's body-part maps
trained, evaluated and translated end to end (64 px, two iterations).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from dancenow_utils.config import make_config
from dancenow_utils.data.datasets import AlignedDataset
from dancenow_utils.data.labels import (
    colorize,
    instance_average,
    instance_edges,
    load_label_map,
    one_hot,
    resize_nearest,
)
from dancenow_utils.io_utils import write_image
from dancenow_utils.models.encoder import build_encoder
from dancenow_utils.models.networks import build_discriminator, build_generator, count_parameters
from dancenow_utils.models.pix2pixhd import Pix2PixHD


def tiny_labels(**kw):
    return make_config("tiny", {"label_nc": 4, "width": 32, "height": 32, "n_downsample_global": 2,
                                "n_downsample_E": 2, "max_dataset_size": 4, **kw})


# ------------------------------------------------------------------------------------------- encodings
def test_one_hot_encoding_of_a_small_map():
    labels = torch.tensor([[[[0, 2], [1, 2]]]])
    out = one_hot(labels, 3)
    assert out.shape == (1, 3, 2, 2) and out.dtype == torch.float32
    assert out[0].tolist() == [[[1, 0], [0, 0]], [[0, 0], [1, 0]], [[0, 1], [0, 1]]]


def test_instance_boundaries_are_pix2pixhds():
    inst = torch.tensor([[[[1, 1, 1, 1],
                           [1, 2, 2, 1],
                           [1, 2, 2, 1],
                           [3, 3, 3, 3]]]])
    # a pixel is an edge when it differs from its left or right neighbour, or from the one above or below
    assert instance_edges(inst)[0, 0].tolist() == [[0, 1, 1, 0],
                                                   [1, 1, 1, 1],
                                                   [1, 1, 1, 1],
                                                   [1, 1, 1, 1]]
    assert instance_edges(torch.full((2, 1, 3, 3), 7)).sum() == 0


def test_instance_wise_average_pooling_on_a_hand_made_map():
    regions = torch.tensor([[[[1, 1, 2],
                              [1, 5, 2]]],
                            [[[1, 1, 1],
                              [2, 2, 2]]]])
    feats = torch.tensor([[[[1., 2., 3.], [3., 10., 5.]], [[0., 0., 4.], [4., 8., 0.]]],
                          [[[6., 0., 3.], [1., 1., 1.]], [[1., 1., 1.], [2., 4., 6.]]]], requires_grad=True)
    out = instance_average(feats, regions)
    # image 0: region 1 = pixels (0,0),(0,1),(1,0): channel 0 mean 2, channel 1 mean 4/3; region 2: 4 and 2; 5: itself
    assert out[0, 0].tolist() == [[2, 2, 4], [2, 10, 4]]
    assert torch.allclose(out[0, 1], torch.tensor([[4 / 3, 4 / 3, 2.], [4 / 3, 8., 2.]]))
    # image 1 has its own regions 1 and 2 (ids are per image, not shared across the batch)
    assert out[1, 0].tolist() == [[3, 3, 3], [1, 1, 1]] and out[1, 1].tolist() == [[1, 1, 1], [4, 4, 4]]
    out[0, 0, 0, 0].backward()  # a region's mean spreads its gradient evenly over its pixels
    assert torch.allclose(feats.grad[0, 0], torch.tensor([[1 / 3, 1 / 3, 0], [1 / 3, 0, 0]]))
    assert feats.grad[1].abs().sum() == 0


def test_label_maps_are_resized_nearest_never_interpolated(tmp_path):
    labels = np.zeros((30, 50), np.uint8)
    labels[:, 25:] = 9
    labels[10:20, 5:15] = 3
    write_image(tmp_path / "a.png", labels)
    for w, h in ((32, 16), (100, 60), (7, 5)):
        out = load_label_map(tmp_path / "a.png", w, h, 10)
        assert out.shape == (h, w) and set(np.unique(out)) <= {0, 3, 9}
    assert resize_nearest(np.array([[1, 2], [3, 4]]), 4, 4).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2],
                                                                         [3, 3, 4, 4], [3, 3, 4, 4]]


def test_palette_pictures_of_label_maps():
    rgb = colorize(np.array([[0, 1], [2, 3]]))
    assert rgb.shape == (2, 2, 3) and tuple(rgb[0, 0]) == (0, 0, 0)
    assert len({tuple(c) for c in rgb.reshape(-1, 3)}) == 4


# ------------------------------------------------------------------------------------ parameter counts
def conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout  # weights and bias; instance norm has no parameters (affine=False)


def global_generator_params(in_nc: int, out_nc: int, ngf: int, n_down: int, n_blocks: int) -> int:
    n = conv(in_nc, ngf, 7) + conv(ngf, out_nc, 7)
    for i in range(n_down):
        c = ngf * 2**i
        n += conv(c, 2 * c, 3) + conv(2 * c, c, 3)  # stride-2 conv down, transposed conv back up
    return n + n_blocks * 2 * conv(ngf * 2**n_down, ngf * 2**n_down, 3)


def discriminator_params(in_nc: int, ndf: int, n_layers: int, num_d: int) -> int:
    n, nf = conv(in_nc, ndf, 4), ndf
    for _ in range(n_layers):
        n, nf = n + conv(nf, min(2 * nf, 512), 4), min(2 * nf, 512)
    return num_d * (n + conv(nf, 1, 4))


def test_formula_reproduces_the_seed_presets_known_counts():
    assert global_generator_params(3, 3, 64, 4, 9) == 182_443_267
    assert discriminator_params(6, 64, 3, 2) == 5_535_618


def test_label_map_networks_match_pix2pixhd_with_the_same_options():
    # pix2pixHD on Cityscapes: label_nc 35 with instance maps -> 36 input channels; ngf 64, 4 downsamplings, 9 blocks
    cfg = make_config("seed", {"label_nc": 35, "instance_maps": True})
    assert count_parameters(build_generator(cfg)) == global_generator_params(36, 3, 64, 4, 9)
    assert count_parameters(build_generator(cfg)) == 182_443_267 + 33 * 64 * 49  # 33 more input channels
    assert count_parameters(build_discriminator(cfg)) == discriminator_params(35 + 1 + 3, 64, 3, 2)
    with_feat = cfg.with_overrides({"instance_feat": True})
    assert count_parameters(build_generator(with_feat)) == global_generator_params(36 + 3, 3, 64, 4, 9)
    assert count_parameters(build_discriminator(with_feat)) == discriminator_params(39, 64, 3, 2)  # no features
    assert build_encoder(cfg) is None


def test_encoder_parameters_match_pix2pixhds_encoder():
    # Encoder(output_nc=3 in, feat_num 3 out, nef 16, n_downsampling 4): ReflectionPad3 + Conv7(3, 16), norm, ReLU;
    # four Conv3 stride 2 (16-32-64-128-256); four ConvTranspose3 stride 2 back; ReflectionPad3 + Conv7(16, 3), Tanh
    cfg = make_config("seed", {"label_nc": 35, "instance_maps": True, "instance_feat": True})
    expected = (3 * 16 * 49 + 16) + sum(c * 2 * c * 9 + 2 * c for c in (16, 32, 64, 128)) + \
        sum(c * (c // 2) * 9 + c // 2 for c in (256, 128, 64, 32)) + (16 * 3 * 49 + 3)
    assert count_parameters(build_encoder(cfg)) == expected == 788_803


def test_encoder_trains_with_the_generator_and_tracks_class_means():
    cfg = tiny_labels(instance_maps=True, instance_feat=True, vgg_loss="off")
    torch.manual_seed(0)
    model = Pix2PixHD(cfg, torch.device("cpu"), vgg=False)
    g_params = {id(p) for g in model.optimizers["G"].param_groups for p in g["params"]}
    assert {id(p) for p in model.nets["E"].parameters()} <= g_params  # one optimiser for G and E, as pix2pixHD
    assert not {id(p) for p in model.nets["E"].parameters()} & {
        id(p) for g in model.optimizers["D"].param_groups for p in g["params"]}
    labels = torch.zeros(2, 1, 32, 32, dtype=torch.long)
    labels[:, :, 8:24, 8:24] = 2
    inst = (labels > 0).long()
    batch = {"A": labels, "inst": inst, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    before = [p.detach().clone() for p in model.nets["E"].parameters()]
    model.train_step(batch)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.nets["E"].parameters()))
    E = model.nets["E"]
    assert E.class_seen.tolist() == [True, False, True, False]
    assert E.class_features[1].abs().sum() == 0  # never seen: stays zero
    state = model.state_dict()
    assert {"G", "D", "E", "opt_G", "opt_D"} <= set(state)
    assert set(model.generator_state()) == {"G", "E"}


def test_label_feat_pools_per_class():
    cfg = tiny_labels(label_feat=True, vgg_loss="off")
    model = Pix2PixHD(cfg, torch.device("cpu"), vgg=False)
    labels = torch.randint(0, 4, (1, 1, 32, 32))
    feats = model.nets["E"](torch.rand(1, 3, 32, 32), labels)
    for c in labels.unique():
        values = feats[0][:, labels[0, 0] == c]
        assert torch.allclose(values, values[:, :1].expand_as(values))


# ------------------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("overrides, message", [
    ({"instance_maps": True}, "needs label maps"),
    ({"label_nc": 3, "instance_maps": True, "instance_feat": True, "label_feat": True}, "exclude each other"),
    ({"label_nc": 3, "instance_feat": True}, "needs instance_maps=True"),
    ({"label_feat": True}, "needs label maps"),
    ({"label_nc": 3, "label_feat": True, "temporal": True}, "temporal=False"),
    ({"label_nc": 3, "label_feat": True, "n_downsample_E": 7}, "multiples of 128"),
    ({"label_nc": -1}, "'label_nc' must be 0 or more"),
    ({"label_nc": 3, "label_feat": True, "feat_num": 0}, "'feat_num' must be at least 1"),
])
def test_input_kind_settings_are_checked(overrides, message):
    with pytest.raises(ValueError, match=message):
        make_config("tiny", overrides)


def test_input_kind_keys_are_overrides_and_architecture_keys():
    from dancenow_utils.config import ARCH_KEYS, parse_overrides

    cfg = make_config("demo", parse_overrides('{"label_nc": 16, "instance_maps": "true", "instance_feat": 1}'))
    assert (cfg.label_nc, cfg.instance_maps, cfg.instance_feat, cfg.feat_num, cfg.nef, cfg.n_downsample_E) == \
        (16, True, True, 3, 16, 4)
    assert {"label_nc", "instance_maps", "instance_feat", "label_feat", "feat_num", "nef",
            "n_downsample_E"} <= set(ARCH_KEYS)


# ------------------------------------------------------------------------------------------ bad input
def label_dataset(root, n: int = 3, value: int = 2, inst: bool = True):
    for i in range(n):
        labels = np.zeros((40, 40), np.uint8)
        labels[10:30, 10:30] = value
        write_image(root / "train_A" / f"f{i}.png", labels)
        write_image(root / "train_B" / f"f{i}.png", np.full((40, 40, 3), 80 + i, np.uint8))
        if inst:
            write_image(root / "train_inst" / f"f{i}.png", (labels > 0).astype(np.uint8))
    return root


def test_a_label_at_or_above_label_nc_names_the_file_and_the_fix(tmp_path):
    label_dataset(tmp_path, value=4)
    with pytest.raises(ValueError) as err:
        AlignedDataset(tmp_path, "train", 32, 32, label_nc=4, instance_maps=True)
    msg = str(err.value)
    assert "train_A/f0.png" in msg and "label value 4" in msg and "0..3" in msg and "'label_nc': 5" in msg


def test_an_rgb_image_where_a_label_map_is_expected_is_named(tmp_path):
    label_dataset(tmp_path)
    write_image(tmp_path / "train_A" / "f1.png", np.dstack([np.zeros((40, 40), np.uint8)] * 2
                                                           + [np.full((40, 40), 200, np.uint8)]))
    with pytest.raises(ValueError) as err:
        AlignedDataset(tmp_path, "train", 32, 32, label_nc=4, instance_maps=True)
    assert "train_A/f1.png" in str(err.value) and "colour (RGB) image" in str(err.value)
    assert "label_nc=0" in str(err.value)
    # a grey picture saved as RGB is a label map all the same
    grey = np.dstack([np.full((40, 40), 3, np.uint8)] * 3)
    write_image(tmp_path / "train_A" / "f1.png", grey)
    ds = AlignedDataset(tmp_path, "train", 32, 32, label_nc=4, instance_maps=True)
    assert ds[1]["A"].unique().tolist() == [3]


def test_a_missing_instance_map_is_named(tmp_path):
    label_dataset(tmp_path)
    (tmp_path / "train_inst" / "f2.png").unlink()
    with pytest.raises(FileNotFoundError) as err:
        AlignedDataset(tmp_path, "train", 32, 32, label_nc=4, instance_maps=True)
    assert "f2" in str(err.value) and "train_inst" in str(err.value) and "instance_maps=False" in str(err.value)
    with pytest.raises(FileNotFoundError, match="no instance-map folder"):
        AlignedDataset(label_dataset(tmp_path / "none", inst=False), "train", 32, 32, label_nc=4,
                       instance_maps=True)


def test_label_items_flip_with_their_frames(tmp_path):
    label_dataset(tmp_path)
    ds = AlignedDataset(tmp_path, "train", 32, 32, label_nc=4, instance_maps=True)
    item, flipped = ds[0], ds[(0, True)]
    assert item["A"].shape == item["inst"].shape == (1, 32, 32) and item["A"].dtype == torch.int64
    for key in ("A", "inst", "B"):
        assert torch.equal(flipped[key], item[key].flip(-1))


# ----------------------------------------------------------------------------- the demo's part maps
@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    from dancenow_utils.synthetic import make_demo
    from dancenow_utils.synthetic.parts import make_parts_datasets

    root = tmp_path_factory.mktemp("parts")
    demo = make_demo(root / "demo", size=64, n_train=8, n_heldout=4, n_source=4, seed=2, progress=False)
    roots = make_parts_datasets(demo, root / "dataset_parts", root / "dataset_parts_test",
                                root / "dataset_parts_transfer")
    return demo, roots, root


def test_demo_writes_part_and_instance_maps(parts):
    from dancenow_utils.data.labels import read_index_image
    from dancenow_utils.io_utils import read_image
    from dancenow_utils.synthetic.character import PARTS

    demo, roots, _ = parts
    labels = read_index_image(demo.parts("target_train") / "frame_000000.png")
    inst = read_index_image(demo.instances("target_train") / "frame_000000.png")
    mask = read_image(demo.masks("target_train") / "frame_000000.png")[..., 0] > 127
    assert labels.dtype == np.uint8 and labels.max() < len(PARTS) and len(np.unique(labels)) > 8
    assert set(np.unique(inst)) == {0, 1} and np.array_equal(inst > 0, labels > 0)
    assert (mask != (labels > 0)).mean() < 0.03  # the labels cover the drawn body
    for role in ("train", "test"):
        r = roots[role]
        assert len(list((r / "train_A").glob("*.png"))) == len(list((r / "train_B").glob("*.png"))) == \
            len(list((r / "train_inst").glob("*.png")))
        assert (r / "train_keypoints" / "crop.json").exists()
    assert not (roots["transfer"] / "test_B").exists() and (roots["transfer"] / "test_inst").is_dir()
    # the maps are cut like the frames (one crop around the character): the torso's pixels show the red shirt
    frame = read_image(roots["train"] / "train_B" / "frame_000003.png")
    part_map = read_index_image(roots["train"] / "train_A" / "frame_000003.png")
    shirt = frame[part_map == PARTS.index("torso")].astype(float).mean(0)
    assert shirt[0] > 150 and shirt[1] < 130 and shirt[2] < 110, shirt
    assert (part_map > 0).mean() > 0.15  # the character fills the crop, as in the pose datasets


@pytest.mark.parametrize("features", [{"instance_feat": True}, {}])
def test_part_maps_train_evaluate_and_translate(parts, tmp_path, features):
    from dancenow_utils.evaluation.crossval import evaluate
    from dancenow_utils.models.inference import load_generator
    from dancenow_utils.synthetic.parts import PARTS_CONFIG
    from dancenow_utils.training.stages import build_trainer
    from dancenow_utils.transfer.pose_transfer import run_transfer

    _, roots, _ = parts
    cfg = make_config("tiny", {**PARTS_CONFIG, **features, "max_dataset_size": 4})
    build_trainer(cfg, roots["train"], "parts", tmp_path, resume=False, progress=False).train(max_iterations=2)
    gen = load_generator("parts", checkpoints_dir=tmp_path, device="cpu")
    assert gen.label_maps and (gen.E is not None) == bool(features)
    items = list(gen.read_inputs(sorted((roots["test"] / "train_A").glob("*.png"))[:2]))
    default = list(gen.frames(items))
    assert len(default) == 2 and default[0].shape == (64, 64, 3)
    if features:
        frames_b = [np.full((64, 64, 3), 200, np.uint8)] * 2
        regions = gen.region_features(frames_b[0], items[0])
        assert {r.region for r in regions} == {0, 1} and all(r.vector.shape == (3,) for r in regions)
        person = next(r for r in regions if r.region == 1)  # the character's instance: its majority class
        chosen = {person.label: [0.9, -0.9, 0.5]}
        assert not np.array_equal(next(gen.frames(items[:1], features=chosen)), default[0])
        assert not np.array_equal(next(gen.frames(items[:1], references=frames_b[:1])), default[0])
        with pytest.raises(ValueError, match="3 finite numbers"):
            next(gen.frames(items[:1], features={2: [1.0]}))
    metrics = evaluate("parts", roots["test"], checkpoints_dir=tmp_path, max_samples=2,
                       train_dataroot=roots["train"], device="cpu", progress=False)
    assert metrics["n_samples"] == 2 and metrics["body_ssim"] is not None and metrics["nn_body_ssim"] is not None
    result = run_transfer("parts", roots["transfer"] / "test_A", tmp_path / "results", checkpoints_dir=tmp_path,
                          device="cpu", progress=False)
    assert result.n_frames == 4 and result.video.exists()
    assert json.loads((result.out_dir / "transfer.json").read_text())["blank_poses"] == 0
    if not features:  # the forensic detector reads label maps too (notebook 03)
        from dancenow_utils.evaluation.forensics import forensic_check

        res = forensic_check("parts", roots["train"], roots["test"], tmp_path, steps=2, max_train=4, max_test=2,
                             device="cpu", progress=False)
        assert res.metrics["heldout"]["accuracy"] is not None


def test_label_map_runs_refuse_what_needs_poses(parts, tmp_path):
    from dancenow_utils.models.inference import load_generator
    from dancenow_utils.notebook.pipeline import resolve_transfer_source
    from dancenow_utils.synthetic.parts import PARTS_CONFIG
    from dancenow_utils.training.stages import build_trainer
    from dancenow_utils.transfer.puppet import Puppet

    demo, roots, _ = parts
    cfg = make_config("tiny", {**PARTS_CONFIG, "max_dataset_size": 2})
    build_trainer(cfg, roots["train"], "p", tmp_path, resume=False, progress=False).train(max_iterations=1)
    with pytest.raises(ValueError, match="face stage"):
        build_trainer(cfg, roots["train"], "p/face", tmp_path, model="face", progress=False)
    gen = load_generator("p", checkpoints_dir=tmp_path, device="cpu")
    with pytest.raises(ValueError, match="pose puppet"):
        Puppet(gen, None)
    with pytest.raises(ValueError, match="Pose extraction and pose normalisation apply to pose runs only"):
        resolve_transfer_source(str(demo.video("source_dancer")), "dataset_transfer", demo.root, gen.cfg)
    folder, ready = resolve_transfer_source(str(roots["transfer"]), "dataset_transfer", demo.root, gen.cfg)
    assert ready and folder.endswith("test_A")
    pose_gen = dataclasses.replace(gen, cfg=make_config("tiny"))
    with pytest.raises(ValueError, match="trained on pose images"):
        next(pose_gen.frames(list(gen.read_inputs(sorted((roots["train"] / "train_A").glob("*.png"))[:1]))))


def test_temporal_model_on_label_maps_trains_on_consecutive_maps():
    cfg = tiny_labels(instance_maps=True, temporal=True, vgg_loss="off")
    model = Pix2PixHD(cfg, torch.device("cpu"), vgg=False)
    labels = torch.randint(0, 4, (2, 1, 32, 32))
    batch = {"A": labels, "inst": (labels > 0).long(), "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    batch.update({f"{k}_next": v.flip(-1) for k, v in batch.items()})
    losses = model.train_step(batch)
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.D.nets[0].layers[0][0].in_channels == 2 * (4 + 1 + 3)


def test_notebook_input_kinds(parts, tmp_path, monkeypatch):
    from dancenow_utils.notebook.pipeline import cross_validation_data, input_step, sample_pairs_figure

    demo, _, root = parts
    assert input_step("pose", "dataset", '{"niter": 2}') == ("dataset", {"niter": 2})
    monkeypatch.chdir(tmp_path)
    dataroot, overrides = input_step("parts", "dataset", {"niter": 2, "instance_feat": True}, demo.root)
    assert dataroot == "dataset_parts" and (tmp_path / "dataset_parts_test" / "train_A").is_dir()
    assert overrides == {"label_nc": 16, "instance_maps": True, "niter": 2, "instance_feat": True}
    assert make_config("demo", overrides).use_features
    assert cross_validation_data("parts") == ("dataset_parts_test", "dataset_parts")
    assert cross_validation_data("pose", "a", "b") == ("a", "b")
    with pytest.raises(ValueError, match="input_kind"):
        input_step("segments")
    figure = sample_pairs_figure(dataroot, "train", n=2, label_maps=True)
    assert figure.ndim == 3 and figure.std() > 10

import json

import pytest

from dancenow_utils.config import PRESETS, TrainConfig, make_config


def test_round_trip(tmp_path):
    cfg = make_config("seed", {"lr": 1e-4})
    cfg.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json") == cfg
    assert json.loads((tmp_path / "config.json").read_text())["lr"] == 1e-4


def test_unknown_key_lists_valid_keys():
    with pytest.raises(KeyError) as err:
        make_config("demo", {"learning_rate": 1})
    assert "learning_rate" in str(err.value) and "lr" in str(err.value) and "ngf" in str(err.value)


def test_unknown_preset():
    with pytest.raises(KeyError, match="demo"):
        make_config("nope")


def test_papermill_values_are_coerced():
    cfg = make_config("demo", {"niter": 3.0, "lr": "0.001", "flip": "false"})
    assert cfg.niter == 3 and isinstance(cfg.niter, int) and cfg.lr == 0.001 and cfg.flip is False
    with pytest.raises(ValueError, match="niter"):
        make_config("demo", {"niter": 2.5})


def test_presets_build():
    for name in PRESETS:
        assert make_config(name).preset == name
    seed = make_config("seed")
    assert (seed.width, seed.ngf, seed.n_downsample_global, seed.n_blocks_global, seed.num_D) == (512, 64, 4, 9, 2)
    assert (seed.batch_size, seed.lr, seed.niter, seed.niter_decay) == (1, 2e-4, 20, 20)

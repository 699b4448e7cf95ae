"""Allocator settings: one value shared by the Makefile and Python, set for notebook kernels, read by glibc."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dancenow_utils.notebook import runner as run_notebooks
from dancenow_utils.runtime.env import GLIBC_TUNABLES, apply_allocator_env

ROOT = Path(__file__).resolve().parents[1]

PAGE_FAULTS = """
import resource
import numpy as np
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = np.ones(8 << 20)  # 64 MiB, freed again: what a training step does with its activations
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_the_makefile_uses_the_same_value():
    match = re.search(r"^MALLOC_TUNABLES \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match and match.group(1) == GLIBC_TUNABLES
    assert "GLIBC_TUNABLES=$(MALLOC_TUNABLES)" in (ROOT / "Makefile").read_text()


def test_apply_sets_the_variable_but_keeps_the_users_own():
    env: dict[str, str] = {}
    assert apply_allocator_env(env) and env == {"GLIBC_TUNABLES": GLIBC_TUNABLES}
    env = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert not apply_allocator_env(env) and env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"


def test_the_module_prints_a_shell_export():
    out = subprocess.run([sys.executable, "-m", "dancenow_utils.runtime.env"], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == f"export GLIBC_TUNABLES={GLIBC_TUNABLES}"


def test_notebook_kernels_inherit_the_setting(monkeypatch, tmp_path):
    import papermill

    monkeypatch.setenv("GLIBC_TUNABLES", "placeholder")  # so that monkeypatch restores the original state
    monkeypatch.delenv("GLIBC_TUNABLES")
    seen = {}

    def execute_notebook(*args, **kwargs):
        seen["env"] = os.environ.get("GLIBC_TUNABLES")

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    run_notebooks.run_notebook(tmp_path / "in.ipynb", tmp_path / "out.ipynb")
    assert seen["env"] == GLIBC_TUNABLES


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_honours_the_setting_in_a_new_process():
    def faults(extra: dict[str, str]) -> int:
        env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"} | extra
        out = subprocess.run([sys.executable, "-c", PAGE_FAULTS], env=env, capture_output=True, text=True,
                             check=True)
        return int(out.stdout)

    default, tuned = faults({}), faults({"GLIBC_TUNABLES": GLIBC_TUNABLES})
    assert tuned * 4 < default, (tuned, default)

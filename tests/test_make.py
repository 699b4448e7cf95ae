"""The Makefile's choice of interpreter and virtual environment (tools/find_python.sh), per Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.notebook_helper import ROOT

FIND = ROOT / "tools" / "find_python.sh"


def _find(name: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ) if path is None else {**os.environ, "PATH": path}
    return subprocess.run(["sh", str(FIND), name], capture_output=True, text=True, env=env)


def test_a_python_that_runs_is_taken_as_it_is():
    found = _find(sys.executable)
    assert found.returncode == 0 and Path(found.stdout.strip()).exists()


def test_a_version_only_pyenv_provides_is_found_through_pyenv(tmp_path):
    """What this machine's pyenv does: `python3.13` is no shim on PATH, but version 3.13.0 has it."""
    prefix = tmp_path / "versions" / "9.9.1"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "python9.9").symlink_to(sys.executable)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pyenv").write_text(f"""#!/bin/sh
case "$1" in
    versions) echo 9.8.0; echo 9.9.1 ;;
    prefix) echo "{tmp_path}/versions/$2" ;;
esac
""")
    (bin_dir / "pyenv").chmod(0o755)
    path = f"{bin_dir}:{os.path.dirname(shutil.which('sh'))}"
    found = _find("python9.9", path)
    assert found.returncode == 0, found.stderr
    assert subprocess.run([found.stdout.strip(), "-c", "print(1)"], capture_output=True, text=True).stdout == "1\n"


def test_no_such_python_names_what_to_install(tmp_path):
    found = _find("python3.99", f"{tmp_path}:{os.path.dirname(shutil.which('sh'))}")
    assert found.returncode == 1 and found.stdout == ""
    assert "pyenv install 3.99" in found.stderr and "PYTHON=/path/to/python3.99" in found.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("python,venv", [("python3", ".venv"), ("python3.13", ".venv-python3.13"),
                                         ("/usr/bin/python3.12", ".venv-python3.12")])
def test_each_python_gets_its_own_virtual_environment(python, venv):
    plan = subprocess.run(["make", "-n", "lint", "lab", f"PYTHON={python}"], capture_output=True, text=True,
                          cwd=ROOT, check=True).stdout
    assert f"{venv}/bin/ruff check" in plan and f"{venv}/bin/jupyter lab" in plan
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", f"{venv}/bin/python"], cwd=ROOT)
        assert ignored.returncode == 0, f"{venv}/ is not git-ignored"


@pytest.mark.parametrize("failing", ["", "python3", "python3.13"])
def test_ci_runs_the_suite_on_both_pythons_and_fails_when_either_fails(tmp_path, failing):
    """`.ci/run` with a `make` that records its calls and fails for one Python."""
    log = tmp_path / "calls"
    (tmp_path / "make").write_text(f"""#!/bin/sh
echo "$@" >> {log}
[ "$2" != "PYTHON={failing}" ]
""")
    (tmp_path / "make").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    run = subprocess.run(["bash", str(ROOT / ".ci" / "run")], capture_output=True, text=True, env=env)
    assert log.read_text().splitlines() == ["test PYTHON=python3", "test PYTHON=python3.13"]
    assert run.returncode == (1 if failing else 0), run.stdout
    if failing:
        assert f"FAILED: make test PYTHON={failing}" in run.stdout

"""The package's floor plan (issue 27): one folder per pipeline step, imports that only go down, old names kept."""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "dancenow_utils"
# lowest first: a module may import from its own layer's other units and from layers below, never from above
LAYERS = (
    {"io_utils", "params", "layout", "folders"},
    {"runtime", "video", "visualize"},
    {"config"},
    {"pose", "data", "checkpoint"},
    {"models", "synthetic"},
    {"training"},
    {"evaluation", "transfer"},
    {"notebook"},
)
STEP_FOLDERS = {"pose": 1, "training": 2, "evaluation": 3, "transfer": 4}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every module's imports of the package's own modules (at any depth of the file, lazy imports included)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dancenow_utils"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    graph[name].add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name.startswith("dancenow_utils")}
        graph[name].discard(name)
    return graph


def unit(module: str) -> str:
    """The top-level module or folder a module belongs to (``dancenow_utils.pose.crop`` -> ``pose``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer(module: str) -> int:
    return next(i for i, units in enumerate(LAYERS) if unit(module) in units)


def test_every_step_has_its_folder_and_the_top_level_is_small():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert len(top) <= 10, top
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert set(STEP_FOLDERS) <= folders
    known = set().union(*LAYERS)
    assert set(top) | folders <= known, f"place {sorted((set(top) | folders) - known)} in LAYERS"


def test_imports_only_go_down_the_layers():
    upward = [(a, b) for a, targets in import_graph().items() for b in targets
              if unit(b) and unit(a) and layer(b) > layer(a)]
    assert not upward, upward


def test_no_import_circle():
    graph = import_graph()
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in seen and (found := visit(nxt, path + [node])):
                return found
        seen[node] = 2
        return None

    for start in sorted(graph):
        if start not in seen:
            circle = visit(start, [])
            assert circle is None, " -> ".join(circle)


def test_inference_needs_nothing_from_training():
    """Loading a trained generator (evaluation, transfer, the puppet) must not drag in the trainer."""
    graph = import_graph()
    reach, todo = set(), ["dancenow_utils.models.inference"]
    while todo:
        m = todo.pop()
        for nxt in graph.get(m, ()):
            if nxt not in reach:
                reach.add(nxt)
                todo.append(nxt)
    assert not [m for m in reach if unit(m) == "training"]
    code = ("import sys, dancenow_utils.models.inference, dancenow_utils.transfer.puppet\n"
            "print(sorted(m for m in sys.modules if m.startswith('dancenow_utils.training')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr


@pytest.mark.parametrize("old,new,attr", [
    ("dancenow_utils.pipeline", "dancenow_utils.notebook.pipeline", "pose_step"),
    ("dancenow_utils.train", "dancenow_utils.training.trainer", "Trainer"),
    ("dancenow_utils.puppet", "dancenow_utils.transfer.puppet", "Puppet"),
    ("dancenow_utils.inference", "dancenow_utils.models.inference", "load_generator"),
])
def test_old_module_names_still_import_with_a_warning(old, new, attr):
    import importlib

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert getattr(module, attr) is getattr(importlib.import_module(new), attr)


def test_old_names_inside_replaced_modules_and_the_old_trainer_call(tiny_dataset, tmp_path):
    from dancenow_utils.config import make_config
    from dancenow_utils.pose.face_box import face_box
    from dancenow_utils.training.trainer import Trainer

    with pytest.warns(DeprecationWarning, match="dancenow_utils.evaluation.evaluate moved to"):
        from dancenow_utils.evaluation import evaluate  # noqa: F401  (the flat module's name)
    with pytest.warns(DeprecationWarning, match="moved to dancenow_utils.pose.face_box.face_box"):
        from dancenow_utils.models.face import face_box as old_face_box
    assert old_face_box is face_box
    with pytest.warns(DeprecationWarning, match="build_trainer"):
        tr = Trainer(make_config("tiny", {"max_dataset_size": 4}), tiny_dataset / "dataset", "old", tmp_path,
                     resume=False, progress=False)
    assert tr.dir == tmp_path / "old" and tr.kind == "pix2pixhd" and tr.n_items == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names warn about nothing
        from dancenow_utils.evaluation.crossval import evaluate as new_evaluate  # noqa: F401


def test_old_command_lines_still_run():
    for old in ("dancenow_utils.train", "dancenow_utils.runtime_env"):
        run = subprocess.run([sys.executable, "-m", old, *(["--help"] if old.endswith("train") else [])],
                             capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert run.returncode == 0, run.stderr
        assert "moved to" in run.stderr
    assert "GLIBC_TUNABLES" in run.stdout

"""dancenow: Everybody Dance Now in notebooks. One folder per pipeline step:

- ``pose/``: step 1, pose extraction (detectors, OpenPose formats, smoothing, normalisation, cropping, drawing);
- ``training/``: step 2, the training loop (``trainer``), the method's stages (``stages``), the command line
  (``python -m dancenow_utils.training``) and step 5's snapshot runs (``snapshots``);
- ``evaluation/``: step 3, cross-validation (``crossval``), metrics, pose coverage and the forensic detector;
- ``transfer/``: step 4, pose transfer into videos (``pose_transfer``) and the pose puppet;
- ``models/``: the networks, losses, the pix2pixHD and face-GAN models, and loading a trained generator
  (``inference``);
- ``data/``: training pairs, batches and label maps; ``synthetic/``: the built-in demo character;
- ``notebook/``: what the notebooks' cells call (``pipeline``), their lessons, the report page, the runner;
- ``runtime/``: device, precision and process environment.

The modules at this level are shared by all steps: configuration, folder layout, run files (``checkpoint``),
parameters, image and video I/O, figures.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

# Where the modules of the flat layout went (issue 27). Importing an old name still works for one release, with a
# DeprecationWarning; ``python -m`` on an old name runs the new module.
MOVED = {
    "train": "training.trainer", "stages": "training.stages", "learning": "training.snapshots",
    "device": "runtime.device", "precision": "runtime.precision", "runtime_env": "runtime.env",
    "face": "models.face", "features": "models.features", "inference": "models.inference",
    "labels": "data.labels", "metrics": "evaluation.metrics", "coverage": "evaluation.coverage",
    "forensics": "evaluation.forensics", "stats": "evaluation.stats", "puppet": "transfer.puppet",
    "pipeline": "notebook.pipeline", "lessons": "notebook.lessons", "report_page": "notebook.report_page",
    "run_notebooks": "notebook.runner", "notebook_outputs": "notebook.saved_outputs",
    "distributed": "training.distributed", "launch": "training.launch", "memory": "training.memory",
}
RUN_AS = {"train": "training.cli"}  # `python -m dancenow_utils.train` trains, as it did


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``dancenow_utils.<old name>`` to the module that now holds its code."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, name = fullname.partition(".")
        if prefix != __name__ or name not in MOVED:
            return None
        new = importlib.util.find_spec(f"{__name__}.{RUN_AS.get(name, MOVED[name])}")
        return importlib.util.spec_from_loader(fullname, self, origin=new.origin if new else None)

    @staticmethod
    def _new(fullname: str, table: dict[str, str] = MOVED, category: type[Warning] = DeprecationWarning) -> str:
        old = fullname.partition(".")[2]
        new = f"{__name__}.{table.get(old, MOVED[old])}"
        warnings.warn(f"{fullname} moved to {new}; import it from there (the old name goes in the next release)",
                      category, stacklevel=3)
        return new

    def create_module(self, spec):
        return importlib.import_module(self._new(spec.name))

    def exec_module(self, module) -> None:
        """The module was imported under its new name already."""

    def get_code(self, fullname):  # `python -m dancenow_utils.<old name>` runs the new module's code
        new = self._new(fullname, RUN_AS, FutureWarning)  # shown on a command line, unlike DeprecationWarning
        return importlib.util.find_spec(new).loader.get_code(new)


def moved_attributes(package: str, module: str | dict[str, str]):
    """A module ``__getattr__`` for names that moved elsewhere: looked up in ``module`` (one new home for every
    name, e.g. for a package that replaced a flat module of its name; or a name -> module table), with a
    DeprecationWarning, and imported only when asked for."""
    def __getattr__(name: str):
        if name.startswith("__") or (isinstance(module, dict) and name not in module):
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        home = module[name] if isinstance(module, dict) else module
        target = importlib.import_module(home)
        if not hasattr(target, name):
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        warnings.warn(f"{package}.{name} moved to {home}.{name}; import it from there (the old name goes in the "
                      "next release)", DeprecationWarning, stacklevel=2)
        return getattr(target, name)
    return __getattr__


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())

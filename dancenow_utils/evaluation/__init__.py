"""Step 3: cross-validation (``crossval``), the metrics, pose coverage and the forensic detector.

``dancenow_utils.evaluation`` was one module before; its names still resolve from ``crossval`` for one release."""

from dancenow_utils import moved_attributes

__getattr__ = moved_attributes(__name__, "dancenow_utils.evaluation.crossval")

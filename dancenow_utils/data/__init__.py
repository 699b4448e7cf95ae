"""Training data: aligned pairs, batches and their order (``datasets``), label and instance maps (``labels``).

``dancenow_utils.data`` was one module before; its names still resolve from ``datasets`` for one release."""

from dancenow_utils import moved_attributes

__getattr__ = moved_attributes(__name__, "dancenow_utils.data.datasets")

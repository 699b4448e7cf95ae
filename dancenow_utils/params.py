"""Parameter checks shared by the steps: every notebook and CLI parameter is checked before any work, and the
error names the parameter, what it got and what is valid."""

from __future__ import annotations

import numpy as np


def check_int(name: str, value: object, minimum: int, meaning: str = "") -> int:
    """``value`` as an int of at least ``minimum`` (integral floats from papermill pass); errors name ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            (isinstance(value, (float, np.floating)) and not float(value).is_integer()):
        raise ValueError(f"{name} must be a whole number{meaning}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be at least {minimum}{meaning}, got {value!r}")
    return int(value)


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool (papermill passes True/False), else an error naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)

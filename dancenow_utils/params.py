"""Parameter checks shared by the steps: every notebook and CLI parameter is checked before any work, and the
error names the parameter, what it got and what is valid.

Papermill passes ``-p resume false`` as the string ``"false"`` (and ``-p iterations 5`` as an int, ``-p fps 30.5``
as a float, but ``-p fps "30"`` as a string): the checkers understand those strings, so ``"false"`` is False,
never a truthy string, and refuse anything else naming the parameter.
"""

from __future__ import annotations

import math

import numpy as np

TRUE = ("true", "1")  # papermill's strings (any case); other words, numbers and floats are refused as unclear
FALSE = ("false", "0")


def _number(value: object) -> object:
    """A numeric string (papermill, the command line) as a float; anything else as it is."""
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    return value


def check_int(name: str, value: object, minimum: int, meaning: str = "") -> int:
    """``value`` as an int of at least ``minimum`` (integral floats and numeric strings from papermill pass);
    errors name ``name``."""
    value = _number(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            (isinstance(value, (float, np.floating)) and not float(value).is_integer()):
        raise ValueError(f"{name} must be a whole number{meaning}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be at least {minimum}{meaning}, got {value!r}")
    return int(value)


def check_float(name: str, value: object, minimum: float | None = None, meaning: str = "",
                positive: bool = False, text: bool = True) -> float:
    """``value`` as a finite float, at least ``minimum`` (above it with ``positive``, then ``minimum`` defaults
    to 0); numeric strings pass unless ``text=False``. NaN and infinities are refused naming ``name``."""
    kind = "a positive number" if positive else "a finite number"
    number = _number(value) if text else value
    if isinstance(number, (bool, np.bool_)) or not isinstance(number, (int, float, np.integer, np.floating)) or \
            not math.isfinite(float(number)):
        raise ValueError(f"{name} must be {kind}{meaning}, got {value!r}")
    low = 0.0 if positive and minimum is None else minimum
    if low is not None and (float(number) <= low if positive else float(number) < low):
        bound = kind if positive and low == 0 else f"more than {low:g}" if positive else f"at least {low:g}"
        raise ValueError(f"{name} must be {bound}{meaning}, got {value!r}")
    return float(number)


def check_bool(name: str, value: object) -> bool:
    """``value`` as a bool: True/False, or papermill's strings "true"/"false" (any case) and "1"/"0"; anything
    else is an error naming ``name``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    raise ValueError(f"{name} must be True or False (papermill: -p {name} true / false), got {value!r}")


def check_optional_bool(name: str, value: object) -> bool | None:
    """:func:`check_bool`, with None (and papermill's "none" / "null" / "") meaning "decide for me"."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
        return None
    return check_bool(name, value)

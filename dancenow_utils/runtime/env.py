"""Process-environment settings that make CPU training faster, in one place for the Makefile, the notebook runner
and the documentation (docs/speed.md).

:data:`GLIBC_TUNABLES` raises glibc malloc's mmap threshold and trim threshold to 4 GiB. PyTorch allocates and
frees activation buffers of many megabytes every training step; with glibc's defaults each one is a fresh
``mmap``/``munmap`` (page faults and zero-filling on every step: a third of the step's wall time was system time
on the 2-core development machines), whereas with the thresholds raised they are reused from the heap. Measured:
the ``seed`` step at 256x256 went from 2.37-2.78 s to 1.90 s (issue 13); repeated 64 MB allocations fault 100x
fewer pages. The price is that freed memory stays with the process (up to its peak use) instead of going back
to the system, which training processes keep needing anyway.

glibc reads ``GLIBC_TUNABLES`` once, when a process starts: setting it inside a running Python changes nothing
for that process, only for the processes it starts afterwards (notebook kernels). The Makefile sets it on every
command it runs; :func:`apply_allocator_env` sets it for kernels started by :mod:`dancenow_utils.notebook.runner`;
``eval "$(python -m dancenow_utils.runtime.env)"`` exports it in a shell.
On systems without glibc (macOS, Windows, musl) the variable is simply ignored.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# Keep in step with MALLOC_TUNABLES in the Makefile (tests/test_runtime_env.py checks that they match).
GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"


def apply_allocator_env(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set ``GLIBC_TUNABLES`` in ``environ`` (default ``os.environ``) for child processes, unless the user already
    set it (their value wins). Returns whether it was set here."""
    env = os.environ if environ is None else environ
    if "GLIBC_TUNABLES" in env:
        return False
    env["GLIBC_TUNABLES"] = GLIBC_TUNABLES
    return True


__all__ = ["GLIBC_TUNABLES", "apply_allocator_env"]

if __name__ == "__main__":  # eval "$(python -m dancenow_utils.runtime.env)" sets it in a shell
    print(f"export GLIBC_TUNABLES={GLIBC_TUNABLES}")

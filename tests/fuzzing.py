"""Shared pieces of the fuzzers of foreign bytes (issue 20): byte mutations and a memory budget.

The budget is watched two ways, because neither sees everything: tracemalloc sees Python and NumPy
allocations, and Linux's peak resident set size (``VmHWM``, reset before each read through
``/proc/self/clear_refs``) sees what h5py, torch and zlib allocate in C as well."""

from __future__ import annotations

import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

from hypothesis import strategies as st

from rnnspec.lang.errors import RnnspecError

PEAK = 256 * 1024**2
"""No mutation of these files (a few KB) may make a reader allocate more than this."""


def mutations(size: int):
    """A list of (position, byte) overwrites, plus an optional truncation."""
    edit = st.tuples(st.integers(0, size - 1), st.integers(0, 255))
    return st.tuples(st.lists(edit, min_size=1, max_size=8), st.one_of(st.none(), st.integers(0, size)))


def mutate(data: bytes, mutation) -> bytes:
    edits, cut = mutation
    out = bytearray(data)
    for at, value in edits:
        out[at] = value
    return bytes(out[:cut] if cut is not None else out)


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS; False where the OS does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


def read_within_budget(read: Callable[[Path], object], path: Path) -> None:
    """``read(path)`` returns or raises an RnnspecError naming the file, warns nothing, and allocates less than
    PEAK."""
    watch_rss = _reset_peak_rss()
    before = _status_kb("VmRSS") if watch_rss else None
    tracemalloc.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            read(path)
    except RnnspecError as exc:
        assert str(path) in str(exc) or path.name in str(exc), str(exc)[:300]
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    loud = [f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, DeprecationWarning)]
    assert not loud, f"a warning reaches the user's terminal: {loud[0][:300]}"
    assert peak < PEAK, f"tracemalloc peak {peak:,} bytes"
    if before is not None:
        grown = ((_status_kb("VmHWM") or 0) - before) * 1024
        assert grown < PEAK, f"the resident set grew by {grown:,} bytes while reading"

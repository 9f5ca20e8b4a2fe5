"""One budget per foreign file, and one place where a parser's exception becomes a located error.

Every reader of bytes rnnspec did not write (``.keras`` zips, ``.h5``, state dicts, safetensors,
``.npz``) keeps a :class:`ReadBudget` for the file it reads:

- **bytes**: every array or member is *charged* before it is allocated, against a limit taken from
  the memory the machine has available (half of it) and a hard cap; the total, not each piece, is
  what is checked, so a dataset referenced 16 times costs 16 times, or, through :meth:`ReadBudget.once`,
  is charged and read only once;
- **counts**: members, datasets, links and nested levels are counted against limits, so a file
  with 20,000 layers or a link cycle ends in a refusal, never in a hang or a RecursionError.

:func:`foreign_bytes` turns whatever a parser raises (zipfile, zlib, h5py, json, struct, pickle,
OverflowError, RecursionError, MemoryError...) into a :class:`ForeignFileError` naming the file.
:func:`cap_lines` is the one way a refusal lists its items: the first 20, then "and N more".
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rnnspec.lang.errors import RnnspecError
from rnnspec.util import available_memory, cap_lines, human_bytes

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "ZIP_ERRORS", "ForeignFileError", "ReadBudget", "cap_lines", "foreign_bytes"]

MAX_TOTAL_BYTES = 16 * 1024**3
"""The most bytes one foreign file may make rnnspec allocate, whatever the machine has."""
MAX_ITEMS = 1_000_000
"""The most members, datasets or links one file may make rnnspec visit."""
MAX_DEPTH = 10_000
"""The deepest nesting of groups or containers followed in one file (real files nest under 20)."""


class ForeignFileError(RnnspecError):
    """A file rnnspec did not write could not be read within its budget, or its parser failed."""


def _limit() -> int:
    free = available_memory()
    return MAX_TOTAL_BYTES if free is None else min(MAX_TOTAL_BYTES, free // 2)


class ReadBudget:
    """What reading one file may cost: bytes allocated, items visited, nesting depth."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int | None = None,
        max_items: int = MAX_ITEMS,
        error: type[RnnspecError] = ForeignFileError,
    ):
        self.path = path
        self._error = error
        self.max_bytes = _limit() if max_bytes is None else max_bytes
        self.max_items = max_items
        self.bytes = 0
        self.items = 0
        self._seen: set[Hashable] = set()
        self.cache: dict[Hashable, Any] = {}
        """What was read once, by key (a dataset's object id), to hand out again instead of reading it again."""

    def error(self, message: str) -> RnnspecError:
        return self._error(f"{self.path}: {message}")

    def charge(self, nbytes: float, what: str) -> None:
        """Count ``nbytes`` about to be allocated for ``what``; refuse when the file's total passes the limit."""
        if nbytes != nbytes or nbytes < 0:  # NaN or negative: a corrupt header
            raise self.error(f"{what} declares an impossible size ({nbytes})")
        if self.bytes + nbytes > self.max_bytes:
            raise self.error(
                f"{what} needs {human_bytes(nbytes)}, taking the file to {human_bytes(self.bytes + nbytes)}, over "
                f"the {human_bytes(self.max_bytes)} one file may use here (half the available memory, at most "
                f"{human_bytes(MAX_TOTAL_BYTES)}); refused before allocating. fix: check that this is the right file"
            )
        self.bytes += int(nbytes)

    def count(self, what: str, n: int = 1) -> None:
        """Count ``n`` more members/datasets/links visited; refuse past ``max_items``."""
        self.items += n
        if self.items > self.max_items:
            raise self.error(f"more than {self.max_items:,} {what}; refused")

    def once(self, key: Hashable) -> bool:
        """True the first time ``key`` (a member, a dataset's object id) is seen in this file, False after."""
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def depth(self, level: int, what: str, limit: int = MAX_DEPTH) -> None:
        if level > limit:
            raise self.error(f"{what} nests deeper than {limit:,} levels (a cycle?); refused")


def _zip_errors() -> tuple[type[BaseException], ...]:
    import zipfile
    import zlib

    return (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError)


ZIP_ERRORS = _zip_errors()
"""What :mod:`zipfile` raises for a damaged, encrypted or unsupported member (bad CRC, corrupt deflate stream,
deflate64, a password needed, a truncated file): a reader that catches less lets a traceback through."""


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    name = type(exc).__name__
    return text or name


@contextmanager
def foreign_bytes(
    path: str | Path,
    what: str,
    fix: str = "fix: check that the file is complete and not damaged",
    error: type[RnnspecError] = ForeignFileError,
) -> Iterator[None]:
    """Run a parser on ``path``; any exception it raises becomes one located :class:`ForeignFileError`.

    An :class:`RnnspecError` raised inside (a check of rnnspec's own) passes through unchanged.
    """
    try:
        yield
    except RnnspecError:
        raise
    except Exception as exc:  # zipfile, zlib, h5py, json, struct, pickle, torch: whatever the parser raises
        if isinstance(exc, MemoryError):
            detail = "it asks for more memory than the machine has"
        elif isinstance(exc, RecursionError):
            detail = "it nests too deeply (a cycle?)"
        else:
            detail = _describe(exc)
        raise error(f"{path}: not a readable {what} ({detail}); {fix}") from None

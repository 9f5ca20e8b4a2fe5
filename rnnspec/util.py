"""Small helpers shared by the core."""

from __future__ import annotations

import errno
import io
import numbers
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OutputPathError", "available_memory", "check_output_path", "is_int_at_least", "quiet_stderr",
           "write_bytes_atomic", "write_text_atomic"]  # fmt: skip


class OutputPathError(OSError):
    """An output path rnnspec will not write: not a regular file, or not writable. Names the user's path."""


_SPECIAL = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def check_output_path(path: str | Path) -> Path:
    """The file to write for ``path``: ``path`` itself, or the file a symlink at ``path`` points to.

    rnnspec writes regular files only. An existing device node, FIFO, socket or folder at the path
    is refused (writing would replace it, or hang on a FIFO). A symlink is followed: the file it
    points to is replaced and the link stays (the way an editor saves through a link); a link to
    something other than a regular file is refused like that thing.
    """
    if str(path) == "":
        raise OutputPathError(errno.EINVAL, "an empty output path; name a file", "")
    target = Path(path)
    real = Path(os.path.realpath(target)) if target.is_symlink() else target
    try:
        mode = real.stat().st_mode
    except FileNotFoundError:
        return real
    except OSError as exc:
        raise OutputPathError(exc.errno or errno.EIO, exc.strerror or str(exc), str(path)) from None
    if stat.S_ISDIR(mode):
        raise OutputPathError(errno.EISDIR, "is a folder; name a file inside it", str(path))
    if not stat.S_ISREG(mode):
        kind = _SPECIAL.get(stat.S_IFMT(mode), "not a regular file")
        raise OutputPathError(errno.EINVAL, f"is {kind}; rnnspec writes regular files only", str(path))
    return real


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that an interruption leaves either the old file or the new one.

    Only regular files are written (see :func:`check_output_path`); an error names ``path``,
    never the hidden temporary file.
    """
    target = check_output_path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_via_temp(target, data)
    except OutputPathError:
        raise
    except OSError as exc:
        raise OutputPathError(exc.errno or errno.EIO, exc.strerror or str(exc), str(path)) from None


def _write_via_temp(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates the file 0600; give it the permissions a plain open() would (0666 less the umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence what native libraries write to file descriptor 2 (TensorFlow's import-time log lines).

    What was written is replayed if the block raises, so a real failure is never hidden.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def is_int_at_least(value: object, least: int) -> bool:
    """Whether ``value`` is an integer (Python or NumPy, not a bool) of at least ``least``.

    The one check behind every "a non-negative integer" / "an integer >= N" argument of the core.
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def available_memory() -> int | None:
    """Bytes of memory the machine can still give (Linux ``MemAvailable``); None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def human_bytes(n: float) -> str:
    """``1.5 GiB``-style size."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"


THREADS_ENV = "RNNSPEC_THREADS"


def parse_threads(value: object, where: str) -> int | None:
    """A thread count (``--threads`` or ``RNNSPEC_THREADS``): a positive integer, ``auto`` / empty (None)."""
    text = str(value).strip().lower()
    if text in ("", "auto"):
        return None
    if not text.isdigit() or int(text) < 1 or int(text) > 4096:
        raise ValueError(f"{where} must be a positive integer (at most 4096) or auto, not {value!r}")
    return int(text)


def choose_threads(requested: int | None = None) -> int:
    """Compute threads for one training or prediction process.

    ``requested`` (``--threads``), else ``RNNSPEC_THREADS``, else the CPUs this process may run on
    (its affinity, not the machine's count) less the ones other processes keep busy right now (sampled
    from ``/proc/stat`` over 0.1 s): on a shared machine, more threads than free cores make every
    synchronised kernel wait for a preempted thread, which costs far more than the parallelism gains.
    One of N processes torchrun started on this machine (``LOCAL_WORLD_SIZE``) takes its share, CPUs / N.
    """
    if requested is not None:
        return requested
    env = parse_threads(os.environ.get(THREADS_ENV, ""), THREADS_ENV)
    if env is not None:
        return env
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    local = os.environ.get("LOCAL_WORLD_SIZE", "")  # torchrun's processes on this machine share its CPUs
    if local.isdigit() and int(local) > 1:
        return max(1, cpus // int(local))
    return max(1, cpus - busy_cpus())


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from ``/proc/stat``; None where it cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cpus(interval: float = 0.1) -> int:
    """How many CPUs other processes keep busy now (this one waits while it samples), rounded."""
    import time

    first = _cpu_times()
    if first is None:
        return 0
    time.sleep(interval)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return 0
    share = (second[0] - first[0]) / (second[1] - first[1])
    return int(share * (os.cpu_count() or 1) + 0.5)

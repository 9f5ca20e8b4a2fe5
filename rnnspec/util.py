"""Small helpers shared by the core."""

from __future__ import annotations

import errno
import io
import json
import numbers
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["ExclusiveLock", "LockHeldError", "OutputPathError", "StagedOutputs", "available_memory", "cap_lines",
           "check_output_path", "is_int_at_least", "printable", "quiet_stderr", "staged_outputs", "write_bytes_atomic",
           "write_text_atomic"]  # fmt: skip


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
    """``text`` as UTF-8; bytes of a non-UTF-8 file name inside it are written as ``\\xff``-style escapes (every
    other character as it is: a file's contents are not a terminal message, see :func:`printable`)."""
    write_bytes_atomic(path, _utf8_safe(text).encode("utf-8"))


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


LAUNCHER_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""What torchrun (and ``--nproc``) sets beside ``WORLD_SIZE`` for each process it starts."""


def launched_world_size() -> int:
    """How many processes a launcher (torchrun, ``--nproc``) started this one among: ``WORLD_SIZE`` when it is a
    number above 1 and the launcher's other variables (:data:`LAUNCHER_VARIABLES`) are set too; else 1. A stray
    ``WORLD_SIZE`` left in the environment, without a launcher, does not make a process group."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    except ValueError:
        return 1
    if size <= 1 or any(not os.environ.get(name) for name in LAUNCHER_VARIABLES):
        return 1
    return size


LIST_CAP = 20
"""A refusal or error lists this many items, then says how many more there are."""


def cap_lines(lines: list[str], limit: int = LIST_CAP, indent: str = "  ") -> list[str]:
    """``lines`` as a refusal lists them: the first ``limit``, then ``... and N more`` (a 20,000-layer file
    gives a short refusal). The one helper behind every list of refusals, mismatches and spec errors."""
    if len(lines) <= limit:
        return list(lines)
    return [*lines[:limit], f"{indent}... and {len(lines) - limit:,} more"]


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


def printable(text: object) -> str:
    """``text`` (or a path) as a message any terminal can print, and print as it is: bytes of a non-UTF-8 file name
    (which Python keeps as lone surrogates) become ``\\xff``-style escapes instead of a UnicodeEncodeError, and
    control characters other than line breaks and tabs (ESC, BEL, a carriage return, DEL, C1 codes) become
    ``\\x1b``-style escapes, so a file name cannot retitle the terminal, clear it, or hide part of a message."""
    return _utf8_safe(text).translate(_CONTROLS)


def _utf8_safe(text: object) -> str:
    """``text`` (or a path, or bytes) as a str that encodes to UTF-8: lone surrogates as ``\\xff``-style escapes."""
    value = os.fspath(text) if isinstance(text, os.PathLike) else text
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    value = str(value)
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\n\t"}
"""What :func:`printable` escapes: C0 controls but line feed and tab, DEL, C1 controls."""


def _identity(path: str | Path) -> tuple[str, tuple[int, int] | None]:
    """A path's real location and, where it exists, its (device, inode): the same file under any name."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return real, None
    return real, (st.st_dev, st.st_ino)


_STAGE_PREFIX = ".rnnspec-staging-"
_JOURNAL = ".commit-journal"
"""In a staging folder while its files are renamed into place (see :meth:`StagedOutputs._write_journals`)."""


class StagedOutputs:
    """Every file one command writes, written as one unit (see :func:`staged_outputs`, the way to use it).

    :meth:`stage` gives, for a target, the path to write instead: a file of the same name in a hidden staging folder
    beside the target (``.rnnspec-staging-PID-XXXX``). Whatever is written into a staging folder (the files named and
    their companions, such as ``model.safetensors`` beside ``model.py``) is renamed into the target's folder by
    :meth:`commit`, after every target has been checked: a regular file or nothing (never a FIFO, device or folder),
    and none of them one of the command's ``inputs`` (the same path, or the same file under another name: a symlink
    or a hard link).
    """

    def __init__(self, inputs: Iterable[str | Path | None] = ()):
        self._inputs = [(Path(p), _identity(p)) for p in inputs if p is not None and str(p) != ""]
        self._folders: dict[str, tuple[Path, Path]] = {}
        """real target folder -> (staging folder in it, the folder as the user named it)"""
        self._created: list[Path] = []
        """folders :meth:`stage` created (removed again, if empty, when nothing is committed)"""
        self._committed = False

    def check_target(self, target: str | Path) -> Path:
        """The file to write for ``target`` (:func:`check_output_path`), after refusing one of the inputs."""
        real = check_output_path(target)
        where, ident = _identity(real)
        for given, (path, key) in self._inputs:
            if where == path or (ident is not None and ident == key):
                raise OutputPathError(
                    errno.EEXIST,
                    f"is also an input of this command ({printable(given)}); writing it would destroy that input, "
                    "so nothing was written. fix: choose another output name",
                    str(target),
                )
        return real

    def stage(self, target: str | Path) -> Path:
        """Where to write ``target`` now: a path of the same name in the staging folder beside it."""
        real = self.check_target(target)
        return self._staging(real.parent, Path(target).parent) / real.name

    def stage_folder(self, directory: str | Path) -> Path:
        """The staging folder for files a writer puts into ``directory`` (created if missing) under names of its
        own choosing; each is checked like a named target at :meth:`commit`."""
        directory = Path(directory)
        if str(directory) == "":
            raise OutputPathError(errno.EINVAL, "an empty output folder; name a folder", "")
        if directory.exists() and not directory.is_dir():
            raise OutputPathError(errno.ENOTDIR, "is a file, not a folder; name a folder", str(directory))
        return self._staging(Path(os.path.realpath(directory)), directory)

    def _staging(self, folder: Path, shown: Path) -> Path:
        key = os.fspath(folder)
        if key not in self._folders:
            created = not folder.exists()
            try:
                folder.mkdir(parents=True, exist_ok=True)
                _tidy_staging(folder)
                staging = Path(tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{os.getpid()}-", dir=folder))
            except OSError as exc:
                raise OutputPathError(exc.errno or errno.EIO, exc.strerror or str(exc), str(shown)) from None
            self._folders[key] = (staging, shown)
            if created:
                self._created.append(folder)
        return self._folders[key][0]

    def final(self, staged: str | Path) -> Path:
        """The path, as the user named its folder, that a file written at ``staged`` has once committed."""
        staged = Path(staged)
        for staging, shown in self._folders.values():
            if staged.parent == staging:
                return shown / staged.name
        return staged

    def commit(self) -> None:
        """Check every file staged, then rename them all into place; if one rename fails, the ones before it are
        put back as they were (the files they replaced return), so the command leaves all its files or none."""
        moves: list[tuple[Path, Path, Path]] = []  # (staged, real target, user's name)
        for key, (staging, shown) in self._folders.items():
            for item in sorted(staging.iterdir()):
                if not item.is_file() or item.is_symlink():
                    continue
                user = shown / item.name
                moves.append((item, self.check_target(Path(key) / item.name), user))
        journals = self._write_journals(moves)
        done: list[tuple[Path, Path | None, bool]] = []
        try:
            for staged, target, _user in moves:
                existed, backup = target.exists(), None
                if existed:
                    try:  # the file it replaces, kept (a second name) until every rename is done
                        backup = staged.with_name(f"{staged.name}.previous")
                        os.link(target, backup)
                    except OSError:
                        backup = None
                os.replace(staged, target)
                done.append((target, backup, existed))
        except BaseException:
            for target, backup, existed in reversed(done):
                if backup is not None:
                    os.replace(backup, target)
                elif not existed:
                    target.unlink(missing_ok=True)
            raise
        for journal in journals:  # every rename done: nothing for a later write to undo
            journal.unlink(missing_ok=True)
        self._committed = True

    def _write_journals(self, moves: list[tuple[Path, Path, Path]]) -> list[Path]:
        """Before the first rename, each staging folder gets the list of every move of this commit (staged file,
        target, the staged file's inode, whether the target existed): if the process is killed between two renames,
        the next write into any of these folders puts back the files already replaced (:func:`_tidy_staging`)."""
        entries = []
        for staged, target, _user in moves:
            info = staged.stat()
            entries.append(
                {
                    "staged": os.fsencode(staged).hex(),
                    "target": os.fsencode(target).hex(),
                    "inode": [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns],
                    "existed": target.exists(),
                }
            )
        text = json.dumps(entries)
        journals = []
        for staging, _shown in self._folders.values():
            journal = staging / _JOURNAL
            journal.write_text(text)
            journals.append(journal)
        return journals

    def cleanup(self) -> None:
        """Remove the staging folders and whatever is left in them (everything, when the command failed)."""
        for staging, _shown in self._folders.values():
            shutil.rmtree(staging, ignore_errors=True)
        self._folders.clear()
        if not self._committed:
            for folder in reversed(self._created):
                with suppress(OSError):
                    folder.rmdir()
        self._created.clear()


def _tidy_staging(folder: Path) -> None:
    """Remove staging folders that processes which no longer run (killed mid-write) left in ``folder``."""
    try:
        entries = [p for p in folder.iterdir() if p.name.startswith(_STAGE_PREFIX)]
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(_STAGE_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            _roll_back(entry / _JOURNAL)
            shutil.rmtree(entry, ignore_errors=True)


def _roll_back(journal: Path) -> None:
    """Undo the renames of a commit killed half-way (its journal still there): each target that holds the file
    renamed into it (same inode) gets back the file it replaced (``NAME.previous``), or is removed where there was
    none; files not renamed yet are left. The folder is then as before the killed command: old files, never a mix."""
    try:
        entries = json.loads(journal.read_text())
    except (OSError, ValueError):
        return  # no journal: the process died before committing (or after its last rename)
    entries = entries if isinstance(entries, list) else []
    for entry in entries:  # every folder's copy of this journal goes first: the commit is undone once, here
        with suppress(OSError, ValueError, KeyError, TypeError):
            (Path(os.fsdecode(bytes.fromhex(entry["staged"]))).parent / _JOURNAL).unlink(missing_ok=True)
    for entry in reversed(entries):
        try:
            staged = Path(os.fsdecode(bytes.fromhex(entry["staged"])))
            target = Path(os.fsdecode(bytes.fromhex(entry["target"])))
            dev, ino, size, mtime = entry["inode"]
            if staged.exists():
                continue  # never renamed
            info = target.stat()
            if (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns) != (dev, ino, size, mtime):
                continue  # the target holds something else now (an inode can be reused): not ours to undo
            backup = staged.with_name(f"{staged.name}.previous")
            if backup.exists():
                os.replace(backup, target)
            elif not entry["existed"]:
                target.unlink()
        except (OSError, ValueError, KeyError, TypeError):
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextmanager
def staged_outputs(inputs: Iterable[str | Path | None] = ()) -> Iterator[StagedOutputs]:
    """The one way a command writes its files: all of them, or none.

    >>> with staged_outputs(inputs=[spec_path, weights_path]) as out:  # doctest: +SKIP
    ...     write_bytes_atomic(out.stage("model.onnx"), data)

    A target that is one of ``inputs`` (same path, symlink or hard link), a folder, a FIFO or a device is refused
    before anything is renamed; on any exception (KeyboardInterrupt included) nothing is renamed and the staged
    files are removed. Any name the OS allows works, non-UTF-8 bytes included.
    """
    staged = StagedOutputs(inputs)
    try:
        yield staged
        staged.commit()
    finally:
        staged.cleanup()


class LockHeldError(OSError):
    """Another process holds the lock; ``pid`` names it (None where it could not be read)."""

    def __init__(self, path: str, pid: int | None):
        super().__init__(errno.EBUSY, f"locked by process {pid if pid is not None else '(unknown)'}", path)
        self.pid = pid


class ExclusiveLock:
    """An exclusive ``fcntl.flock`` on ``path`` holding this process's pid: :meth:`release` (or the process's end,
    even by ``kill -9``) frees it, so a lock file left by a dead process never blocks."""

    def __init__(self, path: str | Path):
        import fcntl

        self.path = Path(path)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise LockHeldError(str(self.path), pid) from None
            except BaseException:
                os.close(fd)
                raise
            try:  # the holder before us may have removed the file as it released: lock the file at the path
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        Path(self.path).unlink(missing_ok=True)  # while still held: a waiting process re-checks the inode
        os.close(self._fd)
        self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None

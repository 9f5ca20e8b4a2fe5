"""Data-parallel process groups for ``train`` and ``evaluate``: launching N processes, joining and leaving
the group a launcher (torchrun, ``--nproc``) started, through the backend's ``data_parallel``
capability (:class:`~rnnspec.core.backend.DataParallel`: ``launch``, ``init_distributed``, ``finish_distributed``)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from rnnspec.core.backend import DataParallel
from rnnspec.core.registry import backends_with
from rnnspec.lang.errors import RnnspecError
from rnnspec.runtime.backends import load_backend
from rnnspec.util import launched_world_size

__all__ = ["in_process_group", "join_process_group", "launch_processes", "leave_process_group"]


def in_process_group() -> bool:
    """Whether a launcher started this process as one of several (:func:`rnnspec.util.launched_world_size`)."""
    return launched_world_size() > 1


def join_process_group(impl: Any, device: str) -> int:
    """This process's rank when torchrun started several (``WORLD_SIZE`` > 1), else 0."""
    if not in_process_group():
        return 0
    if not isinstance(impl, DataParallel):
        raise RnnspecError(
            f"the {impl.name} backend trains in one process; data-parallel training (torchrun, --nproc) runs on "
            f"the {_parallel()} backend"
        )
    rank, _world = impl.init_distributed(device)
    _stop_once_on_signals()
    return int(rank)


def leave_process_group(impl: Any) -> None:
    """Every rank leaves the group together once its work is done (a no-op in one process)."""
    if isinstance(impl, DataParallel) and in_process_group():
        impl.finish_distributed()


def _stop_once_on_signals() -> None:
    """Under torchrun a Ctrl-C reaches each process as SIGINT and then SIGTERM: the first becomes the
    KeyboardInterrupt that keeps the last completed epoch, the next ones are ignored so rank 0 can write."""

    def stop(_signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def launch_processes(backend: str, nproc: int, args: list[str], check: Callable[[], None] | None = None) -> int:
    """``rnnspec train --nproc N``: the command ``args`` (the CLI's arguments less ``--nproc``) in N processes
    through the backend's launcher; the exit code. ``check`` reads the command's inputs (spec, data) once, here,
    before any process starts: a bad input is refused once, not once per process amid the launcher's log."""
    if check is not None:  # first: a spec typo is reported before a framework is imported
        check()
    impl = load_backend(backend)
    if not isinstance(impl, DataParallel):
        options = " or ".join(f"-b {name}" for name in backends_with("data_parallel"))
        raise RnnspecError(
            f"the {backend} backend trains in one process; --nproc runs on the {_parallel()} backend ({options})"
        )
    return int(impl.launch(nproc, args))


def _parallel() -> str:
    """The backends that train data-parallel, for messages (``torch``)."""
    return " or ".join(backends_with("data_parallel")) or "(none registered)"

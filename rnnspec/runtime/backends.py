"""Loading a backend for work: imported quietly, given its CPU threads, and asked what it can do.

Every command that runs a model loads its backend here, so the thread count (``--threads``,
``RNNSPEC_THREADS``, else the CPUs not busy elsewhere) is set in one place. The optional capabilities
a command needs before it starts (a trainer, a device check, a quiet training loop) are asked here too.

>>> impl = load_backend("torch", threads=2)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from rnnspec.core.backend import DeviceCheck, Threads, TrainableBackend, supports
from rnnspec.core.registry import backends_with, describe_backends
from rnnspec.lang.errors import RnnspecError

__all__ = ["check_device", "load_backend", "request_threads", "require_trainer", "thread_count", "trains_quietly"]

_requested: list[int | None] = [None]
"""The thread count asked for by this process's command line (``--threads``); None: the automatic choice."""
_chosen: dict[int | None, int] = {}
"""Thread counts already chosen in this process, by request (the automatic one is measured once: 0.1 s)."""


def request_threads(count: int | None) -> None:
    """Set the thread count that :func:`load_backend` gives every backend loaded after it (``--threads``);
    None: ``RNNSPEC_THREADS``, else the CPUs not busy with other work."""
    _requested[0] = count


def thread_count(requested: int | None = None) -> int:
    """The threads a backend gets: ``requested``, else ``RNNSPEC_THREADS``, else chosen from the free CPUs."""
    from rnnspec.util import choose_threads

    if requested not in _chosen:
        _chosen[requested] = choose_threads(requested)
    return _chosen[requested]


def load_backend(name: str, threads: int | None = None) -> Any:
    """The backend ``name``, imported with its framework's import-time log lines kept off the terminal, and
    given ``threads`` CPU threads (None: what :func:`request_threads` asked for, else the automatic count).

    A backend without ``set_threads`` keeps its framework's default.
    """
    from rnnspec.core.registry import get_backend
    from rnnspec.util import quiet_stderr

    with quiet_stderr():
        impl = get_backend(name)
        if isinstance(impl, Threads):
            impl.set_threads(thread_count(threads if threads is not None else _requested[0]))
    return impl


def require_trainer(impl: Any) -> None:
    """Refuse a backend without a trainer (it does not declare ``trains``), naming those that have one."""
    if not isinstance(impl, TrainableBackend):
        raise RnnspecError(
            f"the {impl.name} backend is forward-only (it has no trainer); "
            f"train with {describe_backends(backends_with('trains'))}"
        )


def check_device(impl: Any, device: str) -> None:
    """Refuse a device the backend cannot use (``--device cuda`` without CUDA), before any data is read;
    a backend without ``check_device`` takes any."""
    if isinstance(impl, DeviceCheck):
        impl.check_device(device)


def trains_quietly(impl: Any) -> bool:
    """Whether the backend's framework logs to fd 2 while it trains (TensorFlow), so that training runs with
    stderr kept off the terminal (the backend's ``quiet_training``)."""
    return supports(impl, "quiet_training")

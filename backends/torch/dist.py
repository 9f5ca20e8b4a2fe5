"""Process groups for data-parallel training on the torch backend: joining the group ``torchrun``
describes in the environment, the collectives the trainer needs, and ``rnnspec train --nproc N``,
which starts the processes through torchrun's own launcher API (``torch.distributed.launcher``).

gloo on CPU, nccl on CUDA. Every rank runs the same command; rank 0 alone prints and writes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta

import torch

from rnnspec.lang.errors import RnnspecError
from rnnspec.util import launched_world_size

__all__ = ["all_gather", "all_reduce_sum", "finish", "init_from_env", "launch", "world"]

TIMEOUT = timedelta(minutes=5)
"""How long a collective waits for the other processes (a rank that died is noticed by torchrun first)."""


def world() -> tuple[int, int]:
    """``(rank, world size)`` of the process group this process is in; ``(0, 1)`` outside one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def in_launched_group() -> bool:
    """Whether torchrun started this process as one of several (:func:`rnnspec.util.launched_world_size`)."""
    return launched_world_size() > 1


def init_from_env(device: str | None) -> tuple[int, int]:
    """Join the process group torchrun described (gloo, or nccl for ``--device cuda``); ``(rank, world)``."""
    import torch.distributed as dist

    if not in_launched_group():
        return 0, 1
    if not dist.is_initialized():
        use_cuda = device == "cuda" or (device in (None, "auto") and torch.cuda.is_available())
        if use_cuda:
            local, count = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
            if local >= count:
                raise RnnspecError(
                    f"process {local} has no GPU of its own ({count} CUDA device(s) on this machine); fix: at most "
                    f"{count} processes per machine on CUDA, or --device cpu"
                )
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=TIMEOUT)
    return world()


def finish() -> None:
    """Leave the process group together: a barrier, then its teardown (a process that exits while another
    still holds the connection can make gloo abort the other)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        with suppress(RuntimeError):  # a process of the group is gone: there is no one to wait for
            dist.barrier()
        dist.destroy_process_group()


class PeerLost(KeyboardInterrupt):
    """Another process of the group failed or left mid-run: this one stops as on Ctrl-C (the last completed
    epoch is kept; rank 0 writes it) instead of failing with the transport's traceback."""


@contextmanager
def stop_when_a_peer_fails() -> Iterator[None]:
    """Turn the error a collective raises when another process is gone (gloo: connection reset or closed;
    nccl: a communicator error) into :class:`PeerLost`; any other error passes unchanged."""
    import torch.distributed as dist

    try:
        yield
    except RuntimeError as exc:
        text = str(exc).lower()
        transport = isinstance(exc, getattr(dist, "DistError", ())) or any(
            mark in text for mark in ("gloo", "nccl", "connection reset", "connection closed", "broken pipe")
        )
        if not (transport and dist.is_available() and dist.is_initialized()):
            raise
        if threading.current_thread() is threading.main_thread():  # the launcher's SIGTERM must not cut the write
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise PeerLost(f"another process of the group stopped ({str(exc).splitlines()[0][:200]})") from None


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over every process of the group (itself outside one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather(tensor: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
    """Every process's ``tensor`` (of one shape on all), in rank order."""
    import torch.distributed as dist

    local = tensor.to(device)
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local)
    return parts


def launch(nproc: int, args: list[str]) -> int:
    """Run ``python -m rnnspec ARGS`` in ``nproc`` processes on this machine with torchrun's launcher
    (standalone rendezvous on a free local port); the exit code (1 when a process failed)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
    )
    try:
        elastic_launch(config, sys.executable)("-m", "rnnspec", *args)
    except SignalException:  # Ctrl-C reached every process; rank 0 kept the last completed epoch
        return 130
    except ChildFailedError as exc:
        failures = exc.failures
        first = min(failures.values(), key=lambda f: f.timestamp) if failures else None
        code = first.exitcode if first is not None else 1
        if code == 130 or code == -2:
            return 130
        raise RnnspecError(
            f"process {first.local_rank if first else '?'} of {nproc} failed (exit {code}); its message is above, "
            "and the other processes were stopped. A training run keeps its last completed epoch: process 0 "
            "writes the run when one completed, and the checkpoint stays for the same command with --resume"
        ) from None
    return 0

"""Data-parallel throughput on the torch backend: one epoch of `specs/imdb_lstm.yaml` (IMDB-shaped data)
in 1, 2, ... processes (gloo), the CPU's cores shared among them.

    python benchmarks/distributed.py [--samples 1024] [--max-procs 2]

Each run starts N processes (torch.multiprocessing), each with cores / N threads, trains a fresh
model two epochs with the global batch 128 and reports the second epoch (rank 0's clock). Prints
seconds per epoch, real tokens per second, the speed-up over one process and the scaling efficiency
(speed-up / N).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _worker(rank: int, world: int, port: int, samples: int, out: str) -> None:
    import torch
    import torch.distributed as dist
    from fit_overhead import SPEC, imdb_like

    import rnnspec

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    spec = rnnspec.load_spec(SPEC)
    x, y = imdb_like(samples)
    model = rnnspec.build(spec, "torch", seed=0)
    marks: list[float] = []
    rnnspec.fit(model, x, y, epochs=2, batch_size=128, seed=0, validation_split=0.0,
                on_epoch_end=lambda _e, _l: marks.append(time.perf_counter()))  # fmt: skip
    if rank == 0:
        Path(out).write_text(str(marks[1] - marks[0]))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--max-procs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()

    import torch.multiprocessing as mp
    from fit_overhead import imdb_like

    tokens = int((imdb_like(args.samples)[0] != 0).sum())
    seconds: dict[int, float] = {}
    for world in range(1, args.max_procs + 1):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        out = Path(tempfile.mkdtemp()) / "epoch.txt"
        mp.spawn(_worker, args=(world, port, args.samples, str(out)), nprocs=world)
        seconds[world] = float(out.read_text())
    print(f"{args.samples} samples, {tokens:,} real tokens, global batch 128, {os.cpu_count()} CPUs")
    for world, s in seconds.items():
        speedup = seconds[1] / s
        print(
            f"{world} process(es): {s:.2f} s/epoch, {tokens / s:,.0f} real tokens/s, "
            f"speed-up {speedup:.2f}, efficiency {speedup / world:.2f}"
        )


if __name__ == "__main__":
    main()

"""A torch training epoch with a busy neighbour: the automatic thread count against PyTorch's default.

    python benchmarks/contention.py [--samples 256] [--neighbours 1]

Trains `specs/imdb_lstm.yaml` for one epoch (`rnnspec.fit`, IMDB-shaped pre-padded ids) three ways,
each idle and then with `--neighbours` processes spinning on the CPU:

- default: PyTorch's own thread count (one per core);
- auto: rnnspec's choice (`rnnspec.util.choose_threads`: the CPUs not busy with other work,
  measured when the backend loads), what `rnnspec train` uses unless told otherwise;
- 1: one thread.

Prints seconds per epoch and the ratio busy / idle for each (goal for auto: <= 2).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path


def _spin() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--neighbours", type=int, default=1)
    args = parser.parse_args()

    import torch

    import rnnspec

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fit_overhead import SPEC, imdb_like

    from rnnspec.util import choose_threads

    spec = rnnspec.load_spec(SPEC)
    spec = rnnspec.spec_from_dict({**spec.to_dict(), "training": {**spec.to_dict()["training"], "validation_split": 0}})
    x, y = imdb_like(args.samples)
    weights = rnnspec.initial_weights(spec, 0)
    default = torch.get_num_threads()

    def epoch(threads: int) -> float:
        torch.set_num_threads(threads)
        model = rnnspec.build(spec, "torch", weights=weights)
        start = time.perf_counter()
        rnnspec.fit(model, x, y, epochs=1, batch_size=128, shuffle=False, seed=0)
        return time.perf_counter() - start

    epoch(default)  # warm-up
    idle = {"default": epoch(default), "auto": epoch(choose_threads()), "1": epoch(1)}
    spinners = [mp.Process(target=_spin, daemon=True) for _ in range(args.neighbours)]
    for p in spinners:
        p.start()
    time.sleep(1.0)
    try:
        auto = choose_threads()
        busy = {"default": epoch(default), "auto": epoch(auto), "1": epoch(1)}
    finally:
        for p in spinners:
            p.terminate()
    tokens = int((x != 0).sum())
    print(f"{args.samples} samples, {tokens:,} real tokens; default {default} threads, auto chose {auto} when busy")
    for name in ("default", "auto", "1"):
        print(
            f"{name:>7}: idle {idle[name]:.2f} s ({tokens / idle[name]:,.0f} tok/s), busy {busy[name]:.2f} s "
            f"({tokens / busy[name]:,.0f} tok/s), busy / idle {busy[name] / idle[name]:.2f}"
        )


if __name__ == "__main__":
    main()

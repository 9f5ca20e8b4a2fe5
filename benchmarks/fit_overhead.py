"""What `rnnspec.fit` adds to the raw training step, on the torch backend.

    python benchmarks/fit_overhead.py [--samples 1024] [--batch 128] [--rounds 3] [--profile]

Both sides train `specs/imdb_lstm.yaml` (RMSprop, binary cross-entropy) on the same IMDB-shaped
batches (T = 500, pre-padded, mean real length ~200) from the same starting weights, in one process,
alternating rounds:

- fit: `rnnspec.fit(model, x, y, epochs=1, shuffle=False)` — Keras's semantics (per-occurrence
  embedding second moment, Keras's RMSprop, metrics, history);
- raw: the same rnnspec module, `torch.optim.RMSprop`, `loss.backward()`, nothing else.

Prints seconds per epoch, ms per step, tokens per second and the ratio fit / raw (goal <= 1.10).
`--profile` prints the top of a torch.profiler table of one fit epoch.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "specs" / "imdb_lstm.yaml"


def imdb_like(n: int, seq_len: int = 500, vocab: int = 10000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pre-padded ids with lengths 50..350 (mean ~200, 40% of T), labels 0/1."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, seq_len), dtype=np.int64)
    for row, length in enumerate(rng.integers(50, 351, size=n)):
        x[row, seq_len - length :] = rng.integers(1, vocab, size=length)
    return x, rng.integers(0, 2, size=n).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    import torch
    from torch import nn

    import rnnspec

    spec = rnnspec.load_spec(SPEC)
    spec = rnnspec.spec_from_dict(
        {**spec.to_dict(), "training": {**spec.to_dict()["training"], "validation_split": 0.0, "metrics": ["accuracy"]}}
    )
    x, y = imdb_like(args.samples)
    weights = rnnspec.initial_weights(spec, 0)
    tokens = int((x != 0).sum())

    def fit_epoch() -> float:
        model = rnnspec.build(spec, "torch", weights=weights)
        start = time.perf_counter()
        rnnspec.fit(model, x, y, epochs=1, batch_size=args.batch, shuffle=False, seed=0)
        return time.perf_counter() - start

    def raw_epoch() -> float:
        model = rnnspec.build(spec, "torch", weights=weights)
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
        loss_fn = nn.BCEWithLogitsLoss()
        xt, yt = torch.as_tensor(x), torch.as_tensor(y).unsqueeze(-1)
        model.train()
        previous = torch.set_flush_denormal(True)
        start = time.perf_counter()
        for begin in range(0, len(x), args.batch):
            opt.zero_grad()
            loss = loss_fn(model(xt[begin : begin + args.batch], logits=True), yt[begin : begin + args.batch])
            loss.backward()
            opt.step()
        elapsed = time.perf_counter() - start
        torch.set_flush_denormal(previous)
        return elapsed

    fit_epoch(), raw_epoch()  # warm-up
    t_fit = t_raw = 0.0
    for _ in range(args.rounds):
        t_fit += fit_epoch()
        t_raw += raw_epoch()
    t_fit, t_raw = t_fit / args.rounds, t_raw / args.rounds
    steps = -(-len(x) // args.batch)
    for name, t in (("fit", t_fit), ("raw", t_raw)):
        print(f"{name}: {t:.3f} s/epoch, {t / steps * 1000:.1f} ms/step, {tokens / t:,.0f} real tokens/s")
    print(
        f"ratio fit / raw: {t_fit / t_raw:.3f} "
        f"({len(x)} samples, batch {args.batch}, {torch.get_num_threads()} threads)"
    )

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        model = rnnspec.build(spec, "torch", weights=weights)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            rnnspec.fit(model, x, y, epochs=1, batch_size=args.batch, shuffle=False, seed=0)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()

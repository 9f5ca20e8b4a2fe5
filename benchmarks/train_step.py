"""Training-step time of `specs/imdb_lstm.yaml` built by rnnspec against the same model written by hand.

    python benchmarks/train_step.py [--backend torch|keras|both] [--steps 200] [--batch 128]

Both models get the same batches (random IMDB-shaped token ids, batch 128, 500 steps) and run
the same number of optimizer steps (RMSprop, binary cross-entropy from logits) on the CPU, in one
process, alternating in rounds so that machine noise hits both alike. Prints seconds per step and
the ratio rnnspec / hand-written (the target is <= 1.10).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "specs" / "imdb_lstm.yaml"


def _batches(n: int, batch: int, seq_len: int, vocab: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs = rng.integers(1, vocab, size=(n, batch, seq_len))
    ys = rng.integers(0, 2, size=(n, batch, 1)).astype(np.float32)
    return xs, ys


def bench_torch(steps: int, batch: int, rounds: int, flush_denormal: bool = False) -> tuple[float, float]:
    import torch
    from torch import nn

    import rnnspec

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    spec = rnnspec.load_spec(SPEC)
    ours = rnnspec.build(spec, "torch", seed=0)

    class Hand(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(10000, 32)
            self.lstm = nn.LSTM(32, 32, batch_first=True)
            self.dense = nn.Linear(32, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.lstm(self.embedding(x))
            return self.dense(out[:, -1])

    hand = Hand()
    # Same starting weights on both sides (Keras's initialisation, from rnnspec's seed): the values
    # matter on a CPU, where tiny gradients through 500 steps become denormal floats and slow both.
    w = rnnspec.get_weights(ours)
    with torch.no_grad():
        hand.embedding.weight.copy_(torch.as_tensor(w["embedding/embeddings"]))
        hand.lstm.weight_ih_l0.copy_(torch.as_tensor(w["recurrent_0/kernel"]).t())
        hand.lstm.weight_hh_l0.copy_(torch.as_tensor(w["recurrent_0/recurrent_kernel"]).t())
        hand.lstm.bias_ih_l0.copy_(torch.as_tensor(w["recurrent_0/bias"]))
        hand.lstm.bias_hh_l0.zero_()
        hand.dense.weight.copy_(torch.as_tensor(w["head/kernel"]).t())
        hand.dense.bias.copy_(torch.as_tensor(w["head/bias"]))
    if flush_denormal:
        torch.set_flush_denormal(True)
    xs, ys = _batches(steps, batch, spec.input.seq_len or 500, 10000)
    xs_t, ys_t = torch.as_tensor(xs), torch.as_tensor(ys)
    loss_fn = nn.BCEWithLogitsLoss()

    def run(model: nn.Module, forward, n: int, offset: int) -> float:
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
        model.train()
        start = time.perf_counter()
        for i in range(n):
            opt.zero_grad()
            loss = loss_fn(forward(xs_t[offset + i]), ys_t[offset + i])
            loss.backward()
            opt.step()
        return time.perf_counter() - start

    per_round = steps // rounds
    t_ours = t_hand = 0.0
    run(ours, lambda x: ours(x, logits=True), 3, 0)  # warm-up
    run(hand, hand, 3, 0)
    for r in range(rounds):
        t_ours += run(ours, lambda x: ours(x, logits=True), per_round, r * per_round)
        t_hand += run(hand, hand, per_round, r * per_round)
    n = per_round * rounds
    return t_ours / n, t_hand / n


def bench_keras(steps: int, batch: int, rounds: int) -> tuple[float, float]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import rnnspec

    spec = rnnspec.load_spec(SPEC)
    ours = rnnspec.build(spec, "keras", seed=0)
    inputs = keras.Input((spec.input.seq_len,), dtype="int32")
    x = keras.layers.Embedding(10000, 32)(inputs)
    x = keras.layers.LSTM(32)(x)
    hand = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    xs, ys = _batches(steps, batch, spec.input.seq_len or 500, 10000)
    for model in (ours, hand):
        model.compile(optimizer=keras.optimizers.RMSprop(), loss="binary_crossentropy")
        model.train_on_batch(xs[0], ys[0])  # trace once

    def run(model, n: int, offset: int) -> float:
        start = time.perf_counter()
        for i in range(n):
            model.train_on_batch(xs[offset + i], ys[offset + i])
        return time.perf_counter() - start

    per_round = steps // rounds
    t_ours = t_hand = 0.0
    for r in range(rounds):
        t_ours += run(ours, per_round, r * per_round)
        t_hand += run(hand, per_round, r * per_round)
    n = per_round * rounds
    return t_ours / n, t_hand / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["torch", "keras", "both"], default="both")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--flush-denormal", action="store_true", help="torch: flush denormal floats to zero")
    args = parser.parse_args()
    names = ["torch", "keras"] if args.backend == "both" else [args.backend]
    for name in names:
        if name == "torch":
            ours, hand = bench_torch(args.steps, args.batch, args.rounds, args.flush_denormal)
        else:
            ours, hand = bench_keras(args.steps, args.batch, args.rounds)
        print(
            f"{name}: rnnspec {ours * 1000:.1f} ms/step, hand-written {hand * 1000:.1f} ms/step, "
            f"ratio {ours / hand:.3f} ({args.steps} steps, batch {args.batch}, CPU)"
        )


if __name__ == "__main__":
    main()

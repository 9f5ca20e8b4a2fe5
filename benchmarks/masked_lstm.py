"""Masked (pre-padded) LSTM training step on torch: the three exact ways to run PyTorch's fused kernel.

    python benchmarks/masked_lstm.py [--steps 20] [--device cpu|cuda]

An IMDB-shaped batch (128 sequences, 500 steps, lengths 50..500, pre-padded as Keras's
pad_sequences does) through Embedding(10000, 32) + LSTM(32) with mask_zero:

- rnnspec: each row left-aligned, one unpacked fused run, outputs gathered back (what the torch
  backend does for hole-free masks);
- packed: left-aligned rows packed with pack_padded_sequence (the textbook way);
- unmasked: the same batch without a mask (a lower bound; not Keras's meaning).

All three compute Keras's result except the last. Prints ms per forward+backward step and ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnspec

SPEC = {
    "rnnspec": 1,
    "name": "masked-lstm",
    "input": {"vocab_size": 10000, "seq_len": 500},
    "embedding": {"output_dim": 32, "mask_zero": True},
    "recurrent": [{"cell": "lstm", "units": 32}],
    "head": {"units": 1, "activation": "sigmoid"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 10000, size=(128, 500))
    lengths = rng.integers(50, 501, size=128)
    for row, n in enumerate(lengths):
        ids[row, : 500 - n] = 0
    x = torch.as_tensor(ids, device=device)
    masked = rnnspec.build(SPEC, "torch", seed=0).to(device)
    plain = rnnspec.build({**SPEC, "embedding": {"output_dim": 32}}, "torch", seed=0).to(device)
    direction = masked.layers["recurrent_0"].directions["fwd"]
    emb = masked.layers["embedding"]

    def packed_forward() -> torch.Tensor:
        steps = torch.arange(500, device=device).expand(128, 500)
        starts = torch.as_tensor(500 - lengths, device=device)
        source = (starts[:, None] + steps).clamp(max=499)
        aligned, _ = emb(x.gather(1, source), None)
        packed = pack_padded_sequence(aligned, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False)
        params = direction._torch_layout()
        h0 = aligned.new_zeros(1, 128, 32)
        _, h, _ = torch._VF.lstm(packed.data, packed.batch_sizes, (h0, h0), params, True, 1, 0.0, True, False)
        return masked.layers["head"](h[0][packed.unsorted_indices], None, activate=False)[0]

    runs = {
        "rnnspec (left-aligned, unpacked)": lambda: masked(x, logits=True),
        "packed (pack_padded_sequence)": packed_forward,
        "unmasked (not Keras's meaning)": lambda: plain(x, logits=True),
    }
    reference = masked(x, logits=True).detach()
    assert torch.allclose(packed_forward().detach(), reference, atol=1e-5), "packed run differs"
    params = [*masked.parameters(), *plain.parameters()]

    def step(fn) -> None:
        for p in params:
            p.grad = None
        fn().sum().backward()

    times = {}
    for _ in range(2):  # two rounds, alternating, to spread machine noise
        for name, fn in runs.items():
            step(fn)  # warm-up
            start = time.perf_counter()
            for _ in range(args.steps):
                step(fn)
            times[name] = times.get(name, 0.0) + (time.perf_counter() - start) / args.steps / 2
    base = times["rnnspec (left-aligned, unpacked)"]
    for name, t in times.items():
        print(f"{name:36s} {t * 1000:8.1f} ms/step  ratio to rnnspec {t / base:.2f}")


if __name__ == "__main__":
    main()

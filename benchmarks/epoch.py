"""One training epoch of `specs/imdb_lstm.yaml`, plain and with `mask_zero: true`: rnnspec (torch and
keras backends) against the same model written by hand in Keras.

    python benchmarks/epoch.py [--samples 1024] [--rounds 2] [--only torch|keras|hand]

IMDB-shaped data: 1,024 pre-padded sequences of T = 500 ids, real lengths 50..350 (mean ~200, 40%
of T), batch 128, RMSprop, binary cross-entropy, one epoch after a warm-up epoch, alternating rounds
in one process. Prints seconds per epoch, real tokens per second, and the ratios of the issue:
rnnspec torch / Keras `model.fit` (plain, masked), masked / plain (torch), rnnspec keras / Keras.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import keras
    from fit_overhead import SPEC, imdb_like

    import rnnspec

    base = rnnspec.load_spec(SPEC).to_dict()
    base["training"] = {**base["training"], "validation_split": 0.0, "metrics": ["accuracy"]}
    specs = {
        "plain": rnnspec.spec_from_dict(base),
        "masked": rnnspec.spec_from_dict({**base, "embedding": {**base["embedding"], "mask_zero": True}}),
    }
    x, y = imdb_like(args.samples)
    tokens = int((x != 0).sum())
    weights = rnnspec.initial_weights(specs["plain"], 0)

    def ours(backend: str, kind: str) -> float:
        model = rnnspec.build(specs[kind], backend, weights=weights)
        start = time.perf_counter()
        rnnspec.fit(model, x, y, epochs=1, batch_size=128, shuffle=False, seed=0)
        return time.perf_counter() - start

    def hand(kind: str) -> float:
        inputs = keras.Input((500,), dtype="int32")
        h = keras.layers.Embedding(10000, 32, mask_zero=kind == "masked")(inputs)
        h = keras.layers.LSTM(32)(h)
        model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
        model.compile(optimizer=keras.optimizers.RMSprop(), loss="binary_crossentropy", metrics=["accuracy"])
        model.set_weights([weights[k] for k in rnnspec.weight_shapes(specs["plain"])])
        start = time.perf_counter()  # a fresh model each time on both sides: tracing counts, as for a user
        model.fit(x, y, batch_size=128, epochs=1, shuffle=False, verbose=0)
        return time.perf_counter() - start

    runs = {
        ("torch", "plain"): lambda: ours("torch", "plain"),
        ("torch", "masked"): lambda: ours("torch", "masked"),
        ("keras", "plain"): lambda: ours("keras", "plain"),
        ("keras", "masked"): lambda: ours("keras", "masked"),
        ("hand", "plain"): lambda: hand("plain"),
        ("hand", "masked"): lambda: hand("masked"),
    }
    for run in runs.values():  # warm-up (and Keras's tracing)
        run()
    times = dict.fromkeys(runs, 0.0)
    for _ in range(args.rounds):
        for key, run in runs.items():
            times[key] += run() / args.rounds
    for (who, kind), t in times.items():
        name = {"torch": "rnnspec.fit torch", "keras": "rnnspec.fit keras", "hand": "Keras model.fit"}[who]
        print(f"{name:>18} {kind:>6}: {t:.2f} s/epoch, {tokens / t:,.0f} real tokens/s")
    print(f"torch / Keras, plain:  {times['torch', 'plain'] / times['hand', 'plain']:.2f}  (goal <= 0.8)")
    print(f"torch / Keras, masked: {times['torch', 'masked'] / times['hand', 'masked']:.2f}  (goal <= 0.5)")
    print(f"torch masked / plain:  {times['torch', 'masked'] / times['torch', 'plain']:.2f}  (goal <= 0.5)")
    print(f"keras backend / Keras: {times['keras', 'plain'] / times['hand', 'plain']:.2f}  (goal <= 1.02)")
    print(f"({args.samples} samples, {tokens:,} real tokens of {x.size:,}, batch 128, {args.rounds} rounds)")


if __name__ == "__main__":
    main()

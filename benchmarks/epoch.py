"""One training epoch of `specs/imdb_lstm.yaml`, plain and with `mask_zero: true`: rnnspec (torch and
keras backends) against the same model written by hand in Keras.

    python benchmarks/epoch.py [--samples 1024] [--rounds 4] [--only torch,keras,hand]

IMDB-shaped data: 1,024 pre-padded sequences of T = 500 ids, real lengths 50..350 (mean ~200, 40%
of T), batch 128, RMSprop, binary cross-entropy; each run trains a fresh model two epochs and the
figure is the second epoch (the first, with Keras's tracing, is shown beside it), alternating rounds
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
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--only", default="torch,keras,hand", help="which sides to run, comma-separated")
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

    # Two epochs of a fresh model each time; the figure is the second epoch (Keras has traced its step
    # function in the first one, on both sides), and `first` keeps the first epoch (tracing included).
    first: dict[tuple[str, str], float] = {}

    def ours(backend: str, kind: str) -> float:
        model = rnnspec.build(specs[kind], backend, weights=weights)
        marks = [time.perf_counter()]
        rnnspec.fit(model, x, y, epochs=2, batch_size=128, shuffle=False, seed=0,
                    on_epoch_end=lambda epoch, logs: marks.append(time.perf_counter()))  # fmt: skip
        first[backend, kind] = marks[1] - marks[0]
        return marks[2] - marks[1]

    class Marks(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.marks = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.marks.append(time.perf_counter())

    def hand(kind: str) -> float:
        inputs = keras.Input((500,), dtype="int32")
        h = keras.layers.Embedding(10000, 32, mask_zero=kind == "masked")(inputs)
        h = keras.layers.LSTM(32)(h)
        model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
        model.compile(optimizer=keras.optimizers.RMSprop(), loss="binary_crossentropy", metrics=["accuracy"])
        model.set_weights([weights[k] for k in rnnspec.weight_shapes(specs["plain"])])
        marks = Marks()
        model.fit(x, y, batch_size=128, epochs=2, shuffle=False, verbose=0, callbacks=[marks])
        first["hand", kind] = marks.marks[1] - marks.marks[0]
        return marks.marks[2] - marks.marks[1]

    runs = {
        ("torch", "plain"): lambda: ours("torch", "plain"),
        ("torch", "masked"): lambda: ours("torch", "masked"),
        ("keras", "plain"): lambda: ours("keras", "plain"),
        ("keras", "masked"): lambda: ours("keras", "masked"),
        ("hand", "plain"): lambda: hand("plain"),
        ("hand", "masked"): lambda: hand("masked"),
    }
    sides = set(args.only.split(","))
    runs = {key: run for key, run in runs.items() if key[0] in sides}
    for run in runs.values():  # warm-up (and Keras's tracing)
        run()
    times = dict.fromkeys(runs, 0.0)
    for _ in range(args.rounds):
        for key, run in runs.items():
            times[key] += run() / args.rounds
    for (who, kind), t in times.items():
        name = {"torch": "rnnspec.fit torch", "keras": "rnnspec.fit keras", "hand": "Keras model.fit"}[who]
        print(
            f"{name:>18} {kind:>6}: {t:.2f} s/epoch, {tokens / t:,.0f} real tokens/s "
            f"(first epoch, with tracing: {first[who, kind]:.2f} s)"
        )
    ratios = [
        ("torch", "plain", "hand", "plain", "torch / Keras, plain: ", 0.8),
        ("torch", "masked", "hand", "masked", "torch / Keras, masked:", 0.5),
        ("torch", "masked", "torch", "plain", "torch masked / plain: ", 0.5),
        ("keras", "plain", "hand", "plain", "keras backend / Keras:", 1.02),
        ("keras", "masked", "hand", "masked", "same, masked:         ", 1.02),
    ]
    for a, ka, b, kb, label, goal in ratios:
        if (a, ka) in times and (b, kb) in times:
            print(f"{label} {times[a, ka] / times[b, kb]:.2f}  (goal <= {goal})")
    print(f"({args.samples} samples, {tokens:,} real tokens of {x.size:,}, batch 128, {args.rounds} rounds)")


if __name__ == "__main__":
    main()

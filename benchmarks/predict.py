"""Prediction at volume: `rnnspec predict --input FILE` against Keras's `model.predict` on the same model.

    python benchmarks/predict.py [--samples 10000] [--batch 256] [--rounds 2]

IMDB-shaped inputs (`specs/imdb_lstm.yaml`, T = 500 pre-padded ids, real lengths 50..350), plain and
with `mask_zero: true`. rnnspec's side is the whole command's work in this process: build the model
from the weights file, read the .npy, predict in batches, write a CSV (torch and keras backends).
Keras's side is `model.predict(x, batch_size)` on arrays already in memory, after one warm-up call
(its tracing not counted). Both use the same batch size and the same weights; the answers are checked
to agree. Prints seconds, real tokens per second, and rnnspec / Keras per variant.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    from fit_overhead import SPEC, imdb_like

    import rnnspec
    from rnnspec.cli.prediction import run_predict_file

    base = rnnspec.load_spec(SPEC).to_dict()
    specs = {
        "plain": rnnspec.spec_from_dict(base),
        "masked": rnnspec.spec_from_dict({**base, "embedding": {**base["embedding"], "mask_zero": True}}),
    }
    x, _ = imdb_like(args.samples)
    tokens = int((x != 0).sum())
    folder = Path(tempfile.mkdtemp(prefix="rnnspec-bench-"))
    np.save(folder / "x.npy", x.astype(np.int32))
    results: dict[tuple[str, str], float] = {}
    answers: dict[tuple[str, str], np.ndarray] = {}
    for kind, spec in specs.items():
        weights = folder / kind / f"{spec.name}.weights.safetensors"
        weights.parent.mkdir()
        rnnspec.save_weights(rnnspec.initial_weights(spec, 0), weights, spec)
        keras_model = rnnspec.build(spec, "keras", weights=weights)
        keras_model.predict(x[: args.batch], batch_size=args.batch, verbose=0)  # warm-up: trace once

        def ours(backend: str, kind: str = kind, weights: Path = weights) -> float:
            out = folder / f"{kind}-{backend}.csv"
            out.unlink(missing_ok=True)
            start = time.perf_counter()
            run_predict_file(weights.parent, None, folder / "x.npy", backend, output=out, batch_size=args.batch)
            seconds = time.perf_counter() - start
            with out.open() as fh:
                answers[kind, backend] = np.array([float(row["p_1"]) for row in csv.DictReader(fh)])
            return seconds

        def theirs(keras_model=keras_model, kind: str = kind) -> float:
            start = time.perf_counter()
            out = keras_model.predict(x, batch_size=args.batch, verbose=0)
            seconds = time.perf_counter() - start
            answers[kind, "Keras"] = out[:, 0]
            return seconds

        for _ in range(args.rounds):
            for name, run in (("torch", lambda: ours("torch")), ("keras", lambda: ours("keras")), ("Keras", theirs)):
                seconds = run()
                results[kind, name] = min(results.get((kind, name), float("inf")), seconds)
        for backend in ("torch", "keras"):
            diff = np.abs(answers[kind, backend] - answers[kind, "Keras"]).max()
            assert diff < 1e-5, f"{kind} {backend}: answers differ from Keras by {diff}"

    print(f"{args.samples} samples, T = 500, {tokens / args.samples:.0f} real tokens per sample, batch {args.batch}")
    print(f"{'variant':8} {'side':34} {'seconds':>8} {'real tok/s':>11}")
    for (kind, name), seconds in results.items():
        side = {"torch": "rnnspec predict -i (torch)", "keras": "rnnspec predict -i (keras)"}.get(
            name, "Keras model.predict (in memory)"
        )
        print(f"{kind:8} {side:34} {seconds:8.2f} {tokens / seconds:11,.0f}")
    for kind in specs:
        keras_s = results[kind, "Keras"]
        print(
            f"{kind}: rnnspec torch / Keras = {results[kind, 'torch'] / keras_s:.2f}, "
            f"rnnspec keras / Keras = {results[kind, 'keras'] / keras_s:.2f}"
        )


if __name__ == "__main__":
    main()

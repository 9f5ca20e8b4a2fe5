"""Time import + build + export of the largest shipped spec, against Keras's own load_model, in one run.

    python benchmarks/interop.py [--spec specs/reuters_gru.yaml] [--repeat 3]

A plain ``.keras`` file of the spec is written first (``rnnspec export --format keras``, seeded
weights). Then, median of ``--repeat`` runs each:

- ``import``: ``rnnspec.import_model`` of that file (zip + JSON + h5py, no Keras);
- ``keras load_model``: Keras reading the same file (the reference cost of opening it);
- ``build torch``: ``rnnspec.build(spec, "torch", weights=...)``;
- ``export onnx`` / ``export torch`` / ``export keras``: writing each format.

Prints the seconds and the ratio of each to Keras's load_model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="specs/reuters_gru.yaml")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import rnnspec
    from rnnspec.core.registry import get_backend

    get_backend("keras")
    import keras

    spec = rnnspec.load_spec(args.spec)
    weights = rnnspec.initial_weights(spec, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "model.keras"
        rnnspec.export(spec, "keras", source, weights=weights)
        rows = {
            "keras load_model": lambda: keras.saving.load_model(source, compile=False),
            "import (.keras)": lambda: rnnspec.import_model(source),
            "build torch": lambda: rnnspec.build(spec, "torch", weights=weights),
            "export onnx": lambda: rnnspec.export(spec, "onnx", folder / "m.onnx", weights=weights),
            "export torch": lambda: rnnspec.export(spec, "torch", folder / "m.py", weights=weights),
            "export keras": lambda: rnnspec.export(spec, "keras", folder / "e.keras", weights=weights),
        }
        results = {name: median_time(fn, args.repeat) for name, fn in rows.items()}
    base = results["keras load_model"]
    print(f"{args.spec}: {rnnspec.analyze(spec).total_params:,} parameters, median of {args.repeat}")
    for name, seconds in results.items():
        print(f"  {name:<18} {seconds:8.3f} s   ratio to keras load_model {seconds / base:6.3f}")


if __name__ == "__main__":
    main()

"""Wall time of `rnnspec summary` against `python -c "import keras"`, measured in one run.

    python benchmarks/cli_startup.py [--repeat 5] [--spec specs/reuters_gru.yaml]

Prints the median of each and their ratio. `rnnspec summary` imports no framework, so it should
answer in well under a second; importing Keras (and TensorFlow) alone takes several.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--spec", default="specs/reuters_gru.yaml")
    args = parser.parse_args()
    summary = wall([sys.executable, "-m", "rnnspec", "summary", args.spec], args.repeat)
    keras = wall([sys.executable, "-c", "import keras"], args.repeat)
    print(f"rnnspec summary {args.spec}: {summary:.3f} s (median of {args.repeat})")
    print(f'python -c "import keras":  {keras:.3f} s (median of {args.repeat})')
    print(f"ratio summary / import keras: {summary / keras:.3f}")


if __name__ == "__main__":
    main()

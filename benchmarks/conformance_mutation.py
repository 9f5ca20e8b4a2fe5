"""The mutation score of rnnspec.testing's porting-mistake catalogue, as docs/conformance.md reports it.

    .venv/bin/python benchmarks/conformance_mutation.py

Hand-written PyTorch twins of Keras models (tests/testing/twins.py: the design set, used while writing the rules;
tests/testing/twins_heldout.py: the held-out set, written afterwards), each correct and with one mistake planted.
Prints one line per comparison and, per set, mistakes named / planted and correct twins passed."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.testing.mutation import score
from tests.testing.twins import DESIGN
from tests.testing.twins_heldout import HELD_OUT


def main() -> int:
    failed = False
    for label, cases in (("design", DESIGN), ("held-out", HELD_OUT)):
        outcomes, named, planted, passed, correct = score(cases)
        for o in outcomes:
            print(f"{label:9} {o.case:14} {o.planted:20} expected {o.expected or 'pass':24} got "
                  f"{'pass' if o.passed else o.named}  {'ok' if o.ok else 'MISSED'}")  # fmt: skip
        print(f"{label}: named {named} / {planted} planted mistakes; {passed} / {correct} correct twins pass\n")
        failed |= named < planted or passed < correct
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Training from a token file larger than it is wise to load: peak resident memory, read on demand vs
loaded whole.

    python benchmarks/large_data.py [--gigabytes 1.9] [--batches 20]
    python benchmarks/large_data.py --text [--gigabytes 2] [--whole-gigabytes 0.25]

Writes an IMDB-shaped `.npz` (np.savez layout: x int32 (n, 500), y) of about GIGABYTES, streamed to
disk, then in a fresh process per mode loads it with `rnnspec.data.load_data` for `specs/imdb_lstm.yaml`
(x checked in full: ids in range) and trains the first BATCHES batches of an epoch with the torch
backend (then Ctrl-C semantics stop it), and reports the process's peak RSS (ru_maxrss) and seconds.
Modes: `on-demand` (rows read a batch at a time; the default for an uncompressed x over 256 MiB) and
`whole` (x loaded into memory first). The file is removed afterwards.

`--text` writes a CSV of IMDB-shaped reviews instead (50-350 words from 20,000, labels pos/neg):
on demand it is indexed in one pass that fits the tokenizer, and batches are tokenized as they are
read. Loaded whole, a text file costs many times its size in Python objects, so the `whole` mode
reads a smaller file (WHOLE_GIGABYTES) for comparison.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
import numpy as np
import rnnspec
from rnnspec.data import arrays, load_data, textstream
path, mode, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "whole":
    arrays.LAZY_BYTES = textstream.STREAM_BYTES = 1 << 62
start = time.perf_counter()
spec = rnnspec.load_spec(sys.argv[4])
data = load_data(spec, path)
loaded = time.perf_counter() - start
model = rnnspec.build(spec, "torch", seed=0)
def stop(epoch, done, total):
    if done >= batches:
        raise KeyboardInterrupt
history = rnnspec.fit(model, data.x, data.y, epochs=1, seed=0, validation_split=0.0, on_batch_end=stop)
print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "load_s": loaded, "total_s": time.perf_counter() - start, "type": type(data.x).__name__}))
"""


def write_npz(path: Path, gigabytes: float, steps: int = 500) -> int:
    """An np.savez-layout file of ~``gigabytes`` of int32 ids, written in chunks (never whole in memory)."""
    rows = int(gigabytes * 1024**3 / (steps * 4))
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            header = {"descr": "<i4", "fortran_order": False, "shape": (rows, steps)}
            np.lib.format.write_array_header_1_0(member, header)
            for start in range(0, rows, 65536):
                count = min(65536, rows - start)
                block = np.zeros((count, steps), dtype="<i4")
                lengths = rng.integers(50, 351, size=count)
                block[np.arange(steps)[None, :] >= (steps - lengths)[:, None]] = rng.integers(
                    1, 10000, size=int(lengths.sum())
                )
                member.write(block.tobytes())
        with archive.open("y.npy", "w") as member:
            np.lib.format.write_array(member, rng.integers(0, 2, size=rows).astype(np.float32))
    return rows


def write_csv(path: Path, gigabytes: float) -> int:
    """A CSV of ~``gigabytes`` of reviews (text, label), written a block of rows at a time."""
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = np.array(["".join(rng.choice(letters, size=rng.integers(2, 9))) for _ in range(20000)])
    weights = 1.0 / (np.arange(len(words)) + 10.0)
    weights /= weights.sum()
    target, rows = gigabytes * 1024**3, 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("text,label\n")
        while fh.tell() < target:
            lengths = rng.integers(50, 351, size=4096)
            drawn = rng.choice(words, size=int(lengths.sum()), p=weights)
            ends = np.cumsum(lengths)
            labels = rng.choice(np.array(["pos", "neg"]), size=len(lengths))
            rows_text = (f"{' '.join(drawn[e - n : e])},{c}\n" for n, e, c in zip(lengths, ends, labels, strict=True))
            fh.write("".join(rows_text))
            rows += len(lengths)
    return rows


def run_mode(path: Path, mode: str, batches: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), mode, str(batches), str(REPO / "specs/imdb_lstm.yaml")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"{mode:9}: peak RSS {result['rss_mb']:7.0f} MB, load + checks {result['load_s']:5.1f} s, "
        f"total {result['total_s']:5.1f} s ({result['type']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=1.9)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--text", action="store_true", help="a CSV of texts instead of an .npz of ids")
    parser.add_argument("--whole-gigabytes", type=float, default=0.25, help="size of the text file loaded whole")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rnnspec-large-"))
    if args.text:
        try:
            for mode, size in (("on-demand", args.gigabytes), ("whole", args.whole_gigabytes)):
                path = folder / f"reviews-{mode}.csv"
                rows = write_csv(path, size)
                print(f"{path.stat().st_size / 1024**3:.2f} GiB CSV: {rows:,} reviews; {args.batches} batches of 128")
                run_mode(path, mode, args.batches)
                path.unlink()
        finally:
            for leftover in folder.iterdir():
                leftover.unlink()
            folder.rmdir()
        return
    path = folder / "tokens.npz"
    rows = write_npz(path, args.gigabytes)
    print(
        f"{path.stat().st_size / 1024**3:.2f} GiB token file: {rows:,} rows of 500 ids; {args.batches} batches of 128"
    )
    try:
        for mode in ("on-demand", "whole"):
            run_mode(path, mode, args.batches)
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()


if __name__ == "__main__":
    main()

"""rnnspec against its peers on one recurrent workload: training and forward steps, plain and masked.

    python benchmarks/peers.py [--rounds 3] [--batches 4] [--quick] [--peers module,export,...] [--json FILE]

The workload is `specs/imdb_lstm.yaml`'s model (Embedding(10000, 32) → LSTM(32) → Dense(1, sigmoid)) on batches
of 128 rows of T = 500 token ids, one thread everywhere. "plain": every step a token. "masked": the spec with
`mask_zero: true` and rows pre-padded (Keras's `pad_sequences` default) to real lengths 50..350 (40% of T).
Each peer measures four things per batch: a training step (RMSprop, binary cross-entropy) and a forward pass
(inference), on the plain and the masked batches.

Peers (a peer whose packages are missing is skipped with the reason; `pip install -e .[bench]` adds them):

- `module`: rnnspec's torch module, stepped by hand (the baseline of the ratios);
- `api`: `rnnspec.fit` (one epoch over the batches) and `rnnspec.predict`;
- `export`: the plain PyTorch `model.py` of `rnnspec export --format torch`, stepped by hand as `module`;
- `keras-tf`, `keras-jax`, `keras-torch`: the same model written in Keras 3 (`model.fit` / `model.predict`) on
  TensorFlow, JAX and PyTorch (`KERAS_BACKEND`);
- `flax`: the same model in Flax NNX under `nnx.jit` (masked rows left-aligned in the jitted step and run with
  `seq_lengths`).

Every peer runs in its own process (a worker: its framework and thread settings to itself), built and warmed up
(tracing and compiling done) before any timing. Then the rounds alternate: in each round every peer times each
measure once over `--batches` batches, so machine noise hits all peers alike; a peer's time is its best round.
Prints seconds per batch and the ratio to `module` per measure. `--quick` shrinks the workload (batch 32, T = 100,
lengths 10..70, 2 rounds of 2 batches) to check the script in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MEASURES = ("plain_train", "plain_forward", "masked_train", "masked_forward")
PEERS = {
    "module": "rnnspec torch module",
    "api": "rnnspec.fit / rnnspec.predict",
    "export": "export --format torch → model.py",
    "keras-tf": "Keras 3 on TensorFlow (fit / predict)",
    "keras-jax": "Keras 3 on JAX (fit / predict)",
    "keras-torch": "Keras 3 on PyTorch (fit / predict)",
    "flax": "Flax NNX, nnx.jit",
}
VOCAB, EMBED, UNITS = 10_000, 32, 32


# -- the workload ------------------------------------------------------------------------------------------------


def workload(args: argparse.Namespace) -> dict[str, Any]:
    """The batches every peer gets: ``plain`` and ``masked`` ids ``(batches, batch, T)``; labels."""
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (args.batches, args.batch, args.steps)
    plain = rng.integers(1, VOCAB, size=shape).astype(np.int64)
    masked = plain.copy()
    low, high = args.lengths
    for k in range(args.batches):
        for row, length in enumerate(rng.integers(low, high + 1, size=args.batch)):
            masked[k, row, : args.steps - length] = 0  # pre-padded
    labels = rng.integers(0, 2, size=shape[:2]).astype(np.float32)
    return {"plain": plain, "masked": masked, "y": labels}


def spec_for(masked: bool) -> Any:
    import rnnspec

    base = rnnspec.load_spec(REPO / "specs" / "imdb_lstm.yaml").to_dict()
    base["input"] = {**base["input"], "seq_len": None}
    base["embedding"] = {**base["embedding"], "mask_zero": masked}
    return rnnspec.spec_from_dict(base)


# -- the peers (each one runs inside its worker process) ---------------------------------------------------------


class Peer:
    """``step(kind, k)``: one training step on batch ``k`` of ``kind`` (plain / masked); ``forward(kind, k)``: one
    forward pass. ``measure(name)`` times every batch once and returns seconds per batch."""

    def __init__(self, data: dict[str, Any]):
        self.data = data
        self.batches = len(data["y"])

    def step(self, kind: str, k: int) -> None:
        raise NotImplementedError

    def forward(self, kind: str, k: int) -> None:
        raise NotImplementedError

    def run(self, name: str) -> None:
        kind, what = name.split("_")
        for k in range(self.batches):
            (self.step if what == "train" else self.forward)(kind, k)

    def measure(self, name: str) -> float:
        start = time.perf_counter()
        self.run(name)
        return (time.perf_counter() - start) / self.batches


class TorchPeer(Peer):
    """A torch module returning probabilities, stepped by hand: RMSprop, binary cross-entropy."""

    def __init__(self, data: dict[str, Any], models: dict[str, Any]):
        import torch

        super().__init__(data)
        self.torch = torch
        self.models = models
        self.optimizers = {kind: torch.optim.RMSprop(m.parameters(), lr=1e-3) for kind, m in models.items()}
        self.x = {kind: torch.from_numpy(data[kind]) for kind in ("plain", "masked")}
        self.y = torch.from_numpy(data["y"]).unsqueeze(-1)

    def step(self, kind: str, k: int) -> None:
        model, optimizer = self.models[kind].train(), self.optimizers[kind]
        optimizer.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.binary_cross_entropy(model(self.x[kind][k]), self.y[k])
        loss.backward()
        optimizer.step()

    def forward(self, kind: str, k: int) -> None:
        model = self.models[kind].eval()
        with self.torch.inference_mode():
            model(self.x[kind][k])


def module_peer(data: dict[str, Any]) -> Peer:
    import rnnspec

    return TorchPeer(
        data, {kind: rnnspec.build(spec_for(kind == "masked"), "torch", seed=0) for kind in data if kind != "y"}
    )


def export_peer(data: dict[str, Any]) -> Peer:
    import importlib.util

    from rnnspec_backends.torch.export import export_torch

    import rnnspec

    models = {}
    folder = Path(tempfile.mkdtemp(prefix="rnnspec-peers-"))
    for kind in ("plain", "masked"):
        spec = spec_for(kind == "masked")
        source, _ = export_torch(spec, rnnspec.initial_weights(spec, seed=0), folder / kind / "model.py")
        found = importlib.util.spec_from_file_location(f"exported_{kind}", source)
        assert found is not None and found.loader is not None
        module = importlib.util.module_from_spec(found)
        found.loader.exec_module(module)
        models[kind] = module.load()
    return TorchPeer(data, models)


class ApiPeer(Peer):
    """``rnnspec.fit`` over all the batches (one epoch, in order) and ``rnnspec.predict``: whole-call timings."""

    def __init__(self, data: dict[str, Any]):
        import numpy as np

        import rnnspec

        super().__init__(data)
        self.rnnspec = rnnspec
        self.models = {kind: rnnspec.build(spec_for(kind == "masked"), "torch", seed=0) for kind in ("plain", "masked")}
        self.x = {kind: np.concatenate(list(data[kind])) for kind in ("plain", "masked")}
        self.y = np.concatenate(list(data["y"]))[:, None]
        self.size = data["y"].shape[1]

    def run(self, name: str) -> None:
        kind, what = name.split("_")
        if what == "train":
            self.rnnspec.fit(self.models[kind], self.x[kind], self.y, epochs=1, batch_size=self.size, shuffle=False)
        else:
            self.rnnspec.predict(self.models[kind], self.x[kind], batch_size=self.size)


class KerasPeer(Peer):
    """The model written in Keras 3 on whatever ``KERAS_BACKEND`` says: ``model.fit`` / ``model.predict``."""

    def __init__(self, data: dict[str, Any]):
        import keras

        super().__init__(data)
        keras.utils.set_random_seed(0)
        self.models = {}
        for kind in ("plain", "masked"):
            model = keras.Sequential(
                [
                    keras.Input((None,), dtype="int32"),
                    keras.layers.Embedding(VOCAB, EMBED, mask_zero=kind == "masked"),
                    keras.layers.LSTM(UNITS),
                    keras.layers.Dense(1, activation="sigmoid"),
                ]
            )
            model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="binary_crossentropy")
            self.models[kind] = model
        self.size = data["y"].shape[1]
        self.x = {kind: data[kind].reshape(-1, data[kind].shape[-1]).astype("int32") for kind in ("plain", "masked")}
        self.y = data["y"].reshape(-1, 1)

    def run(self, name: str) -> None:
        kind, what = name.split("_")
        model = self.models[kind]
        if what == "train":
            model.fit(self.x[kind], self.y, batch_size=self.size, epochs=1, shuffle=False, verbose=0)
        else:
            model.predict(self.x[kind], batch_size=self.size, verbose=0)


class FlaxPeer(Peer):
    """The model in Flax NNX: ``nnx.RNN(nnx.OptimizedLSTMCell)`` under ``nnx.jit``; a masked batch's rows are
    left-aligned inside the jitted function and run with ``seq_lengths`` (the carry after each row's last token)."""

    def __init__(self, data: dict[str, Any]):
        import jax
        import jax.numpy as jnp
        import optax
        from flax import nnx

        super().__init__(data)
        self.jax = jax

        class Net(nnx.Module):
            def __init__(self, rngs: nnx.Rngs):
                self.embed = nnx.Embed(VOCAB, EMBED, rngs=rngs)
                self.rnn = nnx.RNN(nnx.OptimizedLSTMCell(EMBED, UNITS, rngs=rngs), return_carry=True)
                self.head = nnx.Linear(UNITS, 1, rngs=rngs)

            def __call__(self, ids: Any, masked: bool) -> Any:
                lengths = None
                if masked:  # valid tokens first, in order; the carry stops at each row's length
                    order = jnp.argsort(ids == 0, axis=1, stable=True)
                    ids = jnp.take_along_axis(ids, order, axis=1)
                    lengths = (ids != 0).sum(axis=1)
                carry, _ = self.rnn(self.embed(ids), seq_lengths=lengths)
                return jax.nn.sigmoid(self.head(carry[1]))  # the LSTM carry is (c, h)

        self.models, self.optimizers = {}, {}
        for kind in ("plain", "masked"):
            model = Net(nnx.Rngs(0))
            try:
                optimizer = nnx.Optimizer(model, optax.rmsprop(1e-3), wrt=nnx.Param)
            except TypeError:  # flax < 0.11
                optimizer = nnx.Optimizer(model, optax.rmsprop(1e-3))
            self.models[kind], self.optimizers[kind] = model, optimizer

        def train_step(model: Any, optimizer: Any, ids: Any, y: Any, masked: bool) -> Any:
            def loss_fn(model: Any) -> Any:
                p = jnp.clip(model(ids, masked), 1e-7, 1 - 1e-7)
                return -(y * jnp.log(p) + (1 - y) * jnp.log(1 - p)).mean()

            loss, grads = nnx.value_and_grad(loss_fn)(model)
            try:
                optimizer.update(model, grads)
            except TypeError:  # flax < 0.11
                optimizer.update(grads)
            return loss

        self.train_step = nnx.jit(train_step, static_argnums=4)
        self.forward_step = nnx.jit(lambda model, ids, masked: model(ids, masked), static_argnums=2)
        self.x = {kind: jnp.asarray(data[kind].astype("int32")) for kind in ("plain", "masked")}
        self.y = jnp.asarray(data["y"])[..., None]

    def step(self, kind: str, k: int) -> None:
        loss = self.train_step(self.models[kind], self.optimizers[kind], self.x[kind][k], self.y[k], kind == "masked")
        loss.block_until_ready()

    def forward(self, kind: str, k: int) -> None:
        self.forward_step(self.models[kind], self.x[kind][k], kind == "masked").block_until_ready()


def _keras_on(backend: str) -> Any:
    def make(data: dict[str, Any]) -> Peer:
        if os.environ.get("KERAS_BACKEND") != backend:
            raise RuntimeError(f"KERAS_BACKEND is {os.environ.get('KERAS_BACKEND')!r}, not {backend!r}")
        return KerasPeer(data)

    return make


MAKERS = {
    "module": module_peer,
    "api": ApiPeer,
    "export": export_peer,
    "keras-tf": _keras_on("tensorflow"),
    "keras-jax": _keras_on("jax"),
    "keras-torch": _keras_on("torch"),
    "flax": FlaxPeer,
}
NEEDS = {
    "module": ["torch"],
    "api": ["torch"],
    "export": ["torch"],
    "keras-tf": ["keras", "tensorflow"],
    "keras-jax": ["keras", "jax"],
    "keras-torch": ["keras", "torch"],
    "flax": ["jax", "flax", "optax"],
}


def one_thread_env(peer: str) -> dict[str, str]:
    """The worker's environment: one thread for every framework, and the Keras backend of the peer."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TF_NUM_INTRAOP_THREADS="1",
        TF_NUM_INTEROP_THREADS="1",
        TF_CPP_MIN_LOG_LEVEL="3",
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    )
    if peer.startswith("keras-"):
        env["KERAS_BACKEND"] = {"keras-tf": "tensorflow", "keras-jax": "jax", "keras-torch": "torch"}[peer]
    return env


def worker(args: argparse.Namespace) -> None:
    """Build the peer, warm it up, say ``ready`` (or ``skip REASON``), then answer ``measure NAME`` lines."""
    import importlib.util

    out = sys.stdout
    sys.stdout = sys.stderr  # the frameworks' chatter stays off the protocol
    missing = [name for name in NEEDS[args.worker] if importlib.util.find_spec(name) is None]
    if missing:
        print(f"skip {', '.join(missing)} not installed (pip install -e .[bench])", file=out, flush=True)
        return
    try:
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
        peer = MAKERS[args.worker](workload(args))
        for name in MEASURES:  # warm-up: tracing, compiling, first allocations
            peer.run(name)
    except Exception as exc:  # any failure to build a peer is reported, and the peer skipped
        print(f"skip {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}", file=out, flush=True)
        return
    print("ready", file=out, flush=True)
    for line in sys.stdin:
        command, _, name = line.strip().partition(" ")
        if command != "measure":
            break
        print(json.dumps(peer.measure(name)), file=out, flush=True)


# -- the parent: start the workers, alternate the rounds, print the table ----------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=4, help="batches per measure and round")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=500, help="T, the sequence length")
    parser.add_argument("--lengths", type=int, nargs=2, default=(50, 350), help="real lengths of the masked rows")
    parser.add_argument("--quick", action="store_true", help="batch 32, T 100, lengths 10..70, 2 rounds of 2 batches")
    parser.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {', '.join(PEERS)}")
    parser.add_argument("--json", type=Path, help="also write the seconds and ratios here")
    parser.add_argument("--worker", choices=list(PEERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.batches, args.batch, args.steps, args.lengths = 2, 2, 32, 100, (10, 70)
    if args.worker:
        worker(args)
        return

    peers = [p for p in args.peers.split(",") if p]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}; the peers are {', '.join(PEERS)}")
    common = ["--batches", str(args.batches), "--batch", str(args.batch), "--steps", str(args.steps)]
    common += ["--lengths", *map(str, args.lengths)]
    workers: dict[str, subprocess.Popen[str]] = {}
    skipped: dict[str, str] = {}
    for peer in peers:
        print(f"starting {peer} ...", file=sys.stderr, flush=True)
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", peer, *common],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=one_thread_env(peer),
            cwd=REPO,
        )
        assert proc.stdout is not None
        status = proc.stdout.readline().strip() or "skip the worker exited before it was ready"
        if status == "ready":
            workers[peer] = proc
        else:
            skipped[peer] = status.removeprefix("skip ")
            proc.wait()
    best: dict[str, dict[str, float]] = {peer: dict.fromkeys(MEASURES, float("inf")) for peer in workers}
    for round_ in range(args.rounds):
        print(f"round {round_ + 1}/{args.rounds}", file=sys.stderr, flush=True)
        for name in MEASURES:
            for peer, proc in workers.items():  # each measure, every peer in turn
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(f"measure {name}\n")
                proc.stdin.flush()
                best[peer][name] = min(best[peer][name], float(proc.stdout.readline()))
    for proc in workers.values():
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    report(args, best, skipped)


def report(args: argparse.Namespace, best: dict[str, dict[str, float]], skipped: dict[str, str]) -> None:
    base = best.get("module")
    print(
        f"\nbatch {args.batch}, T = {args.steps}, masked rows pre-padded to lengths "
        f"{args.lengths[0]}..{args.lengths[1]}; one thread; best of {args.rounds} alternating rounds of "
        f"{args.batches} batches\n"
    )
    header = "| | " + " | ".join(m.replace("_", " ") for m in MEASURES) + " |"
    print(header + "\n|" + " --- |" * (len(MEASURES) + 1))
    for peer, times in best.items():
        cells = [f"{times[m] / base[m]:.2f}" if base else f"{times[m] * 1e3:.1f} ms" for m in MEASURES]
        print(f"| {PEERS[peer]} | " + " | ".join(cells) + " |")
    print("\nseconds per batch:")
    for peer, times in best.items():
        print(f"  {peer:12s} " + "  ".join(f"{m} {times[m]:.4f}" for m in MEASURES))
    for peer, why in skipped.items():
        print(f"  {peer:12s} skipped: {why}")
    if args.json:
        ratios = {p: {m: t[m] / base[m] for m in MEASURES} for p, t in best.items()} if base else {}
        args.json.write_text(json.dumps({"seconds": best, "ratios": ratios, "skipped": skipped}, indent=2))


if __name__ == "__main__":
    main()

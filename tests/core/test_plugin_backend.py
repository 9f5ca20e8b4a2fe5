"""A backend from another distribution, found only through the ``rnnspec.backends`` entry point: ``build``,
``check`` (its forward rows against the NumPy reference and the frameworks) and the pytest plugin take it as they
take the built-ins.

The toy distribution is written into a temporary folder (a module and a ``toy-0.dist-info`` with its entry point)
and put on ``PYTHONPATH`` of fresh processes, so ``importlib.metadata`` finds it as it finds an installed package.
The toy backend is a small float32 NumPy implementation of its own (not the reference's code): ``simple_rnn``,
``dense`` and ``dropout`` through a :class:`~rnnspec.core.kinds.KindRegistry`, every other kind refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TOY_BACKEND = '''
"""rnnspec's toy plugin backend: SimpleRNN and Dense in float32 NumPy."""

from pathlib import Path

import numpy as np

from rnnspec.core.backend import MODEL_BACKEND_ATTR, MODEL_SPEC_ATTR
from rnnspec.core.kinds import KindRegistry
from rnnspec.core.weights import load_weights_file, save_weights_file, spec_from_weights_file, weight_shapes
from rnnspec.lang.errors import RnnspecError

LAYERS = KindRegistry("toy", "layer")
ACTIVATIONS = {"tanh": np.tanh, "linear": lambda z: z, "relu": lambda z: np.maximum(z, 0),
               "sigmoid": lambda z: 1 / (1 + np.exp(-z))}


@LAYERS.register("simple_rnn")
def simple_rnn(layer, w, h):
    state = np.zeros((h.shape[0], layer.units), dtype=np.float32)
    steps = []
    for t in range(h.shape[1]):
        state = ACTIVATIONS[layer.activation](h[:, t] @ w["kernel"] + state @ w["recurrent_kernel"] + w["bias"])
        steps.append(state)
    return np.stack(steps, axis=1) if layer.return_sequences else state


@LAYERS.register("dense")
def dense(layer, w, h):
    return ACTIVATIONS[layer.activation](h @ w["kernel"] + w["bias"])


@LAYERS.register("dropout")
def dropout(layer, w, h):
    return h


class ToyModel:
    def __init__(self, spec):
        setattr(self, MODEL_SPEC_ATTR, spec)
        setattr(self, MODEL_BACKEND_ATTR, "toy")
        self.spec, self.weights = spec, {}


class ToyBackend:
    name = "toy"

    def build(self, spec):
        LAYERS.check(spec.stack())
        if spec.input.vocab_size is not None or spec.input.mask_value is not None or spec.convention != "keras":
            raise RnnspecError("the toy backend takes unmasked features in the keras convention only")
        model = ToyModel(spec)
        model.weights = {k: np.zeros(s, dtype=np.float32) for k, s in weight_shapes(spec).items()}
        return model

    def set_weights(self, model, weights):
        model.weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}

    def get_weights(self, model):
        return {k: v.copy() for k, v in model.weights.items()}

    def count_params(self, model):
        counts = {name: 0 for name in model.spec.layer_names()}
        for key, value in model.weights.items():
            counts[key.split("/", 1)[0]] += int(value.size)
        return counts

    def predict(self, model, x, batch_size=None):
        h = np.asarray(x, dtype=np.float32)
        for name, layer in model.spec.stack():
            own = {k[len(name) + 1 :]: v for k, v in model.weights.items() if k.startswith(name + "/")}
            h = LAYERS.get(layer.kind, name)(layer, own, h)
        return h.astype(np.float32)

    def summary(self, model):
        return f"ToyModel {model.spec.name}: " + ", ".join(n for n, _ in model.spec.stack()) + "\\n"

    def save_artifact(self, model, directory):
        path = Path(directory) / f"{model.spec.name}.toy.safetensors"
        save_weights_file(model.weights, path, model.spec)
        return [path]

    def load_artifact(self, path):
        model = self.build(spec_from_weights_file(path))
        self.set_weights(model, load_weights_file(path)[0])
        return model

    def notes(self, model):
        return ["toy backend: float32 NumPy, one loop per step"]


BACKEND = ToyBackend()
'''

SPEC = """rnnspec: 1
name: toy-rnn
input: {features: 3}
recurrent:
  - {cell: simple_rnn, units: 4, return_sequences: true}
  - {cell: simple_rnn, units: 5}
head: [{dropout: 0.1}, {units: 2, activation: sigmoid}]
"""


@pytest.fixture
def toy(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder holding the toy distribution, and the environment that puts it on the path of a fresh process."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "toy_backend.py").write_text(TOY_BACKEND)
    info = site / "toy-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[rnnspec.backends]\ntoy = toy_backend:BACKEND\n")
    (tmp_path / "toy.yaml").write_text(SPEC)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return tmp_path, {**os.environ, "PYTHONPATH": path}


def _run(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def test_the_entry_point_backend_is_known_with_what_it_declares(toy):
    folder, env = toy
    probe = (
        "from rnnspec.core import registry\n"
        "print(registry.available_backends())\n"
        "print(sorted(registry.backend_entry('toy').capabilities), registry.backends_with('trains'))\n"
        "print(registry.compared_backends())\n"
    )
    run = _run(folder, env, "-c", probe)
    assert run.returncode == 0, run.stderr
    listed, declared, compared = run.stdout.splitlines()
    assert listed == "['keras', 'torch', 'numpy', 'toy']"
    assert declared == "[] ['torch', 'keras']"  # forward only: it declares no capability
    assert compared == "['numpy', 'torch', 'keras', 'toy']"  # the reference first, a plugin after the built-ins


def test_build_with_the_toy_backend(toy):
    folder, env = toy
    run = _run(folder, env, "-m", "rnnspec", "build", "toy.yaml", "--backend", "toy", "--seed", "0", "-o", "out")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ToyModel toy-rnn" in run.stdout
    # simple_rnn 3->4: 3*4 + 4*4 + 4 = 32; simple_rnn 4->5: 4*5 + 5*5 + 5 = 50; dense 5->2: 12 (Keras's formulas)
    assert "parameter counts: toy model 94 = analytic 94" in run.stdout
    assert (folder / "out" / "toy-rnn.toy.safetensors").is_file()
    trainable = SPEC + "training: {loss: binary_crossentropy}\n"  # a spec train takes: only the backend is refused
    (folder / "toy_train.yaml").write_text(trainable)
    refused = _run(folder, env, "-m", "rnnspec", "train", "toy_train.yaml", "--backend", "toy")
    assert refused.returncode != 0 and "the toy backend is forward-only" in refused.stderr


def test_a_kind_the_toy_backend_lacks_is_refused_before_building(toy):
    folder, env = toy
    (folder / "gru.yaml").write_text(SPEC.replace("simple_rnn, units: 5", "gru, units: 5"))
    run = _run(folder, env, "-m", "rnnspec", "build", "gru.yaml", "--backend", "toy")
    assert run.returncode == 1
    assert "the toy backend has no layer for layer kind 'gru' (layer 'recurrent_1')" in run.stderr


def test_check_compares_the_toy_backend_with_the_others(toy):
    folder, env = toy
    run = _run(folder, env, "-m", "rnnspec", "check", "toy.yaml", "--steps", "0", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    import json

    rows = {row["check"]: row for row in json.loads(run.stdout)["rows"]}
    for other in ("numpy", "torch", "keras"):
        assert rows[f"forward {other} vs toy"]["passed"], rows[f"forward {other} vs toy"]
    assert rows["params analytic vs toy"]["passed"]
    models = _run(folder, env, "-m", "rnnspec", "check", "toy.yaml", "--model", "toy", "--model", "numpy")
    assert models.returncode == 0, models.stdout + models.stderr
    assert "rnnspec's toy build" in models.stdout and "EQUIVALENT" in models.stdout.upper()


def test_bench_times_the_toy_backends_predictions(toy):
    folder, env = toy
    run = _run(
        folder, env, "-m", "rnnspec", "bench", "toy.yaml", "-b", "toy", "--seq-len", "5", "--batches", "1", "--json"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    import json

    (row,) = json.loads(run.stdout)["backends"]
    assert row["backend"] == "toy" and row["predict_real_tokens_per_s"] > 0 and row["train_step_s"] is None


def test_the_pytest_plugin_takes_the_toy_backend(toy):
    folder, env = toy
    specs = folder / "specs"
    specs.mkdir()
    (specs / "toy.yaml").write_text(SPEC)
    env = {**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    plugin = ("-m", "pytest", "-p", "rnnspec.testing.pytest_plugin", "-p", "no:cacheprovider")
    run = _run(folder, env, *plugin, "-q", "--rnnspec-specs", "specs", "--rnnspec-pairs", "numpy:toy,toy:torch")
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout + run.stderr
    (folder / "test_own.py").write_text(
        "def test_toy(rnnspec_equivalent):\n    rnnspec_equivalent('toy', 'numpy', 'specs/toy.yaml', grads=False)\n"
    )
    own = _run(folder, env, *plugin, "-q", "test_own.py")
    assert own.returncode == 0 and "1 passed" in own.stdout, own.stdout + own.stderr


def test_a_plugin_that_fails_to_load_is_named_and_left_out_of_check(toy):
    folder, env = toy
    site = Path(env["PYTHONPATH"].split(os.pathsep)[0])
    (site / "broken_backend.py").write_text("import a_module_that_is_not_installed\n")
    info = site / "broken-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[rnnspec.backends]\nbroken = broken_backend:BACKEND\n")
    named = _run(folder, env, "-m", "rnnspec", "build", "toy.yaml", "--backend", "broken")
    assert named.returncode == 1, named.stdout + named.stderr
    assert "Traceback" not in named.stderr
    assert "the broken backend (entry point broken_backend:BACKEND" in named.stderr
    assert "fails to load: ModuleNotFoundError" in named.stderr
    check = _run(folder, env, "-m", "rnnspec", "check", "toy.yaml", "--steps", "0", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "note: backend broken is not compared" in check.stderr
    import json

    rows = [row["check"] for row in json.loads(check.stdout)["rows"]]
    assert "forward numpy vs toy" in rows and not any("broken" in row for row in rows)

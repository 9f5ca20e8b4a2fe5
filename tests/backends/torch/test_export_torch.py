"""`export_torch`: plain PyTorch source plus a safetensors state dict, agreeing with the NumPy reference.

Every spec of :data:`SPECS` is exported, the generated file imported with importlib, its weights
loaded with ``safetensors.torch.load_file`` and ``load_state_dict``, and its eval-mode outputs
compared with :func:`rnnspec_backends.numpy.forward` on inputs with every padding pattern, at
batch sizes and lengths other than the spec's.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")
nb = pytest.importorskip("rnnspec_backends.numpy.model")
te = pytest.importorskip("rnnspec_backends.torch.export")

import rnnspec
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.spec import ModelSpec

TOL = 1e-5
SIZES = ((5, 7), (3, 2))
"""(batch, time) of the inputs; no spec below has these as its seq_len."""

TOKENS = "rnnspec: 1.1\nname: t\ninput: {{vocab_size: 20}}\nembedding: {{output_dim: 5{mask}}}\n"
FEATURES = "rnnspec: 1.1\nname: t\ninput: {{features: 3{mask}}}\n"


def _tokens(body: str, mask: bool = True) -> str:
    return TOKENS.format(mask=", mask_zero: true" if mask else "") + body


def _features(body: str, mask_value: float | None = None) -> str:
    return FEATURES.format(mask="" if mask_value is None else f", mask_value: {mask_value}") + body


SPECS: dict[str, str] = {
    "native_lstm": _tokens("recurrent:\n  - {cell: lstm, units: 4}\nhead: {units: 1, activation: sigmoid}", False),
    "masked_lstm": _tokens("recurrent:\n  - {cell: lstm, units: 4}\nhead: {units: 2, activation: softmax}"),
    "stacked_native": _tokens(
        "recurrent:\n  - {cell: simple_rnn, units: 4, return_sequences: true}\n"
        "  - {cell: lstm, units: 3, return_sequences: true}\n  - {cell: gru, units: 2, return_sequences: true}",
        False,
    ),
    "stacked_masked": _tokens(
        "recurrent:\n  - {cell: gru, units: 4, return_sequences: true}\n"
        "  - {cell: lstm, units: 3, return_sequences: true}\n  - {cell: simple_rnn, units: 2}"
    ),
    "gru_reset_after": _tokens("recurrent:\n  - {cell: gru, units: 4}\nhead: {units: 1}", False),
    "gru_reset_before": _tokens("recurrent:\n  - {cell: gru, units: 4, reset_after: false}\nhead: {units: 1}", False),
    "gru_reset_before_masked": _tokens(
        "recurrent:\n  - {cell: gru, units: 4, reset_after: false, return_sequences: true}"
    ),
    "gru_gates_tanh": _tokens("recurrent:\n  - {cell: gru, units: 3, recurrent_activation: tanh}", False),
    "simple_rnn_relu": _tokens("recurrent:\n  - {cell: simple_rnn, units: 4, activation: relu}", False),
    "simple_rnn_relu_masked": _tokens("recurrent:\n  - {cell: simple_rnn, units: 4, activation: relu}"),
    "simple_rnn_elu": _tokens("recurrent:\n  - {cell: simple_rnn, units: 4, activation: elu}", False),
    "lstm_hard_sigmoid": _tokens(
        "recurrent:\n  - {cell: lstm, units: 4, recurrent_activation: hard_sigmoid, return_sequences: true}", False
    ),
    "lstm_softsign_masked": _tokens("recurrent:\n  - {cell: lstm, units: 4, activation: softsign}"),
    "go_backwards_native": _tokens(
        "recurrent:\n  - {cell: lstm, units: 4, go_backwards: true, return_sequences: true}\n"
        "  - {cell: gru, units: 3, go_backwards: true}",
        False,
    ),
    "go_backwards_masked": _tokens(
        "recurrent:\n  - {cell: gru, units: 4, go_backwards: true, return_sequences: true}\n"
        "  - {cell: lstm, units: 3, go_backwards: true}"
    ),
    "features_mask_value": _features("recurrent:\n  - {cell: lstm, units: 4}\nhead: {units: 1}", 0.0),
    "features_per_step": _features(
        "recurrent:\n  - {cell: gru, units: 4, return_sequences: true}\nhead: {units: 2, activation: tanh}", -1.0
    ),
    "features_native": _features("recurrent:\n  - {cell: simple_rnn, units: 4}\nhead: {units: 3, activation: elu}"),
    "dropouts": _tokens(
        "recurrent:\n  - {spatial_dropout: 0.2}\n  - {cell: lstm, units: 4, return_sequences: true}\n"
        "  - {dropout: 0.3}\n  - {cell: gru, units: 3}\n"
        "head: [{units: 5, activation: relu}, {dropout: 0.5}, {units: 2, activation: softmax}]"
    ),
    "head_list": _tokens(
        "recurrent:\n  - {cell: lstm, units: 4}\nhead:\n  - {units: 6, activation: gelu}\n"
        "  - {units: 5, activation: selu}\n  - {units: 5, activation: swish}\n  - {units: 4, activation: softplus}\n"
        "  - {units: 4, activation: hard_sigmoid}\n  - {units: 3, activation: exponential}\n"
        "  - {units: 3, activation: softsign, use_bias: false}\n  - {units: 3, activation: softmax}",
        False,
    ),
    "per_step_head": _tokens(
        "recurrent:\n  - {cell: gru, units: 4, return_sequences: true}\n"
        "head: [{units: 6, activation: gelu}, {units: 3, activation: softmax}]"
    ),
    "torch_convention": "convention: torch\n"
    + _tokens(
        "recurrent:\n  - {cell: simple_rnn, units: 3, return_sequences: true}\n"
        "  - {cell: gru, units: 3, reset_after: false, return_sequences: true}\n"
        "  - {cell: lstm, units: 4, bidirectional: true}\nhead: {units: 2}",
        False,
    ),
    "torch_convention_masked": "convention: torch\n"
    + _tokens(
        "recurrent:\n  - {cell: lstm, units: 3, return_sequences: true, bidirectional: true, merge_mode: ave}\n"
        "  - {cell: gru, units: 3, reset_after: false}"
    ),
    "no_bias": _tokens(
        "recurrent:\n  - {cell: lstm, units: 4, use_bias: false, return_sequences: true}\n"
        "  - {cell: gru, units: 3, use_bias: false, reset_after: false, return_sequences: true}\n"
        "  - {cell: gru, units: 3, use_bias: false, bidirectional: true}\n"
        "head: {units: 2, use_bias: false}"
    ),
    "no_bias_native": _tokens(
        "recurrent:\n  - {cell: gru, units: 4, use_bias: false, return_sequences: true}\n"
        "  - {cell: simple_rnn, units: 3, use_bias: false, bidirectional: true, merge_mode: mul}",
        False,
    ),
    "named_layers": _tokens(
        "recurrent:\n  - {cell: lstm, units: 4, name: enc-1, return_sequences: true}\n"
        "  - {cell: gru, units: 3, name: 2nd}\nhead: {units: 2, name: training}"
    ),
}

for _mode, _cell in (("concat", "lstm"), ("sum", "gru"), ("mul", "simple_rnn"), ("ave", "lstm")):
    for _masked in (True, False):
        for _seq in (True, False):
            SPECS[f"bidi_{_mode}_{_cell}_{'masked' if _masked else 'plain'}_{'seq' if _seq else 'last'}"] = _tokens(
                f"recurrent:\n  - {{cell: {_cell}, units: 3, bidirectional: true, merge_mode: {_mode}, "
                f"return_sequences: {str(_seq).lower()}}}\nhead: {{units: 2}}",
                _masked,
            )


# -- helpers -----------------------------------------------------------------------------------------------


def _weights(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Keras's initial weights with every bias made non-zero."""
    rng = np.random.default_rng(seed + 1)
    weights = rnnspec.initial_weights(spec, seed=seed)
    for key, value in weights.items():
        if key.rsplit("/", 1)[-1] in ("bias", "recurrent_bias"):
            weights[key] = (value + rng.normal(0.0, 0.5, size=value.shape)).astype(np.float32)
    return weights


def _inputs(spec: ModelSpec, batch: int, time: int, seed: int = 0) -> np.ndarray:
    """Rows pre-padded, post-padded, with a hole, fully padded, and unpadded (padding: 0 or mask_value)."""
    rng = np.random.default_rng(seed)
    if spec.input.vocab_size is not None:
        x = rng.integers(1, spec.input.vocab_size, size=(batch, time)).astype(np.int64)
        pad: float = 0
    else:
        x = rng.normal(size=(batch, time, spec.input.features)).astype(np.float32)
        pad = 0.0 if spec.input.mask_value is None else spec.input.mask_value
    patterns = [slice(0, time // 2), slice(time - time // 3, time), slice(time // 3, time // 3 + 2), slice(0, time)]
    for row, where in zip(x, patterns, strict=False):
        row[where] = pad
    return x


def _export(spec: ModelSpec, weights: dict[str, np.ndarray], directory: Path) -> tuple[ModuleType, object]:
    """Export, import the generated module and load its weights; returns ``(module, model in eval mode)``."""
    source, weights_file = te.export_torch(spec, weights, directory / "model.py")
    assert (source, weights_file) == (directory / "model.py", directory / "model.safetensors")
    found = importlib.util.spec_from_file_location(f"exported_{directory.name}", source)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    model = module.Model()
    model.load_state_dict(safetensors_torch.load_file(str(weights_file)))
    return module, model.eval()


def _run(model: object, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


# -- agreement with the reference ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(SPECS))
def test_outputs_match_numpy_reference(case: str, tmp_path: Path) -> None:
    spec = rnnspec.loads_spec(SPECS[case])
    weights = _weights(spec)
    _, model = _export(spec, weights, tmp_path)
    for batch, time in SIZES:
        x = _inputs(spec, batch, time)
        got, want = _run(model, x), nb.forward(spec, weights, x)
        assert got.shape == want.shape
        assert got.dtype == np.float32
        assert np.abs(got - want).max() <= TOL, f"{case} {batch}x{time}: {np.abs(got - want).max()}"


def test_native_modules_where_pytorch_computes_the_spec(tmp_path: Path) -> None:
    spec = rnnspec.loads_spec(SPECS["torch_convention"])
    _, model = _export(spec, _weights(spec), tmp_path)
    kinds = {name: type(child).__name__ for name, child in model.named_children()}
    assert kinds == {
        "embedding": "Embedding",
        "recurrent_0": "RNN",
        "recurrent_1": "Recurrent1Steps",  # GRU reset_after false: written out
        "recurrent_2": "LSTM",
        "head": "Linear",
    }
    masked = rnnspec.loads_spec(SPECS["dropouts"])
    _, model = _export(masked, _weights(masked), tmp_path / "masked")
    kinds = {name: type(child).__name__ for name, child in model.named_children()}
    # masked: the fused op on each row's valid steps (a MaskedLayer), no longer a step loop
    assert kinds["recurrent_0"] == "Recurrent0Masked" and kinds["recurrent_1"] == "Recurrent1Masked"
    assert kinds["spatial_dropout_0"] == "Dropout1d" and kinds["dropout_0"] == "Dropout"


def test_state_dict_keys_are_pytorch_names(tmp_path: Path) -> None:
    spec = rnnspec.loads_spec(SPECS["named_layers"])
    _, model = _export(spec, _weights(spec), tmp_path)
    keys = set(safetensors_torch.load_file(str(tmp_path / "model.safetensors")))
    leaves = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    recurrent = {f"{layer}.{leaf}" for layer in ("enc_1", "layer_2nd") for leaf in leaves}  # enc-1, 2nd
    assert keys == {"embedding.weight", *recurrent, "training_.weight", "training_.bias"}  # head named training
    assert keys == set(model.state_dict())
    bidi = rnnspec.loads_spec(SPECS["bidi_concat_lstm_plain_last"])
    _, model = _export(bidi, _weights(bidi), tmp_path / "bidi")
    assert "recurrent_0.weight_ih_l0_reverse" in model.state_dict()
    assert tuple(model.state_dict()["recurrent_0.weight_ih_l0"].shape) == (12, 5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_written_out_parameters_load_into_pytorch_modules(cell: str, tmp_path: Path) -> None:
    """A written-out layer's parameters are nn.LSTM's / nn.GRU's: loaded into one, they agree on unpadded input."""
    spec = rnnspec.loads_spec(_tokens(f"recurrent:\n  - {{cell: {cell}, units: 4, return_sequences: true}}"))
    _, model = _export(spec, _weights(spec), tmp_path)
    native = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(5, 4, batch_first=True)
    native.load_state_dict(model.recurrent_0.state_dict())
    h = torch.randn(3, 6, 5)
    with torch.no_grad():
        mine = model.recurrent_0(h, torch.ones(3, 6, dtype=torch.bool))
        theirs = native(h)[0]
    assert torch.abs(mine - theirs).max().item() <= TOL


def test_dropout_drops_in_train_mode(tmp_path: Path) -> None:
    spec = rnnspec.loads_spec(SPECS["dropouts"])
    _, model = _export(spec, _weights(spec), tmp_path)
    x = _inputs(spec, 5, 7)
    model.train()
    torch.manual_seed(0)
    assert not np.allclose(_run(model, x), _run(model.eval(), x))


# -- plain PyTorch: no rnnspec, only torch imports, TorchScript, torch.export ---------------------------------


def test_generated_source_imports_only_torch(tmp_path: Path) -> None:
    allowed = {"torch", "math", "typing"}
    for case in ("dropouts", "lstm_hard_sigmoid", "head_list", "features_per_step"):
        spec = rnnspec.loads_spec(SPECS[case])
        te.export_torch(spec, _weights(spec), tmp_path / case / "model.py")
        tree = ast.parse((tmp_path / case / "model.py").read_text())
        top = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                top |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                top.add((node.module or "").split(".")[0])
        assert top <= allowed, (case, top)
        anywhere = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        assert anywhere <= allowed | {"safetensors"}, (case, anywhere)  # load() reads the weights file
        assert "rnnspec" not in (tmp_path / case / "model.py").read_text().split('"""', 2)[2]


def test_loads_and_predicts_without_rnnspec(tmp_path: Path) -> None:
    spec = rnnspec.loads_spec(SPECS["dropouts"])
    weights = _weights(spec)
    te.export_torch(spec, weights, tmp_path / "model.py")
    x = _inputs(spec, 5, 7)
    want = nb.forward(spec, weights, x)
    code = (
        "import sys\n"
        "sys.modules['rnnspec'] = None\nsys.modules['rnnspec_backends'] = None\n"
        "import importlib.util, json, torch, safetensors.torch\n"
        f"found = importlib.util.spec_from_file_location('model', {str(tmp_path / 'model.py')!r})\n"
        "module = importlib.util.module_from_spec(found)\nfound.loader.exec_module(module)\n"
        "model = module.Model()\n"
        f"model.load_state_dict(safetensors.torch.load_file({str(tmp_path / 'model.safetensors')!r}))\n"
        "model.eval()\n"
        "x = torch.tensor(json.loads(sys.stdin.read()), dtype=torch.int64)\n"
        "with torch.no_grad():\n"
        "    a, b = model(x), module.load()(x)\n"
        "assert torch.equal(a, b)\n"
        "assert not any(name.startswith('rnnspec') for name, m in sys.modules.items() if m is not None)\n"
        "print(json.dumps(a.tolist()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(x.tolist()), capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    got = np.array(json.loads(result.stdout), dtype=np.float32)
    assert np.abs(got - want).max() <= TOL


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", ["stacked_native", "torch_convention_masked"])
def test_torchscript_gives_the_same_outputs(case: str, tmp_path: Path) -> None:
    spec = rnnspec.loads_spec(SPECS[case])
    _, model = _export(spec, _weights(spec), tmp_path)
    scripted = torch.jit.script(model)
    for batch, time in SIZES:
        x = _inputs(spec, batch, time)
        assert np.array_equal(_run(scripted, x), _run(model, x))


def test_torch_export_works(tmp_path: Path) -> None:
    spec = rnnspec.loads_spec(SPECS["torch_convention_masked"])
    weights = _weights(spec)
    _, model = _export(spec, weights, tmp_path)
    x = _inputs(spec, 5, 7)
    exported = torch.export.export(model, (torch.from_numpy(x),))
    got = exported.module()(torch.from_numpy(x)).detach().numpy()
    assert np.abs(got - nb.forward(spec, weights, x)).max() <= TOL


def test_refuses_a_path_that_is_not_python(tmp_path: Path) -> None:
    spec = rnnspec.loads_spec(SPECS["native_lstm"])
    with pytest.raises(RnnspecError, match=r"\.py"):
        te.export_torch(spec, _weights(spec), tmp_path / "model.pt")


# -- generated source: no value from a file name or a layer name escapes its place -----------------------------

PWN_NAME = 'a"""+str(__import__("os").system("touch PWNED"))+"""b.py'


def _load_generated(source: Path, weights_file: Path) -> object:
    found = importlib.util.spec_from_file_location("exported_hostile", source)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    model = module.Model()
    model.load_state_dict(safetensors_torch.load_file(str(weights_file)))
    return model.eval()


@pytest.mark.parametrize("name", [PWN_NAME, "my\\user.py", "a'b\"c.py", "tab\there\u00e9.py", "x\\N{y}.py"])
def test_a_file_name_runs_no_code_and_compiles(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The output's name goes into model.py's docstring escaped: the module compiles, importing it runs nothing
    of the name (no PWNED file), and it loads its weights."""
    monkeypatch.chdir(tmp_path)
    spec = rnnspec.loads_spec(SPECS["native_lstm"])
    weights = _weights(spec)
    source, weights_file = te.export_torch(spec, weights, tmp_path / name)
    text = source.read_text(encoding="utf-8")
    tree = ast.parse(text)
    assert name.removesuffix(".py") in ast.get_docstring(tree, clean=False)  # the name, as it is, in the docstring
    model = _load_generated(source, weights_file)
    assert not (tmp_path / "PWNED").exists()
    x = _inputs(spec, 3, 4)
    assert np.abs(_run(model, x) - nb.forward(spec, weights, x)).max() <= TOL


def test_dunder_layer_names_load_their_state_dict(tmp_path: Path) -> None:
    """A layer named ``__x`` would be name-mangled inside ``class Model`` (``self._Model__x``): it gets a name
    that is not, and model.py loads its own state dict."""
    spec = rnnspec.loads_spec(
        _tokens(
            "recurrent:\n  - {cell: lstm, units: 4, name: __enc, return_sequences: true}\n"
            "  - {cell: gru, units: 3, name: __dec__, reset_after: false}\nhead: {units: 2, name: _head}"
        )
    )
    weights = _weights(spec)
    source, weights_file = te.export_torch(spec, weights, tmp_path / "model.py")
    model = _load_generated(source, weights_file)
    names = [name for name, _ in model.named_children()]
    assert not any(name.startswith("_") for name in names), names
    x = _inputs(spec, 3, 5)
    assert np.abs(_run(model, x) - nb.forward(spec, weights, x)).max() <= TOL

"""Import the models people already have; export plain PyTorch, Keras and ONNX.

>>> spec, weights = import_model("tutorial.keras")  # doctest: +SKIP
>>> spec, weights = import_model("model.pt", spec="spec.yaml")  # doctest: +SKIP

Keras files are read without Keras (:mod:`.keras_files`, :mod:`.keras_import`); PyTorch state
dicts are matched to a spec (:mod:`.torch_import`); ``.pt`` files are read through the torch
backend with ``torch.load(weights_only=True)``. Exports live in the backends (:mod:`.exports`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.spec import ModelSpec

__all__ = ["ImportError_", "export", "import_model", "spec_yaml", "weights_from_model", "write_import"]


class ImportError_(RnnspecError):
    """A file that cannot be imported (its kind, or a spec that is needed and missing)."""


def _spec(spec: ModelSpec | str | Path | Mapping[str, Any] | None) -> ModelSpec | None:
    if spec is None or isinstance(spec, ModelSpec):
        return spec
    from rnnspec.core.specs import as_spec

    return as_spec(spec)


def _kind(path: Path) -> str:
    if not path.is_file():
        raise ImportError_(f"{path}: no such file (expected a .keras, .h5, .pt/.pth or .safetensors model file)")
    with path.open("rb") as fh:
        head = fh.read(8)
    name = path.name.lower()
    if name.endswith(".safetensors"):
        return "safetensors"
    if head == b"\x89HDF\r\n\x1a\n":
        return "keras"
    if head.startswith(b"PK"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            raise ImportError_(f"{path}: a damaged zip file; it may be truncated") from None
        if "config.json" in names:
            return "keras"
        if any(n.endswith("data.pkl") for n in names):
            return "torch"
        raise ImportError_(f"{path}: a zip that is neither a .keras model nor a torch.save file")
    if name.endswith((".pt", ".pth", ".bin")) or head[:2] == b"\x80\x02":
        return "torch"
    raise ImportError_(
        f"{path}: not a model file rnnspec reads; expected a Keras .keras or .h5 model, a PyTorch state_dict "
        "(.pt/.pth from torch.save, or .safetensors)"
    )


def import_model(
    path: str | Path, spec: ModelSpec | str | Path | Mapping[str, Any] | None = None, *, name: str | None = None
) -> tuple[ModelSpec, dict[str, np.ndarray]]:
    """The spec and canonical weights of a Keras model file or a PyTorch state dict.

    Keras files carry their architecture; ``spec`` (optional) then renames the layers and must
    describe the same model. A state dict holds no architecture: ``spec`` is required, and the
    returned spec is in the torch convention (both biases kept).
    """
    from rnnspec.core.weights import check_weights

    p = Path(path)
    given = _spec(spec)
    kind = _kind(p)
    if kind == "keras":
        from rnnspec.interop.keras_files import read_keras_file
        from rnnspec.interop.keras_import import keras_to_spec
        from rnnspec.lang.loader import spec_from_dict

        data, weights = keras_to_spec(read_keras_file(p), name=name)
        imported = spec_from_dict(data)
        check_weights(imported, weights)
        if given is not None:
            return given, rename_weights(imported, weights, given, str(p))
        return imported, weights
    if kind == "safetensors":
        items = _safetensors_items(p)
        if items is None:  # canonical weights written by rnnspec
            from rnnspec.runtime.models import load_weights, spec_from_weights_file

            found = given or spec_from_weights_file(p)
            return found, load_weights(p, spec=found)
    else:
        from rnnspec.core.registry import get_backend

        items = get_backend("torch").read_state_dict(p)
    if given is None:
        raise ImportError_(
            f"{p}: a PyTorch state dict holds the weights but not the architecture (activations, head); "
            "pass the spec that describes the module: --spec SPEC (Python: spec=...)"
        )
    from rnnspec.interop.torch_import import state_dict_to_weights

    found, weights = state_dict_to_weights(items, given, str(p))
    if name:
        found = found.model_copy(update={"name": name})
    check_weights(found, weights)
    return found, weights


def _safetensors_items(path: Path) -> list[tuple[str, np.ndarray]] | None:
    from rnnspec.core.weights import WEIGHTS_FORMAT, load_weights_file

    tensors, metadata = load_weights_file(path)
    if metadata.get("format") in (WEIGHTS_FORMAT,):
        return None
    return list(tensors.items())


def rename_weights(
    imported: ModelSpec, weights: dict[str, np.ndarray], target: ModelSpec, source: str
) -> dict[str, np.ndarray]:
    """``weights`` of ``imported`` under ``target``'s layer names, after checking both describe one model."""
    ours = imported.stack()
    theirs = target.stack()
    problems: list[str] = []
    if len(ours) != len(theirs):
        problems.append(
            f"{len(ours)} layers in the file ({', '.join(n for n, _ in ours)}), "
            f"{len(theirs)} in the spec ({', '.join(n for n, _ in theirs)})"
        )
    for (a_name, a), (b_name, b) in zip(ours, theirs, strict=False):
        a_fields = a.model_dump(exclude={"name"})
        b_fields = b.model_dump(exclude={"name"})
        if type(a) is not type(b):
            problems.append(f"{a_name} is a {a.keras_class} in the file, {b_name} a {b.keras_class} in the spec")
        elif a_fields != b_fields:
            diff = [f"{k}: {a_fields[k]!r} in the file, {b_fields.get(k)!r} in the spec"
                    for k in a_fields if a_fields[k] != b_fields.get(k)]  # fmt: skip
            problems.append(f"{a_name} / {b_name}: " + "; ".join(diff))
    if imported.input != target.input and not problems:
        problems.append(f"input {imported.input.model_dump()} in the file, {target.input.model_dump()} in the spec")
    if problems:
        raise ImportError_(
            f"{source}: the spec does not describe the model in the file:\n  "
            + "\n  ".join(problems)
            + "\n  fix: import without --spec to use the file's own architecture"
        )
    renamed = {}
    for (a_name, _), (b_name, _) in zip(ours, theirs, strict=True):
        prefix = f"{a_name}/"
        renamed |= {f"{b_name}/{k[len(prefix) :]}": v for k, v in weights.items() if k.startswith(prefix)}
    if target.convention != imported.convention:
        raise ImportError_(f"{source}: the spec is in the {target.convention} convention; Keras files are in keras")
    return renamed


def spec_yaml(spec: ModelSpec, origin: str) -> str:
    """A readable YAML file of ``spec``: defaults left out, one line per layer."""
    import yaml

    from rnnspec.lang.loader import spec_from_dict

    data = spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data = {"rnnspec": data.pop("rnnspec", 1.1), "name": data.pop("name", spec.name), **data}
    for section in ("embedding", "recurrent", "head"):
        if isinstance(data.get(section), dict):
            data[section] = _leading_keys(data[section])
        elif isinstance(data.get(section), list):
            data[section] = [_leading_keys(entry) for entry in data[section]]
    if spec_from_dict(data) != spec:
        data = spec.to_dict()
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
    return f"# Imported by rnnspec from {origin}\n{body}"


def _leading_keys(entry: dict[str, Any]) -> dict[str, Any]:
    first = [k for k in ("name", "cell", "units") if k in entry]
    return {**{k: entry[k] for k in first}, **{k: v for k, v in entry.items() if k not in first}}


def write_import(spec: ModelSpec, weights: dict[str, np.ndarray], directory: Path, origin: str, *,
                 overwrite: bool = False) -> list[Path]:  # fmt: skip
    """Write ``DIR/spec.yaml`` and ``DIR/weights.safetensors``, each atomically; existing files need ``overwrite``."""
    from rnnspec.core.weights import save_weights_file
    from rnnspec.util import write_text_atomic

    targets = [directory / "spec.yaml", directory / "weights.safetensors"]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise ImportError_(
            f"{', '.join(existing)} already exist; nothing was written. fix: choose another -o folder, "
            "or pass --overwrite to replace them"
        )
    if directory.exists() and not directory.is_dir():
        raise ImportError_(f"{directory} is a file, not a folder; choose a folder for -o")
    text = spec_yaml(spec, origin)
    save_weights_file(weights, targets[1], spec)
    write_text_atomic(targets[0], text)
    return targets


def weights_from_model(model: Any, spec: ModelSpec) -> dict[str, np.ndarray]:
    """Canonical weights of a plain Keras model or ``torch.nn.Module`` that ``spec`` describes."""
    from rnnspec.core.weights import check_weights

    if hasattr(model, "state_dict") and callable(model.state_dict):
        from rnnspec.interop.torch_import import state_dict_to_weights

        items = [(k, v.detach().cpu().numpy()) for k, v in model.state_dict().items()]
        found, weights = state_dict_to_weights(items, spec, type(model).__name__)
        if found.convention != spec.convention:
            raise ImportError_(
                f"a torch module keeps two biases; describe it with `convention: torch` in the spec "
                f"(spec {spec.name!r} is in the {spec.convention} convention)"
            )
        return weights
    if hasattr(model, "layers") and hasattr(model, "get_config"):
        from rnnspec.interop.keras_files import KerasFile, KerasLayer
        from rnnspec.interop.keras_import import keras_to_spec
        from rnnspec.lang.loader import spec_from_dict

        layers = [
            KerasLayer(type(layer).__name__, layer.get_config(), [np.asarray(w.numpy()) for w in layer.weights])
            for layer in model.layers
        ]
        shape = [None, *list(model.inputs[0].shape[1:])] if getattr(model, "inputs", None) else None
        kfile = KerasFile(Path(str(model.name)), "live", "3", "Sequential", str(model.name), layers,
                          build_input_shape=shape)  # fmt: skip
        data, weights = keras_to_spec(kfile)
        imported = spec_from_dict(data)
        renamed = rename_weights(imported, weights, spec, f"Keras model {model.name!r}")
        check_weights(spec, renamed)
        return renamed
    raise ImportError_(
        f"{type(model).__name__} is neither a model built by rnnspec, a Keras model nor a torch.nn.Module"
    )


def export(model: Any, format: str, path: str | Path, weights: Mapping[str, np.ndarray] | None = None) -> list[Path]:
    """Export a model built by rnnspec (or a spec with ``weights``) as ``onnx``, ``torch`` or ``keras``.

    >>> rnnspec.export(model, "onnx", "model.onnx")  # doctest: +SKIP
    >>> rnnspec.export(model, "torch", "out/model.py")  # writes model.py and model.safetensors  # doctest: +SKIP

    Returns the files written. The exported model needs no rnnspec to run.
    """
    from rnnspec.core.registry import get_exporter
    from rnnspec.runtime.models import get_weights, spec_of

    if weights is None:
        spec, values = spec_of(model), get_weights(model)
    else:
        spec = _spec(model)
        assert spec is not None
        values = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    from rnnspec.core.weights import check_weights

    check_weights(spec, values)
    return list(get_exporter(format)(spec, values, Path(path)))

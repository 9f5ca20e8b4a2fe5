"""Reading Keras model files without Keras: ``.keras`` (Keras 3 zip) and legacy HDF5 ``.h5``.

Nothing in a file is executed or imported: the architecture is read as JSON (``config.json`` in a
``.keras`` zip, the ``model_config`` attribute of an ``.h5``) and the weights as plain arrays with
h5py. The result is a :class:`KerasFile`: the model's layers in order, each with its class name,
its config and its weights in Keras's own order (``layer.weights``: trainable then non-trainable;
``Bidirectional``: forward, then backward).

Where the weights are:

- ``.keras``: ``model.weights.h5`` stores each layer under a path made from its *class* name and
  position (``layers/lstm_1/cell/vars/0``); the layer's name is only the ``name`` attribute of its
  ``vars`` group, so layers are matched by that attribute.
- ``.h5``: ``model_weights/<layer name>`` with a ``weight_names`` attribute listing the datasets in
  order (Keras 2: ``lstm/lstm_cell/kernel:0``; Keras 3: prefixed with the model name). Attribute
  arrays over 64 KB are split into ``layer_names0``, ``layer_names1``...

Hostile files: members and datasets are size-checked before they are read, links other than hard
links and external or virtual datasets are refused, and a dataset that declares far more bytes than
it stores (a decompression bomb) is refused.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnspec.core.budget import ReadBudget, foreign_bytes
from rnnspec.lang.errors import RnnspecError

__all__ = ["KerasFile", "KerasFileError", "KerasLayer", "read_keras_file"]

MAX_CONFIG_BYTES = 64 * 1024 * 1024
"""The largest architecture JSON read (a real model's config is a few KB)."""
MAX_WEIGHTS_BYTES = 8 * 1024**3
"""The largest weights member of a ``.keras`` file read into memory."""
MAX_DATASET_BYTES = 4 * 1024**3
"""The largest single weight array read."""
BOMB_RATIO = 1000
"""A compressed dataset may declare at most this many times the bytes it stores (when over 64 MiB)."""


class KerasFileError(RnnspecError):
    """A Keras model file that cannot be read (not the architecture: see the importer for that)."""


@dataclass
class KerasLayer:
    """One layer of the file: Keras's class name, its config, and its weights in Keras's order."""

    class_name: str
    config: dict[str, Any]
    weights: list[np.ndarray] = field(default_factory=list)
    inbound: list[str] = field(default_factory=list)
    """Names of the layers feeding it (functional models; empty for Sequential)."""
    mask_inbound: list[str] = field(default_factory=list)
    """Names of the entries whose outputs it takes as its ``mask`` argument (functional models)."""
    module: str | None = None
    """The entry's ``module`` (``keras.layers``; ``keras.src.ops.numpy`` for an op such as ``NotEqual``)."""
    constants: list[Any] = field(default_factory=list)
    """The plain numbers among the call's positional arguments (an op's ``NotEqual(x, 0.0)``: ``[0.0]``)."""

    @property
    def name(self) -> str:
        return str(self.config.get("name", self.class_name.lower()))


@dataclass
class KerasFile:
    """What a Keras model file holds, read without Keras."""

    path: Path
    format: str
    """``keras`` (Keras 3 zip) or ``h5`` (legacy HDF5)."""
    keras_version: str
    model_class: str
    """``Sequential``, ``Functional`` or ``Model``."""
    model_name: str
    layers: list[KerasLayer]
    input_layers: list[str] = field(default_factory=list)
    output_layers: list[str] = field(default_factory=list)
    build_input_shape: list[Any] | None = None
    foreign_modules: list[str] = field(default_factory=list)
    """``module`` values of the config outside Keras (a file naming them is refused, and never loaded)."""
    trainable: bool = True
    """The model's own ``trainable`` flag (False: every layer is frozen)."""
    compile_config: dict[str, Any] | None = None
    """What ``model.compile`` was given, as the file stores it: ``optimizer`` (``{class_name, config}``), ``loss``,
    ``metrics``, ``loss_weights``, ``weighted_metrics``... (``.keras``: ``compile_config``; ``.h5``:
    ``training_config``, its ``optimizer_config`` under ``optimizer``); None when the model was not compiled."""

    @property
    def keras_major(self) -> int:
        head = self.keras_version.split(".", 1)[0]
        return int(head) if head.isascii() and head.isdigit() and len(head) < 6 else 2


def read_keras_file(path: str | Path) -> KerasFile:
    """Read a ``.keras`` or ``.h5``/``.hdf5`` Keras model file (architecture and weights)."""
    p = Path(path)
    if not p.is_file():
        raise KerasFileError(f"{p}: no such file (expected a .keras or .h5 Keras model file)")
    with p.open("rb") as fh:
        magic = fh.read(8)
    budget = ReadBudget(p, error=KerasFileError)
    fix = "fix: save the model again with `model.save('model.keras')`"
    if magic.startswith(b"PK"):
        with foreign_bytes(p, ".keras file", fix, KerasFileError):
            return _read_zip(p, budget)
    if magic == b"\x89HDF\r\n\x1a\n":
        with foreign_bytes(p, "Keras HDF5 file", fix, KerasFileError):
            return _read_h5(p, budget)
    raise KerasFileError(
        f"{p}: not a Keras model file (neither a .keras zip nor an HDF5 file); "
        "expected a file written by `model.save(...)`"
    )


# -- .keras (zip) -----------------------------------------------------------------------------------


def _read_zip(path: Path, budget: ReadBudget) -> KerasFile:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise KerasFileError(f"{path}: not a readable .keras file ({exc}); it may be truncated") from None
    with zf:
        infos = zf.infolist()
        budget.count("zip members", len(infos))
        members = {info.filename: info for info in infos}
        if "config.json" not in members:
            raise KerasFileError(
                f"{path}: a zip without config.json, so not a Keras 3 model file; "
                "fix: save the whole model with `model.save('model.keras')`"
            )
        config = _json(_member(zf, members["config.json"], MAX_CONFIG_BYTES, path, budget), path, "config.json")
        metadata: dict[str, Any] = {}
        if "metadata.json" in members:
            raw = _member(zf, members["metadata.json"], MAX_CONFIG_BYTES, path, budget)
            metadata = _json(raw, path, "metadata.json")
        if "model.weights.h5" not in members:
            if "model.weights.npz" in members:
                raise KerasFileError(f"{path}: weights saved in the npz format are not read; save with the default h5")
            raise KerasFileError(f"{path}: the file holds no model.weights.h5")
        weights_raw = _member(zf, members["model.weights.h5"], MAX_WEIGHTS_BYTES, path, budget)
    model = _model_config(config, path)
    version = str(metadata.get("keras_version", "3"))
    kfile = _kfile(path, "keras", version, model)
    kfile.compile_config = _compile_config(config.get("compile_config"))
    import h5py

    try:
        with h5py.File(io.BytesIO(weights_raw), "r") as h5:
            _attach_zip_weights(kfile, h5, budget)
    except OSError as exc:
        raise KerasFileError(f"{path}: model.weights.h5 is not a readable HDF5 file ({exc})") from None
    return kfile


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, path: Path, budget: ReadBudget) -> bytes:
    from rnnspec.util import available_memory, human_bytes

    free = available_memory()
    if free is not None and 2 * info.file_size > free:
        raise KerasFileError(
            f"{path}: member {info.filename} holds {human_bytes(info.file_size)}, more than half the memory the "
            f"machine has available ({human_bytes(free)}); free memory or use a larger machine"
        )
    if info.file_size > limit:
        raise KerasFileError(
            f"{path}: member {info.filename} declares {info.file_size:,} bytes, over the {limit:,} rnnspec reads for "
            "it; a model's config is a few KB. fix: save the model again with model.save(), or check the file came "
            "from Keras"
        )
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > 100 * max(info.compress_size, 1):
        raise KerasFileError(
            f"{path}: member {info.filename} inflates {info.file_size // max(info.compress_size, 1)}-fold "
            "(a decompression bomb?); Keras writes members uncompressed"
        )
    if info.flag_bits & 0x1:
        raise KerasFileError(f"{path}: member {info.filename} is encrypted; Keras never encrypts its files")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise KerasFileError(
            f"{path}: member {info.filename} uses zip compression method {info.compress_type}; Keras writes "
            "stored or deflated members only. fix: save the model again with `model.save('model.keras')`"
        )
    budget.charge(info.file_size, f"member {info.filename}")
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise KerasFileError(f"{path}: member {info.filename} is larger than it declares")
    return data


def _attach_zip_weights(kfile: KerasFile, h5: Any, budget: ReadBudget) -> None:
    root = _child(h5, "layers", kfile.path) or _child(h5, "_layer_checkpoint_dependencies", kfile.path)
    by_name: dict[str, Any] = {}
    if root is not None:
        for key in root:
            budget.count("layer groups")
            group = _child(root, key, kfile.path)
            vars_group = _child(group, "vars", kfile.path) if _is_group(group) else None
            name = vars_group.attrs.get("name") if vars_group is not None else None
            by_name[_text(name) if name is not None else key] = group
    for layer in kfile.layers:
        group = by_name.get(layer.name)
        layer.weights = _zip_layer_weights(group, kfile.path, budget) if group is not None else []


_SUBOBJECTS = ("forward_layer", "backward_layer", "layer", "cell")
"""Attribute paths of the wrapped objects, in the order Keras lists their weights."""


def _zip_layer_weights(group: Any, path: Path, budget: ReadBudget) -> list[np.ndarray]:
    """The weights under a layer's group and its wrapped objects', walked without recursion.

    A group met again on the way down (a hard-link cycle) is refused, and the depth is bounded.
    """
    out: list[np.ndarray] = []
    stack: list[tuple[Any, int, frozenset[Any]]] = [(group, 0, frozenset())]
    while stack:
        node, level, above = stack.pop()
        budget.depth(level, f"{group.name}", limit=64)
        if node.id in above:
            raise KerasFileError(f"{path}: {node.name} links back to a group above it (an HDF5 link cycle); refused")
        above = above | {node.id}
        vars_group = _child(node, "vars", path)
        if vars_group is not None:
            keys = list(vars_group)
            if sorted(keys) != sorted(str(i) for i in range(len(keys))):
                others = [k for k in keys if not (k.isascii() and k.isdigit())] or keys
                raise KerasFileError(
                    f"{path}: {vars_group.name} holds {', '.join(repr(k) for k in others[:5])}, not only the "
                    "numbered weights 0, 1, ... Keras writes; Keras itself refuses to load such a file. fix: save "
                    "the model again with model.save()"
                )
            out += [_dataset(_child(vars_group, k, path), path, budget) for k in sorted(keys, key=int)]
        children = [_child(node, sub, path) for sub in _SUBOBJECTS]
        stack += [(c, level + 1, above) for c in reversed(children) if c is not None and _is_group(c)]
    return out


# -- legacy .h5 -----------------------------------------------------------------------------------


def _read_h5(path: Path, budget: ReadBudget) -> KerasFile:
    import h5py

    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise KerasFileError(f"{path}: not a readable HDF5 file ({exc}); it may be truncated") from None
    with h5:
        raw_config = h5.attrs.get("model_config")
        if raw_config is None:
            raise KerasFileError(
                f"{path}: the HDF5 file holds no model_config, so weights only (`save_weights`); "
                "rnnspec needs the architecture: save the whole model with `model.save('model.keras')` (or 'model.h5')"
            )
        text = _text(raw_config)
        if len(text) > MAX_CONFIG_BYTES:
            raise KerasFileError(f"{path}: model_config is larger than {MAX_CONFIG_BYTES} bytes")
        config = _json(text.encode(), path, "model_config")
        version = _text(h5.attrs.get("keras_version", "1"))
        kfile = _kfile(path, "h5", version, _model_config(config, path))
        raw_training = h5.attrs.get("training_config")
        if raw_training is not None:
            training = _text(raw_training)
            if len(training) > MAX_CONFIG_BYTES:
                raise KerasFileError(f"{path}: training_config is larger than {MAX_CONFIG_BYTES} bytes")
            kfile.compile_config = _compile_config(_json(training.encode(), path, "training_config"))
        weights_root = _child(h5, "model_weights", path)
        if weights_root is None:
            weights_root = h5
        for layer in kfile.layers:
            group = _child(weights_root, layer.name, path)
            layer.weights = _h5_layer_weights(group, path, budget) if group is not None else []
    return kfile


def _h5_layer_weights(group: Any, path: Path, budget: ReadBudget) -> list[np.ndarray]:
    names = _chunked_attr(group, "weight_names")
    budget.count("weight names", len(names))
    out = []
    for name in names:
        node = group
        parts = name.split("/")
        budget.depth(len(parts), f"weight {name[:80]!r}", limit=64)
        for part in parts:
            node = _child(node, part, path)
            if node is None:
                raise KerasFileError(f"{path}: weight {name!r} is listed in {group.name} but missing")
        out.append(_dataset(node, path, budget))
    return out


def _chunked_attr(group: Any, key: str) -> list[str]:
    if key in group.attrs:
        values = group.attrs[key]
    else:
        values = []
        k = 0
        while f"{key}{k}" in group.attrs:
            values = [*list(values), *list(group.attrs[f"{key}{k}"])]
            k += 1
    return [_text(v) for v in np.asarray(values).reshape(-1)] if len(values) else []


# -- shared -----------------------------------------------------------------------------------------


def _json(raw: bytes, path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise KerasFileError(f"{path}: {what} is not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(value, dict):
        raise KerasFileError(f"{path}: {what} is not a JSON object")
    return value


def _compile_config(value: Any) -> dict[str, Any] | None:
    """The compile settings of a ``.keras`` ``compile_config`` or an ``.h5`` ``training_config`` (Keras 2 and 3),
    the optimizer under ``optimizer``; None for an uncompiled model (absent, ``null`` or ``{}``)."""
    if not isinstance(value, dict) or not value:
        return None
    out = dict(value)
    if "optimizer_config" in out and "optimizer" not in out:
        out["optimizer"] = out.pop("optimizer_config")
    return out


def _model_config(config: dict[str, Any], path: Path) -> dict[str, Any]:
    if not isinstance(config.get("config"), dict) or not isinstance(config.get("class_name"), str):
        raise KerasFileError(f"{path}: the model config has no class_name/config; not a Keras model file")
    return config


def _kfile(path: Path, fmt: str, version: str, model: dict[str, Any]) -> KerasFile:
    cfg = model["config"]
    raw_layers = cfg.get("layers")
    if not isinstance(raw_layers, list):
        raise KerasFileError(
            f"{path}: the model ({model['class_name']}) has no layer list; only Sequential and functional "
            "models are read"
        )
    layers = []
    for entry in raw_layers:
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise KerasFileError(f"{path}: a layer entry of the model config is not an object")
        module = entry.get("module")
        layers.append(
            KerasLayer(
                str(entry.get("class_name")),
                entry["config"],
                inbound=_inbound(entry),
                mask_inbound=_inbound(entry, masks=True),
                module=module if isinstance(module, str) else None,
                constants=_constants(entry),
            )
        )
        if "name" in entry and "name" not in entry["config"]:
            entry["config"]["name"] = entry["name"]
    return KerasFile(
        path=path,
        format=fmt,
        keras_version=version,
        model_class=str(model["class_name"]),
        model_name=str(cfg.get("name", "model")),
        layers=layers,
        input_layers=_endpoint_names(cfg.get("input_layers")),
        output_layers=_endpoint_names(cfg.get("output_layers")),
        build_input_shape=cfg.get("build_input_shape"),
        foreign_modules=sorted(_foreign_modules(model)),
        trainable=cfg.get("trainable", True) is not False,
    )


def _foreign_modules(value: Any) -> set[str]:
    """Every ``module`` named in the config that is not Keras's own (``keras``, ``keras.src...``).

    Searched with a stack, not recursion, so a key nested at any depth the JSON parser accepted is seen.
    """
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module = item.get("module")
            if isinstance(module, str) and module.split(".")[0] != "keras":
                found.add(module)
            stack += item.values()
        elif isinstance(item, list):
            stack += item
    return found


def _inbound(entry: dict[str, Any], masks: bool = False) -> list[str]:
    """Names of the layers whose outputs a functional layer takes (Keras 3 and Keras 2 node formats); with
    ``masks``, those it takes as its ``mask`` argument instead (Keras 3: the ``mask`` keyword of the call)."""
    names: list[str] = []

    def walk(value: Any, in_mask: bool = False) -> None:
        if isinstance(value, dict):
            config = value.get("config")
            history = config.get("keras_history") if value.get("class_name") and isinstance(config, dict) else None
            if isinstance(history, list) and history:
                if in_mask == masks:
                    names.append(str(history[0]))
                return
            for key, item in value.items():
                walk(item, in_mask or key == "mask")
        elif isinstance(value, list):
            if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
                if in_mask == masks:
                    names.append(value[0])  # Keras 2: [layer_name, node_index, tensor_index, kwargs]
                return
            for item in value:
                walk(item, in_mask)

    walk(entry.get("inbound_nodes", []))
    return names


def _constants(entry: dict[str, Any]) -> list[Any]:
    """The plain numbers among the positional arguments of an entry's first call (Keras 3's node format)."""
    nodes = entry.get("inbound_nodes")
    node = nodes[0] if isinstance(nodes, list) and nodes else None
    args = node.get("args") if isinstance(node, dict) else None
    if not isinstance(args, list):
        return []
    return [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]


def _endpoint_names(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    if value and isinstance(value[0], str):
        return [value[0]]
    return [str(v[0]) for v in value if isinstance(v, list) and v]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _is_group(node: Any) -> bool:
    import h5py

    return isinstance(node, h5py.Group)


def _child(group: Any, key: str, path: Path) -> Any:
    """``group[key]`` for hard links only; None when absent. Soft and external links are refused."""
    import h5py

    if group is None or key not in group:
        return None
    link = group.get(key, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise KerasFileError(f"{path}: {group.name}/{key} is a {type(link).__name__}; only plain HDF5 data is read")
    return group[key]


def _dataset(node: Any, path: Path, budget: ReadBudget) -> np.ndarray:
    """The array of ``node``, charged to the file's budget; a dataset reached again (a hard link, a
    repeated ``weight_names`` entry) is the same array, read and charged once."""
    budget.count("datasets")
    key = ("dataset", node.id) if hasattr(node, "id") else None
    cached = budget.cache.get(key) if key is not None else None
    if cached is not None:
        return cached
    value = _read_dataset(node, path, budget)
    if key is not None:
        budget.cache[key] = value
    return value


def _read_dataset(node: Any, path: Path, budget: ReadBudget) -> np.ndarray:
    import h5py

    if not isinstance(node, h5py.Dataset):
        raise KerasFileError(f"{path}: {node.name} is not a dataset")
    if node.is_virtual or node.external:
        raise KerasFileError(f"{path}: {node.name} refers to data outside the file; refused")
    if node.dtype.kind not in "fiu":
        raise KerasFileError(f"{path}: {node.name} holds {node.dtype}, not numbers")
    declared = int(np.prod(node.shape, dtype=np.float64) * node.dtype.itemsize)
    if declared > MAX_DATASET_BYTES:
        raise KerasFileError(
            f"{path}: {node.name} declares {declared:,} bytes, over the {MAX_DATASET_BYTES:,} rnnspec reads for one "
            "weight. fix: check the file came from Keras; a model this large is beyond what rnnspec imports"
        )
    stored = node.id.get_storage_size()
    if declared > 64 * 1024**2 and declared > BOMB_RATIO * max(stored, 1):
        raise KerasFileError(f"{path}: {node.name} declares {declared} bytes but stores {stored} (a bomb?); refused")
    budget.charge(declared, f"dataset {node.name}")
    return np.asarray(node[()])

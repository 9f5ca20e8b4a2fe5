"""Canonical weights: one naming and layout shared by every backend, and Keras's seeded initialisation.

Names are ``LAYER/WEIGHT`` with the layer names of the analysis. Shapes and gate order are
Keras's (kernels ``(inputs, gates·units)``; LSTM gates i, f, c, o; GRU gates z, r, h):

==========================================  ==========================  =====================================
name                                        shape                       notes
==========================================  ==========================  =====================================
``embedding/embeddings``                    ``(vocab_size, output_dim)``
``L/kernel``                                ``(inputs, gates·units)``
``L/recurrent_kernel``                      ``(units, gates·units)``
``L/bias``                                  ``(gates·units,)``          input bias; GRU with two bias
                                                                        vectors: ``(2, 3·units)``, row 0
                                                                        input, row 1 recurrent (Keras)
``L/recurrent_bias``                        ``(gates·units,)``          torch convention, SimpleRNN and LSTM
                                                                        and GRU ``reset_after: false``:
                                                                        PyTorch's ``bias_hh``
``L/forward/...``, ``L/backward/...``       as above                    bidirectional layers
``head/kernel``, ``head/bias``              ``(inputs, units)``, ``(units,)``
``L/gamma``, ``L/beta``                     ``(features,)``             ``layer_norm`` with ``scale`` /
                                                                        ``center``, both conventions
``L/kernel``, ``L/bias`` (``conv1d``)       ``(kernel_size, inputs,     Keras's Conv1D layout, both
                                            filters)``, ``(filters,)``  conventions; PyTorch's
                                                                        ``nn.Conv1d`` weight is
                                                                        ``kernel.transpose(2, 1, 0)``
                                                                        ``(filters, inputs, kernel_size)``
==========================================  ==========================  =====================================

``bias`` is PyTorch's ``bias_ih``. In the torch convention a GRU with ``reset_after: true``
keeps Keras's ``(2, 3·units)`` bias (its two rows are ``bias_ih`` and ``bias_hh``), so the same
file serves both conventions for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rnnspec.lang.analysis import analyze
from rnnspec.lang.errors import RnnspecError
from rnnspec.lang.layers import Convention, RecurrentLayer
from rnnspec.lang.spec import ModelSpec
from rnnspec.util import is_int_at_least

__all__ = [
    "WEIGHTS_FORMAT",
    "WeightsError",
    "check_finite",
    "check_seed",
    "check_weights",
    "initial_weights",
    "load_weights_file",
    "permute_gates",
    "save_weights_file",
    "spec_from_weights_file",
    "weight_shapes",
]

WEIGHTS_FORMAT = "rnnspec-weights/1"
Shape = tuple[int, ...]


class WeightsError(RnnspecError):
    """Weights that do not fit a spec, or a weights file that cannot be read."""


def weight_shapes(spec: ModelSpec, convention: Convention | None = None) -> dict[str, Shape]:
    """Every canonical weight name of ``spec`` and its shape, bottom layer first (declared by each layer kind)."""
    conv: Convention = convention or spec.convention
    out: dict[str, Shape] = {}
    for row in analyze(spec, conv).layers:
        assert row.layer is not None
        out.update(
            {f"{row.name}/{leaf}": shape for leaf, shape in row.layer.weight_shapes(row.input_dim, conv).items()}
        )
    return out


def permute_gates(
    array: np.ndarray, layer: RecurrentLayer, framework: str, *, axis: int = -1, inverse: bool = False
) -> np.ndarray:
    """``array``'s gate blocks along ``axis`` from Keras's canonical order to ``framework``'s (``torch``,
    ``onnx``), as the layer kind declares them (:meth:`RecurrentLayer.gate_index`); ``inverse``: back to Keras's.

    The one place a gate order is applied: GRU z, r, h ↔ PyTorch's r, z, n; LSTM i, f, c, o → ONNX's
    i, o, f, c. A GRU with two bias rows ``(2, 3·units)`` is permuted along its last axis.

    >>> from rnnspec.lang.layers import GRUSpec
    >>> gru = GRUSpec(cell="gru", units=1)
    >>> permute_gates(np.array([10, 20, 30]), gru, "torch").tolist()
    [20, 10, 30]
    """
    index = layer.gate_index(framework, layer.units)
    if inverse:
        index = np.argsort(index).tolist()
    return np.take(np.asarray(array), index, axis=axis)


# -- Keras's default initializers, in NumPy -------------------------------------------------------


def check_seed(seed: object) -> None:
    """A seed is None or an integer from 0 to 2**32-1 (what NumPy's legacy generator and Keras take), else a clear
    error."""
    if seed is not None and not (is_int_at_least(seed, 0) and int(seed) < 2**32):  # type: ignore[call-overload]
        raise WeightsError(f"a seed must be an integer from 0 to 2**32-1 (4294967295) or None, received {seed!r}")


def _glorot_uniform(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Keras ``GlorotUniform``: fans over the last two axes, times the receptive field (the product of the others:
    a Conv1D kernel ``(kernel_size, inputs, filters)`` has fans ``kernel_size·inputs`` and ``kernel_size·filters``)."""
    field = int(np.prod(shape[:-2], dtype=np.int64)) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * field, shape[-1] * field
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def _orthogonal(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Keras ``Orthogonal``: QR of a normal matrix; rows orthonormal when rows < columns."""
    rows, cols = shape
    flat = (max(rows, cols), min(rows, cols))
    a = rng.standard_normal(flat)
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q.reshape(shape)


_INITIALIZERS = {
    "uniform_0.05": lambda rng, shape, layer: rng.uniform(-0.05, 0.05, size=shape),
    "glorot_uniform": lambda rng, shape, layer: _glorot_uniform(rng, shape),
    "orthogonal": lambda rng, shape, layer: _orthogonal(rng, shape),
    "zeros": lambda rng, shape, layer: np.zeros(shape),
    "ones": lambda rng, shape, layer: np.ones(shape),
    "lstm_forget_bias": lambda rng, shape, layer: _forget_bias(shape, layer.units),
}
"""Keras's default initializers by the names the layer kinds declare (:meth:`LayerSpec.initializers`)."""


def _forget_bias(shape: Shape, units: int) -> np.ndarray:
    value = np.zeros(shape)
    value[units : 2 * units] = 1.0
    return value


def memory_needed(spec: ModelSpec, copies: int = 1, convention: Convention | None = None) -> int:
    """Bytes that building ``spec`` takes at its peak: the float32 weights ``1 + copies`` times (the canonical
    arrays and the framework's own), plus the float64 draw of the largest array while it is initialised."""
    shapes = weight_shapes(spec, convention)
    sizes = [int(np.prod(shape, dtype=np.float64)) for shape in shapes.values()]
    return 4 * sum(sizes) * (1 + copies) + 8 * max(sizes, default=0)


def check_fits_memory(spec: ModelSpec, what: str, copies: int = 1, convention: Convention | None = None) -> None:
    """Refuse, with the numbers, a model whose weights do not fit in the memory the machine has available."""
    from rnnspec.util import available_memory, human_bytes

    need = memory_needed(spec, copies, convention)
    free = available_memory()
    if free is not None and need > free:
        params = sum(int(np.prod(s, dtype=np.float64)) for s in weight_shapes(spec, convention).values())
        raise WeightsError(
            f"{what} of {spec.name!r} needs about {human_bytes(need)} ({params:,} parameters as float32, with "
            f"the copies made while building), but the machine has {human_bytes(free)} available. "
            "fix: make the model smaller (vocab_size, output_dim, units), or use a machine with more memory"
        )


def initial_weights(
    spec: ModelSpec, seed: int | None = None, convention: Convention | None = None
) -> dict[str, np.ndarray]:
    """Fresh float32 weights for ``spec`` drawn with Keras's default initializers.

    Kernels glorot-uniform (over the whole ``(inputs, gates·units)`` matrix, as Keras), recurrent
    kernels orthogonal, biases zero with the LSTM forget-gate slice 1 when ``unit_forget_bias``,
    embeddings uniform in ±0.05. The same seed gives the same weights on every backend.
    """
    check_seed(seed)
    check_fits_memory(spec, "drawing the initial weights", copies=0, convention=convention)
    rng = np.random.default_rng(seed)
    conv: Convention = convention or spec.convention
    out: dict[str, np.ndarray] = {}
    for row in analyze(spec, conv).layers:
        layer = row.layer
        assert layer is not None
        kinds = layer.initializers()
        for leaf, shape in layer.weight_shapes(row.input_dim, conv).items():
            init = _INITIALIZERS[kinds[leaf.rsplit("/", 1)[-1]]]
            out[f"{row.name}/{leaf}"] = np.asarray(init(rng, shape, layer)).astype(np.float32)
    return out


# -- checking and files --------------------------------------------------------------------------


def check_weights(spec: ModelSpec, weights: Mapping[str, np.ndarray], convention: Convention | None = None) -> None:
    """Raise :class:`WeightsError` listing every missing, unexpected or mis-shaped weight."""
    expected = weight_shapes(spec, convention)
    problems = []
    for name, shape in expected.items():
        if name not in weights:
            problems.append(f"missing {name} (expected shape {shape})")
        elif tuple(np.shape(weights[name])) != shape:
            problems.append(f"{name}: shape {tuple(np.shape(weights[name]))}, expected {shape}")
    problems += [f"unexpected {name} (not a weight of this spec)" for name in weights if name not in expected]
    if problems:
        from rnnspec.core.budget import cap_lines

        conv = convention or spec.convention
        raise WeightsError(
            f"the weights do not fit spec {spec.name!r} ({conv} convention):\n  "
            + "\n  ".join(cap_lines(problems, indent=""))
            + "\n  fix: use weights saved for this spec, or the spec they were saved with (a weights file written by "
            + "rnnspec carries it: give the run folder alone, without a spec)"
        )


def save_weights_file(
    weights: Mapping[str, np.ndarray],
    path: str | Path,
    spec: ModelSpec | None = None,
    convention: Convention | None = None,
) -> None:
    """Write canonical weights as safetensors (atomically), with the spec in the metadata."""
    from safetensors.numpy import save

    from rnnspec.util import write_bytes_atomic

    metadata = {"format": WEIGHTS_FORMAT}
    if spec is not None:
        check_weights(spec, weights, convention)
        metadata["spec"] = json.dumps(spec.to_dict(), sort_keys=True)
        metadata["convention"] = convention or spec.convention
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    write_bytes_atomic(path, save(tensors, metadata=metadata))


MAX_HEADER_BYTES = 100 * 1024 * 1024
"""safetensors' own limit on the JSON header."""
_FLOAT_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "BF16": None}
"""Weight dtypes read: float32 as is; float16 and bfloat16 widen exactly to float32; float64 is rounded."""


def load_weights_file(
    path: str | Path, *, allow_nonfinite: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors weights file: ``(weights, metadata)``, float32 arrays. No pickle is involved.

    The header is read and checked first (its size, the tensors' offsets against the file's size,
    the memory it needs against what the machine has), so a truncated, sparse or hostile file is
    refused before any large read. Float16/bfloat16/float64 tensors become float32; integer and
    boolean tensors are refused (weights are real numbers). NaN or infinite values are refused
    unless ``allow_nonfinite``.
    """
    p = Path(path)
    if p.is_dir():
        raise WeightsError(f"{path} is a folder; name the .safetensors weights file inside it")
    if not p.is_file():
        raise WeightsError(f"{path}: no such weights file (expected a .safetensors file written by rnnspec)")
    from rnnspec.core.budget import foreign_bytes

    fix = "it may be truncated or corrupted. fix: write it again with `rnnspec build -o` or `rnnspec.save_weights`"
    with foreign_bytes(path, "safetensors file", fix, WeightsError):
        tensors, metadata = _read_safetensors(p)
    if not allow_nonfinite:
        check_finite(tensors, str(path))
    return tensors, metadata


def check_finite(tensors: Mapping[str, np.ndarray], where: str, what: str = "weight") -> None:
    """Refuse tensors holding NaN or infinite values, naming each (first 5) with its count of such values.

    The one check of every path weights enter by (weights files, imports, checkpoints); callers skip it
    for ``allow_nonfinite``."""
    bad = []
    for name, value in tensors.items():
        arr = np.asarray(value)
        if arr.dtype.kind in "fc":
            count = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if count:
                bad.append(f"{name} ({count:,} of {arr.size:,} values)")
    if bad:
        raise WeightsError(
            f"{where}: {len(bad)} {what}(s) hold NaN or infinite values: {', '.join(bad[:5])}"
            f"{f', and {len(bad) - 5} more' if len(bad) > 5 else ''}; a model with them computes NaN. fix: use the "
            "weights of the last finite epoch, or pass --allow-nonfinite (Python: allow_nonfinite=True) to inspect them"
        )


def _read_safetensors(p: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from rnnspec.util import available_memory, human_bytes

    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ValueError("file shorter than the safetensors header")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise ValueError(f"its header claims {n:,} bytes in a file of {size:,}")
        header = json.loads(fh.read(n))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        metadata = header.pop("__metadata__", None) or {}
        try:
            spans = {name: _span(name, entry) for name, entry in header.items()}
        except WeightsError as exc:
            raise WeightsError(f"{p}: {exc}") from None
        _check_disjoint(spans)
        data_bytes = max((end for _, end, _, _ in spans.values()), default=0)
        if 8 + n + data_bytes != size:
            raise ValueError(f"the header describes {data_bytes:,} bytes of tensors, the file holds {size - 8 - n:,}")
        free = available_memory()
        if free is not None and 2 * data_bytes > free:
            raise WeightsError(
                f"{p}: the weights need {human_bytes(data_bytes)} (twice that while read), but the machine has "
                f"{human_bytes(free)} available. fix: free memory, or check that this is the right file"
            )
        raw = fh.read(data_bytes)
    return {name: _tensor(name, raw, *span) for name, span in spans.items()}, {
        str(k): str(v) for k, v in dict(metadata).items()
    }


def _span(name: str, entry: object) -> tuple[int, int, str, tuple[int, ...]]:
    if not isinstance(entry, dict):
        raise ValueError(f"tensor {name!r} has no description")
    begin, end = entry["data_offsets"]
    dims = entry["shape"]
    if not isinstance(dims, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise ValueError(f"tensor {name!r} has shape {str(dims)[:80]}, not a list of integers")
    if len(dims) > 64:
        raise ValueError(f"tensor {name!r} has {len(dims)} dimensions")
    shape = tuple(dims)
    dtype = str(entry["dtype"])
    if dtype not in _FLOAT_DTYPES:
        raise WeightsError(
            f"tensor {name!r} holds {dtype} values; weights are floating-point (F32, F16, BF16, F64). "
            "fix: save the model's float weights"
        )
    itemsize = 2 if dtype in ("F16", "BF16") else np.dtype(_FLOAT_DTYPES[dtype]).itemsize
    count = 1
    for d in shape:
        if d < 0:
            raise ValueError(f"tensor {name!r} has a negative dimension")
        count *= d
    if not (0 <= begin <= end) or end - begin != count * itemsize:
        raise ValueError(f"tensor {name!r}: offsets {begin}..{end} do not hold shape {shape} of {dtype}")
    return int(begin), int(end), dtype, shape


def _check_disjoint(spans: Mapping[str, tuple[int, int, str, tuple[int, ...]]]) -> None:
    """Tensors must not share bytes: each would be copied out separately, so overlapping spans would let a
    small file ask for many times its size (safetensors' own format forbids overlaps)."""
    previous_end, previous = 0, None
    for name, (begin, end, _, _) in sorted(spans.items(), key=lambda item: (item[1][0], item[1][1])):
        if begin < previous_end:
            raise ValueError(
                f"tensors {previous!r} and {name!r} share bytes (offsets overlap at {begin}); each tensor must "
                "have bytes of its own"
            )
        if end > begin:
            previous_end, previous = end, name


def _tensor(name: str, raw: bytes, begin: int, end: int, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    buffer = raw[begin:end]
    if dtype == "BF16":
        bits = np.frombuffer(buffer, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return (
        np.frombuffer(buffer, dtype=np.dtype(_FLOAT_DTYPES[dtype]).newbyteorder("<")).astype(np.float32).reshape(shape)
    )


def to_keras_convention(spec: ModelSpec, weights: Mapping[str, np.ndarray]) -> tuple[ModelSpec, dict[str, np.ndarray]]:
    """``spec`` and ``weights`` in the keras convention: each ``recurrent_bias`` added into its ``bias``.

    The sum is what both biases contribute (``x·W + b_ih + h·U + b_hh``), so outputs agree to float
    rounding. A GRU with ``reset_after: false`` adds its recurrent bias inside the candidate, where
    Keras has none: refused unless that bias is zero.
    """
    from rnnspec.lang.layers import GRUSpec
    from rnnspec.lang.loader import spec_from_dict

    if spec.convention == "keras":
        return spec, dict(weights)
    out = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items() if not k.endswith("/recurrent_bias")}
    stacks = dict(spec.stack())
    for key, value in weights.items():
        if not key.endswith("/recurrent_bias"):
            continue
        layer = stacks[key.split("/", 1)[0]]
        if isinstance(layer, GRUSpec) and not layer.reset_after and np.any(value != 0):
            raise WeightsError(
                f"{key}: a GRU with reset_after: false and a non-zero recurrent bias has no keras-convention "
                "form (Keras's GRU(reset_after=False) has one bias). fix: keep `convention: torch` (rnnspec's "
                "keras backend builds it with its own cell)"
            )
        bias_key = key[: -len("recurrent_bias")] + "bias"
        out[bias_key] = (np.asarray(weights[bias_key], dtype=np.float64) + value).astype(np.float32)
    return spec_from_dict({**spec.to_dict(), "convention": "keras"}), out


def spec_from_weights_file(path: str | Path) -> ModelSpec:
    """The spec embedded in a weights file written by rnnspec."""
    _, metadata = load_weights_file(path)
    if "spec" not in metadata:
        raise WeightsError(f"{path}: the file carries no spec; pass the spec file too")
    from rnnspec.lang.loader import loads_spec

    return loads_spec(metadata["spec"], file=f"{path} (embedded spec)", fmt="json")

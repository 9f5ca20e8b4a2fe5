"""The porting mistakes people make between Keras and PyTorch, as hypotheses that can be tested.

Each :class:`Mistake` changes the reference computation the way the mistake changes a model: a weight
transformation (gate blocks swapped, a kernel transposed, a bias left out), a spec change (no mask,
the reset gate before the matmul, no output activation) or a semantic variant of the NumPy reference
(the backward direction read at the wrong end). A model that differs from the reference but agrees
with one mistaken reference is reported as making that mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnspec.core.kinds import DuplicateKindError
from rnnspec.core.weights import permute_gates
from rnnspec.lang.layers import GRUSpec, LayerNormSpec, RecurrentLayer
from rnnspec.lang.spec import ModelSpec

__all__ = ["CATALOGUE", "Catalogue", "Mistake", "mistakes_for", "reference"]

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class Mistake:
    """One porting mistake: its name, the sentence that names it, and how it changes the reference."""

    name: str
    text: str
    """Completes "the {model} behaves as if ...", with the fix."""
    weights: Callable[[Weights], Weights] = field(default=lambda w: w)
    spec: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    variant: str | None = None
    """A semantic variant the NumPy backend computes (``backward_wrong_end``)."""
    compute: Callable[[ModelSpec, Weights, np.ndarray], np.ndarray] | None = None
    """The mistaken model's forward pass, built from reference passes (:func:`plain`): which step is read, which
    axis is time (``first_step``, ``post_padding``, ``batch_first``)."""
    outputs: Callable[[np.ndarray], np.ndarray] | None = None
    """What the mistake does to the outputs (a second softmax, a log)."""
    evidence: str = ""
    """The clue in the report that points to it, in words (a weight's gradient exactly 0, the rows that agree)."""
    observed: str | None = None
    """Not computed but observed on the model itself: ``random`` (its outputs change from one call to the next)."""


def reference(spec: ModelSpec, weights: Weights, x: np.ndarray, mistake: Mistake | None = None) -> np.ndarray:
    """The NumPy reference's outputs (float64) for ``spec`` (torch convention) and ``weights``, made as
    ``mistake`` would make them."""
    from rnnspec.core.backend import ReferenceVariants
    from rnnspec.core.registry import get_backend, reference_backend
    from rnnspec.lang.loader import spec_from_dict

    numpy_backend = get_backend(reference_backend())
    assert isinstance(numpy_backend, ReferenceVariants), "the reference backend computes the mistakes' variants"
    if mistake is None:
        return np.asarray(numpy_backend.forward_with(spec, weights, x, None))
    if mistake.observed is not None:
        raise ValueError(f"{mistake.name} is observed on the model, not computed")
    weights = mistake.weights({k: np.asarray(v, dtype=np.float64) for k, v in weights.items()})
    if mistake.spec is not None:
        spec = spec_from_dict(mistake.spec(spec.to_dict()))
    if mistake.compute is not None:
        out = np.asarray(mistake.compute(spec, weights, np.asarray(x)))
    else:
        out = np.asarray(numpy_backend.forward_with(spec, weights, x, mistake.variant))
    return mistake.outputs(out) if mistake.outputs is not None else out


def plain(spec: ModelSpec, weights: Weights, x: np.ndarray) -> np.ndarray:
    """The reference's outputs (float64) for ``spec`` and ``weights``: a building block of a mistake's ``compute``."""
    return reference(spec, weights, x)


def _cells(spec: ModelSpec) -> Iterator[tuple[str, RecurrentLayer, list[str]]]:
    """Each recurrent layer with its name and weight prefixes (``NAME/`` or its two directions)."""
    for name, layer in spec.stack():
        if isinstance(layer, RecurrentLayer):
            tags = [f"{name}/forward/", f"{name}/backward/"] if layer.bidirectional else [f"{name}/"]
            yield name, layer, tags


def _torch_gate_order(layer: RecurrentLayer) -> Callable[[np.ndarray], np.ndarray]:
    """The layer's gate blocks put in PyTorch's order (GRU z, r, h → r, z, n), the kind's declared permutation."""
    return lambda v: permute_gates(v, layer, "torch")


def _map_leaves(weights: Weights, prefixes: list[str], leaves: tuple[str, ...], fn: Callable) -> Weights:
    out = dict(weights)
    for prefix in prefixes:
        for leaf in leaves:
            if prefix + leaf in out:
                out[prefix + leaf] = fn(out[prefix + leaf])
    return out


Generator = Callable[[ModelSpec], list[Mistake]]


class Catalogue:
    """The porting mistakes by name, each a generator ``fn(spec) -> [Mistake]``, in the order they are tried
    (most common first). A name registered twice is refused.

    >>> @CATALOGUE.register("my_mistake")  # doctest: +SKIP
    ... def _mine(spec): return [Mistake("my_mistake", "...", weights=...)]
    """

    def __init__(self) -> None:
        self._entries: dict[str, Generator] = {}

    def register(self, name: str) -> Callable[[Generator], Generator]:
        def decorate(fn: Generator) -> Generator:
            if name in self._entries:
                raise DuplicateKindError(
                    f"the porting-mistake catalogue registers {name!r} twice "
                    f"({self._entries[name].__qualname__} and {fn.__qualname__}); keep one"
                )
            self._entries[name] = fn
            return fn

        return decorate

    def names(self) -> list[str]:
        return list(self._entries)

    def mistakes_for(self, spec: ModelSpec) -> list[Mistake]:
        return [mistake for generate in self._entries.values() for mistake in generate(spec)]


CATALOGUE = Catalogue()
"""Every porting mistake :func:`mistakes_for` tries, registered below with ``@CATALOGUE.register(name)``."""


def mistakes_for(spec: ModelSpec) -> list[Mistake]:
    """The mistakes that could be made in porting ``spec`` (torch convention), most common first."""
    return CATALOGUE.mistakes_for(spec)


@CATALOGUE.register("gru_gate_order")
def _gate_order(spec: ModelSpec) -> list[Mistake]:
    """The gate blocks copied in PyTorch's order where the kind's Keras order differs (GRU)."""
    out: list[Mistake] = []
    gru = [
        (n, layer, tags) for n, layer, tags in _cells(spec) if layer.gate_index("torch", 1) != list(range(layer.gates))
    ]
    groups = [gru] + ([[one] for one in gru] if len(gru) > 1 else [])  # every GRU, then each one alone
    for group in groups if gru else []:

        def swapped(w: Weights, group: list = group) -> Weights:
            leaves = ("kernel", "recurrent_kernel", "bias", "recurrent_bias")
            for _, layer, tags in group:  # each layer's blocks are its own width
                w = _map_leaves(w, tags, leaves, _torch_gate_order(layer))
            return w

        which = "the GRU gates were" if group is gru else f"the gates of the GRU {group[0][0]!r} were"
        out.append(Mistake(
            "gru_gate_order",
            f"{which} ordered r, z, n (PyTorch's order) where Keras's z, r, h is expected. fix: swap the first "
            "two gate blocks (rows of weight_ih/weight_hh and the biases) when copying between the two",
            swapped,
        ))  # fmt: skip
    return out


@CATALOGUE.register("mask_dropped")
def _mask_dropped(spec: ModelSpec) -> list[Mistake]:
    out: list[Mistake] = []
    if spec.masked:

        def no_mask(data: dict[str, Any]) -> dict[str, Any]:
            if isinstance(data.get("embedding"), dict):
                data["embedding"]["mask_zero"] = False
            data["input"].pop("mask_value", None)
            return data

        out.append(Mistake(
            "mask_dropped",
            "the padding mask were not applied: padded steps are run through the recurrent layers. fix: skip them "
            "as Keras's mask does (keep the state and output of a padded step; nn.utils.rnn.pack_padded_sequence "
            "does this for post-padded rows)",
            spec=no_mask,
        ))  # fmt: skip
    return out


@CATALOGUE.register("backward_wrong_end")
def _backward_wrong_end(spec: ModelSpec) -> list[Mistake]:
    out: list[Mistake] = []
    for name, layer, _ in _cells(spec):
        if layer.bidirectional and not layer.return_sequences:
            out.append(Mistake(
                "backward_wrong_end",
                f"the backward direction of {name!r} were read at the wrong end: output[:, -1] holds the backward "
                "direction after one step only. fix: take the backward half at step 0 (output[:, 0, units:]), or "
                "h_n[-1], as Keras's Bidirectional does",
                variant="backward_wrong_end",
            ))  # fmt: skip
            break
    return out


@CATALOGUE.register("reset_gate")
def _reset_gate(spec: ModelSpec) -> list[Mistake]:
    """``reset_before`` / ``reset_after``: the GRU's reset gate on the other side of the recurrent matmul."""
    out: list[Mistake] = []
    for name, layer, tags in _cells(spec):
        if isinstance(layer, GRUSpec) and layer.reset_after:
            index = next(i for i, entry in enumerate(spec.recurrent) if entry is layer)

            def before(data: dict[str, Any], index: int = index) -> dict[str, Any]:
                data["recurrent"][index]["reset_after"] = False
                return data

            def split(w: Weights, tags: list[str] = tags) -> Weights:
                out_w = dict(w)
                for tag in tags:
                    bias = out_w.pop(tag + "bias", None)
                    if bias is not None:
                        out_w[tag + "bias"], out_w[tag + "recurrent_bias"] = bias[0], bias[1]
                return out_w

            out.append(Mistake(
                "reset_before",
                f"the GRU {name!r} applied the reset gate before the recurrent matmul (Keras 2's reset_after=False) "
                "where after is expected (reset_after=True: Keras 3 and PyTorch). fix: compute r * (h @ W_hn + b_hn)",
                split,
                before,
            ))  # fmt: skip
        elif isinstance(layer, GRUSpec):  # Keras 2's form expected; the model applies the reset gate after
            index = next(i for i, entry in enumerate(spec.recurrent) if entry is layer)

            def after(data: dict[str, Any], index: int = index) -> dict[str, Any]:
                data["recurrent"][index]["reset_after"] = True
                return data

            def stacked(w: Weights, tags: list[str] = tags) -> Weights:
                out_w = dict(w)
                for tag in tags:
                    if tag + "bias" in out_w:
                        recurrent = out_w.pop(tag + "recurrent_bias", np.zeros_like(out_w[tag + "bias"]))
                        out_w[tag + "bias"] = np.stack([out_w[tag + "bias"], recurrent])
                return out_w

            out.append(Mistake(
                "reset_after",
                f"the GRU {name!r} applied the reset gate after the recurrent matmul (reset_after=True, Keras 3 and "
                "PyTorch's nn.GRU) where before is expected (reset_after=False, Keras 2's default). fix: build the "
                "Keras side with reset_after=True, or compute (r * h) @ W_hn in the hand-written cell",
                stacked,
                after,
            ))  # fmt: skip
    return out


@CATALOGUE.register("recurrent_bias_dropped")
def _recurrent_bias_dropped(spec: ModelSpec) -> list[Mistake]:
    out: list[Mistake] = []
    biases = [t for _, layer, tags in _cells(spec) if layer.use_bias for t in tags]
    if biases:

        def no_recurrent_bias(w: Weights, prefixes: list[str] = biases) -> Weights:
            out_w = dict(w)
            for p in prefixes:
                if p + "recurrent_bias" in out_w:
                    out_w[p + "recurrent_bias"] = np.zeros_like(out_w[p + "recurrent_bias"])
                elif p + "bias" in out_w and np.ndim(out_w[p + "bias"]) == 2:
                    out_w[p + "bias"] = np.stack([out_w[p + "bias"][0], np.zeros_like(out_w[p + "bias"][1])])
            return out_w

        out.append(Mistake(
            "recurrent_bias_dropped",
            "the recurrent bias (PyTorch's bias_hh) were left out, or left at zero while the other side uses it. "
            "fix: add it, or when copying from Keras's single bias, set bias_ih to it and bias_hh to zero",
            no_recurrent_bias,
        ))  # fmt: skip
    return out


@CATALOGUE.register("transposed")
def _transposed(spec: ModelSpec) -> list[Mistake]:
    """A square kernel (or a square gate block of one) used transposed: ``x @ W`` where ``x @ W.T`` is meant."""
    from rnnspec.core.weights import weight_shapes

    out = []
    for name, shape in weight_shapes(spec, "torch").items():
        if len(shape) != 2 or name.endswith("embeddings"):
            continue
        rows, cols = shape
        if rows == cols:

            def whole(w: Weights, name: str = name) -> Weights:
                return {**w, name: w[name].T}

            out.append(Mistake(
                f"transposed:{name}",
                f"{name}{_torch_name(name)} were used transposed: x @ W where x @ W.T is meant, or the reverse. "
                "fix: transpose it",
                whole,
            ))  # fmt: skip
        elif cols % rows == 0 and cols // rows in (3, 4):

            def blocks(w: Weights, name: str = name, rows: int = rows) -> Weights:
                parts = np.split(w[name], w[name].shape[1] // rows, axis=1)
                return {**w, name: np.concatenate([p.T for p in parts], axis=1)}

            out.append(Mistake(
                f"transposed_gates:{name}",
                f"each gate block of {name}{_torch_name(name)} were used transposed. fix: transpose every gate's "
                "block of the matrix",
                blocks,
            ))  # fmt: skip
    return out


@CATALOGUE.register("activation_missing")
def _activation_missing(spec: ModelSpec) -> list[Mistake]:
    out: list[Mistake] = []
    if spec.output_layer is not None and spec.output_activation in ("sigmoid", "softmax"):
        activation = spec.output_activation

        def logits(data: dict[str, Any]) -> dict[str, Any]:
            head = data["head"]
            entries = head if isinstance(head, list) else [head]
            last = max(k for k, e in enumerate(entries) if "units" in e)
            for entry in entries[last:]:  # the output Dense layer and any Activation after it (`Dense(1)`,
                entry["activation"] = "linear"  # then `Activation('sigmoid')`)
            return data

        out.append(Mistake(
            "activation_missing",
            f"the head's {activation} were missing: it returns logits. fix: apply torch.{activation} to the "
            "outputs (or compare the logits with a Keras model whose Dense has no activation)",
            spec=logits,
        ))  # fmt: skip
    return out


_TORCH_LAYER_NORM_EPS = 1e-5
"""``nn.LayerNorm``'s default ``eps`` (Keras's ``LayerNormalization`` defaults to 1e-3)."""


@CATALOGUE.register("layer_norm_epsilon")
def _layer_norm_epsilon(spec: ModelSpec) -> list[Mistake]:
    """nn.LayerNorm left at PyTorch's default eps where the Keras layer has another epsilon (1e-3 by default)."""
    names = [
        n for n, layer in spec.stack() if isinstance(layer, LayerNormSpec) and layer.epsilon != _TORCH_LAYER_NORM_EPS
    ]
    if not names:
        return []

    def torch_default(data: dict[str, Any]) -> dict[str, Any]:
        head = data.get("head")
        for entry in [*data["recurrent"], *(head if isinstance(head, list) else [])]:
            if "layer_norm" in entry:
                entry["layer_norm"] = {**entry["layer_norm"], "epsilon": _TORCH_LAYER_NORM_EPS}
        return data

    epsilons = sorted({layer.epsilon for _, layer in spec.stack() if isinstance(layer, LayerNormSpec)})
    return [Mistake(
        "layer_norm_epsilon",
        f"its LayerNorm ({', '.join(names)}) used PyTorch's default eps=1e-05 where Keras's LayerNormalization "
        f"adds epsilon={', '.join(map(str, epsilons))}. fix: nn.LayerNorm(features, eps={epsilons[0]})",
        spec=torch_default,
    )]  # fmt: skip


_TORCH_NAMES = {"kernel": "weight_ih", "recurrent_kernel": "weight_hh", "bias": "bias_ih", "recurrent_bias": "bias_hh"}


def _torch_name(name: str) -> str:
    """`` (PyTorch's weight_hh)`` for a recurrent weight's canonical name."""
    leaf = name.rsplit("/", 1)[-1]
    if name.startswith("head") or leaf not in _TORCH_NAMES:
        return " (an nn.Linear weight, transposed in canonical form)" if leaf == "kernel" else ""
    return f" (PyTorch's {_TORCH_NAMES[leaf]})"


# -- which step, which axis, which state: the mistakes of reading a recurrent layer's outputs ----------------------


def _entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    head = data.get("head")
    return [] if head is None else (head if isinstance(head, list) else [head])


_PER_STEP_HEAD = ("units", "dropout", "activation", "layer_norm", "batch_norm")
"""Head entries that act on each step alone: the head of a one-step model applies to every step the same way."""


def _per_step_data(data: dict[str, Any]) -> dict[str, Any] | None:
    """The spec (as a dict) with its last recurrent layer returning every step and the head applied to each, where
    that is the same model read at any step: the last recurrent layer ends the recurrent list (dropout entries
    aside), returns one step, and the head acts on each step alone. None otherwise."""
    recurrent = data.get("recurrent") or []
    cells = [k for k, entry in enumerate(recurrent) if "cell" in entry]
    if not cells or any(set(entry) - {"dropout", "name"} for entry in recurrent[cells[-1] + 1 :]):
        return None
    last = recurrent[cells[-1]]
    if last.get("return_sequences") or last.get("stateful"):
        return None
    if any(not any(key in entry for key in _PER_STEP_HEAD) for entry in _entries(data)):
        return None
    last["return_sequences"] = True
    return data


def _unmasked(data: dict[str, Any]) -> dict[str, Any]:
    """The spec (as a dict) without Keras's mask: every step runs, padding included (a bare nn.LSTM)."""
    if isinstance(data.get("embedding"), dict):
        data["embedding"]["mask_zero"] = False
        data["embedding"].pop("padding_idx", None)
    data["input"].pop("mask_value", None)
    return data


def _every_step(spec: ModelSpec, weights: Weights, x: np.ndarray, masked: bool) -> np.ndarray:
    """The model's outputs at every step of its last recurrent layer, (batch, time, outputs)."""
    from rnnspec.lang.loader import spec_from_dict

    data = _per_step_data(spec.to_dict())
    if data is None:
        raise ValueError("the model's outputs cannot be read at each step")
    return plain(spec_from_dict(data if masked else _unmasked(data)), weights, x)


def _lengths(spec: ModelSpec, x: np.ndarray) -> np.ndarray:
    """Each row's count of real steps, as a port counts it from the padding (``(x != pad).sum(1)``)."""
    if spec.embedding is not None and spec.embedding.mask_id is not None:
        return np.sum(x != spec.embedding.mask_id, axis=1)
    return np.sum(np.any(x != spec.input.mask_value, axis=-1), axis=1)


_NO_RECURRENT_GRADIENT = (
    "the recurrent kernel's gradient is exactly 0 in that model (one step from a zero state never uses it)"
)


@CATALOGUE.register("first_step")
def _first_step(spec: ModelSpec) -> list[Mistake]:
    """``output[:, 0]`` where the last step is meant: the recurrent layer after one step."""
    if _per_step_data(spec.to_dict()) is None:
        return []
    out = []
    for masked in (False, True) if spec.masked else (False,):

        def first(s: ModelSpec, w: Weights, x: np.ndarray, masked: bool = masked) -> np.ndarray:
            return _every_step(s, w, x, masked)[:, 0]

        out.append(Mistake(
            "first_step",
            "its outputs were read at the first step (output[:, 0]) where the last one is meant: the recurrent "
            "layer after a single step. fix: take output[:, -1] (with padding: the last real step, or h_n[-1] of a "
            "packed sequence)",
            compute=first,
            evidence=_NO_RECURRENT_GRADIENT,
        ))  # fmt: skip
    return out


@CATALOGUE.register("post_padding")
def _post_padding(spec: ModelSpec) -> list[Mistake]:
    """``output[arange(B), lengths - 1]`` (or ``pack_padded_sequence``) on rows the Keras model pads in front."""
    if not spec.masked or _per_step_data(spec.to_dict()) is None or spec.input.vocab_size is None:
        return []

    def at_length(s: ModelSpec, w: Weights, x: np.ndarray) -> np.ndarray:
        steps = _every_step(s, w, x, masked=False)
        return steps[np.arange(len(x)), _lengths(s, x) - 1]

    return [Mistake(
        "post_padding",
        "every row were post-padded: it reads the step at index length - 1 (output[arange(B), lengths - 1] with "
        "lengths = (x != pad).sum(1), or pack_padded_sequence), while rows padded in front (Keras's pad_sequences "
        "default, padding='pre') end at the last step and a row with a hole is longer than its count. fix: pad "
        "after (pad_sequences(..., padding='post')) for the PyTorch model, or keep the state over padded steps as "
        "Keras's mask does and read the last step",
        compute=at_length,
        evidence="it differs on the pre-padded, middle-padded and length-1 rows, and agrees on full and post-padded "
        "rows",
    )]  # fmt: skip


@CATALOGUE.register("batch_first")
def _batch_first(spec: ModelSpec) -> list[Mistake]:
    """``nn.LSTM`` without ``batch_first=True`` given ``(batch, time, features)``: it runs along the batch."""
    from rnnspec.lang.loader import spec_from_dict

    if spec.stateful or not spec.cells:
        return []
    per_step = spec.output_per_step
    if not per_step and _per_step_data(spec.to_dict()) is None:
        return []

    def swapped(s: ModelSpec, w: Weights, x: np.ndarray) -> np.ndarray:
        across = np.swapaxes(x, 0, 1)  # time is read as the batch, the batch as time
        if per_step:  # output (batch-as-time, time-as-batch, ...) as the module returns it
            return np.swapaxes(plain(spec_from_dict(_unmasked(s.to_dict())), w, across), 0, 1)
        return _every_step(s, w, across, masked=False)[-1]  # output[:, -1]: the row at the last step, every "step"

    return [Mistake(
        "batch_first",
        "time and batch were swapped: its recurrent layer was built without batch_first=True (PyTorch's default "
        "reads (time, batch, features)) and given (batch, time, features), so it runs along the batch. fix: "
        "nn.LSTM(..., batch_first=True), or pass x.transpose(0, 1) and read the output in (time, batch) order",
        compute=swapped,
        evidence="a row's outputs change with the other rows of the batch",
    )]  # fmt: skip


@CATALOGUE.register("hidden_state_layer")
def _hidden_state_layer(spec: ModelSpec) -> list[Mistake]:
    """The final state of an earlier layer of a stack (``h_n[0]``) where the last layer's is meant (``h_n[-1]``)."""
    data = spec.to_dict()
    if _per_step_data(spec.to_dict()) is None:
        return []
    recurrent = data["recurrent"]
    cells = [k for k, entry in enumerate(recurrent) if "cell" in entry]
    names = [name for name, layer in spec.stack() if isinstance(layer, RecurrentLayer)]
    last = recurrent[cells[-1]]
    out = []
    for position, index in enumerate(cells[:-1]):
        entry = recurrent[index]
        if entry["units"] != last["units"] or entry.get("bidirectional") != last.get("bidirectional"):
            continue

        def cut(d: dict[str, Any], index: int = index) -> dict[str, Any]:
            d["recurrent"] = d["recurrent"][: index + 1]
            d["recurrent"][index]["return_sequences"] = False
            return d

        pair = " (h_n[2 * k] and h_n[2 * k + 1])" if entry.get("bidirectional") else f" (h_n[{position}])"
        out.append(Mistake(
            "hidden_state_layer",
            f"it read the final state of {names[position]!r}, layer {position} of the stack{pair}, where the last "
            "layer's is meant. fix: h_n[-1] (a bidirectional stack: torch.cat([h_n[-2], h_n[-1]], 1)), or "
            "output[:, -1] of the last layer",
            spec=cut,
            evidence="the gradients of the later layers' weights are exactly 0 in that model",
        ))  # fmt: skip
    return out


def _elementwise_before_dense(spec: ModelSpec) -> tuple[str, RecurrentLayer, str] | None:
    """The last recurrent layer, when bidirectional and concatenated, and the Dense layer that reads it (only
    dropout and element-wise activations between): ``(name, layer, dense name)``."""
    from rnnspec.lang.layers import ActivationSpec, DenseSpec, DropoutSpec

    stack = spec.stack()
    found = [k for k, (_, layer) in enumerate(stack) if isinstance(layer, RecurrentLayer)]
    if not found:
        return None
    name, layer = stack[found[-1]]
    if not layer.bidirectional or layer.merge_mode != "concat":
        return None
    for after, entry in stack[found[-1] + 1 :]:
        if isinstance(entry, DenseSpec):
            return name, layer, after
        softmax = isinstance(entry, ActivationSpec) and "softmax" in entry.activation
        if not isinstance(entry, (DropoutSpec, ActivationSpec)) or softmax:
            return None
    return None


@CATALOGUE.register("directions_swapped")
def _directions_swapped(spec: ModelSpec) -> list[Mistake]:
    """``cat([h_bwd, h_fwd])``: a bidirectional layer's two halves in the other order."""
    found = _elementwise_before_dense(spec)
    if found is None:
        return []
    name, layer, dense = found
    units = layer.units

    def swap(w: Weights) -> Weights:
        kernel = w[f"{dense}/kernel"]
        return {**w, f"{dense}/kernel": np.concatenate([kernel[units:], kernel[:units]])}

    return [Mistake(
        "directions_swapped",
        f"the two directions of {name!r} were joined backward first (torch.cat([h_n[-1], h_n[-2]]), or halves of "
        "output swapped), where Keras's Bidirectional puts the forward direction first. fix: "
        "torch.cat([h_n[-2], h_n[-1]], 1)",
        swap,
    )]  # fmt: skip


# -- the head's activation ------------------------------------------------------------------------------------------


def _softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - np.max(y, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _sigmoid(y: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-y))


_ACTIVATE = {"softmax": _softmax, "sigmoid": _sigmoid}


@CATALOGUE.register("activation_twice")
def _activation_twice(spec: ModelSpec) -> list[Mistake]:
    activation = spec.output_activation
    if spec.output_layer is None or activation not in _ACTIVATE:
        return []
    return [Mistake(
        "activation_twice",
        f"its outputs went through {activation} twice (the head's activation, then torch.{activation} again, or "
        f"nn.CrossEntropyLoss fed probabilities). fix: apply {activation} once",
        outputs=_ACTIVATE[activation],
        evidence="its outputs are squeezed toward the middle (a second activation)",
    )]  # fmt: skip


@CATALOGUE.register("log_softmax")
def _log_softmax(spec: ModelSpec) -> list[Mistake]:
    if spec.output_layer is None or spec.output_activation != "softmax":
        return []
    return [Mistake(
        "log_softmax",
        "it returns log_softmax (log-probabilities, as nn.NLLLoss takes) where Keras's softmax probabilities are "
        "expected. fix: return torch.softmax (or compare torch.exp of its outputs)",
        outputs=np.log,
        evidence="its outputs are negative",
    )]  # fmt: skip


@CATALOGUE.register("activation_extra")
def _activation_extra(spec: ModelSpec) -> list[Mistake]:
    if spec.output_layer is None or spec.output_activation != "linear":
        return []
    names = ["sigmoid"] + (["softmax"] if spec.output_units > 1 else [])
    return [Mistake(
        "activation_extra",
        f"it applies {name} to outputs that are logits in the other model (a linear head, as from_logits=True "
        f"losses take). fix: drop the torch.{name}, or give the other model's Dense activation='{name}'",
        outputs=_ACTIVATE[name],
    ) for name in names]  # fmt: skip


@CATALOGUE.register("activation_wrong")
def _activation_wrong(spec: ModelSpec) -> list[Mistake]:
    activation = spec.output_activation
    if spec.output_layer is None or activation not in _ACTIVATE or spec.output_units < 2:
        return []
    other = "sigmoid" if activation == "softmax" else "softmax"

    def replace(data: dict[str, Any]) -> dict[str, Any]:
        entries = _entries(data)
        last = max(k for k, e in enumerate(entries) if "units" in e)
        for entry in entries[last:]:
            if entry.get("activation") == activation:
                entry["activation"] = other
        return data

    return [Mistake(
        "activation_wrong",
        f"its head applies {other} where the other model applies {activation}. fix: torch.{activation}",
        spec=replace,
    )]  # fmt: skip


# -- padding and randomness ------------------------------------------------------------------------------------------


@CATALOGUE.register("padding_index")
def _padding_index(spec: ModelSpec) -> list[Mistake]:
    """The padding id of the other side (torchtext's ``<pad>`` is 1, Keras's ``mask_zero`` masks 0)."""
    if spec.embedding is None or spec.embedding.mask_id is None or (spec.input.vocab_size or 0) < 2:
        return []
    masked = spec.embedding.mask_id
    other = 1 if masked == 0 else 0

    def other_id(data: dict[str, Any]) -> dict[str, Any]:
        data["embedding"]["mask_zero"] = other == 0
        data["embedding"].pop("padding_idx", None)
        if other != 0:
            data["embedding"]["padding_idx"] = other
        return data

    return [Mistake(
        "padding_index",
        f"the padding id were {other} (its mask or lengths count id {other} as padding; torchtext's <pad> is 1) "
        f"where the other model pads and masks id {masked}. fix: one padding id on both sides (padding_idx={masked} "
        f"and lengths = (x != {masked}).sum(1))",
        spec=other_id,
    )]  # fmt: skip


@CATALOGUE.register("dropout_at_evaluation")
def _dropout_at_evaluation(spec: ModelSpec) -> list[Mistake]:
    """Observed, not computed: a model whose outputs change from one call to the next on the same inputs."""
    return [Mistake(
        "dropout_at_evaluation",
        "its dropout (or another random layer) were left on at evaluation: two calls on the same inputs give "
        "different outputs. fix: model.eval() before predicting, and nn.Dropout modules rather than "
        "F.dropout(x, p) (whose training=True is the default whatever the module's mode)",
        observed="random",
        evidence="two calls on the same inputs give different outputs",
    )]  # fmt: skip

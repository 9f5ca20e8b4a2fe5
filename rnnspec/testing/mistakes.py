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


def reference(spec: ModelSpec, weights: Weights, x: np.ndarray, mistake: Mistake | None = None) -> np.ndarray:
    """The NumPy reference's outputs (float64) for ``spec`` (torch convention) and ``weights``, made as
    ``mistake`` would make them."""
    from rnnspec.core.backend import ReferenceVariants
    from rnnspec.core.registry import get_backend, reference_backend
    from rnnspec.lang.loader import spec_from_dict

    numpy_backend = get_backend(reference_backend())
    assert isinstance(numpy_backend, ReferenceVariants), "the reference backend computes the mistakes' variants"
    if mistake is not None:
        weights = mistake.weights({k: np.asarray(v, dtype=np.float64) for k, v in weights.items()})
        if mistake.spec is not None:
            spec = spec_from_dict(mistake.spec(spec.to_dict()))
    return np.asarray(numpy_backend.forward_with(spec, weights, x, mistake.variant if mistake else None))


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

"""Every layer kind of the spec language, each described once.

A kind is one pydantic class. Besides its spec fields and their validation it declares, in one
place, everything the rest of rnnspec derives from it:

- ``kind`` (its tag in the registries of the backends) and ``keras_class`` (Keras's class name,
  shown by the summary and suggested for near-misses);
- :meth:`weight_shapes`: canonical weight names (``kernel``, ``bias``...) and shapes for an input
  size and a bias convention. The parameter count is the sum of their sizes, so the analysis,
  the canonical weights and the counts of every backend share one formula;
- :meth:`initializers`: Keras's default initializer of each weight, by name (the runtime draws them);
- :meth:`output_features` and :meth:`output_per_step`: the output shape;
- :meth:`makes_mask` / :meth:`keeps_mask`: how Keras's mask flows through it (the model's
  ``masked`` and ``output_masked`` are folded from them).

A new recurrent cell is one subclass of :class:`RecurrentLayer` here, registered in
:data:`RECURRENT_KINDS`, plus one step function (or builder) per backend.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

__all__ = [
    "ACTIVATIONS",
    "CELL_TAGS",
    "KERAS_CELL_NAMES",
    "LAYER_KINDS",
    "RECURRENT_ACTIVATIONS",
    "RECURRENT_KINDS",
    "CrossFieldIssue",
    "CrossFieldIssues",
    "DenseSpec",
    "DropoutSpec",
    "EmbeddingSpec",
    "GRUSpec",
    "HeadEntry",
    "LSTMSpec",
    "LayerSpec",
    "MaskingSpec",
    "RecurrentEntry",
    "RecurrentLayer",
    "SimpleRNNSpec",
    "SpatialDropoutSpec",
]

Convention = Literal["keras", "torch"]
Shape = tuple[int, ...]

Activation = Literal[
    "linear",
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "relu",
    "elu",
    "selu",
    "gelu",
    "softplus",
    "softsign",
    "swish",
    "exponential",
]
ACTIVATIONS: tuple[str, ...] = Activation.__args__  # type: ignore[attr-defined]
"""Keras's element-wise activations that every backend implements (gelu: Keras's exact, erf form)."""
RecurrentActivation = Literal[
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "relu",
    "linear",
    "elu",
    "selu",
    "softplus",
    "softsign",
    "swish",
    "exponential",
]
DenseActivation = Literal[Activation, "softmax"]
MergeMode = Literal["concat", "sum", "mul", "ave"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)]
PositiveInt = Annotated[int, Field(gt=0)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True, frozen=True)


class CrossFieldIssue(BaseModel):
    """One problem that relates several fields (raised inside :class:`CrossFieldIssues`)."""

    path: tuple[str | int, ...]
    message: str
    received: str | None = None
    expected: str | None = None
    fix: str | None = None


class CrossFieldIssues(ValueError):
    """Carries every cross-field problem of a spec out of pydantic's validation."""

    def __init__(self, issues: list[CrossFieldIssue]):
        self.issues = issues
        super().__init__("; ".join(f"{'.'.join(map(str, i.path))}: {i.message}" for i in issues))


class LayerSpec(_Strict):
    """What every layer kind declares (see the module docstring)."""

    kind: ClassVar[str]
    keras_class: ClassVar[str]
    default_name: ClassVar[str]
    """Default layer name; ``{n}`` is replaced by the layer's index among the layers of its kind."""

    def weight_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        """Canonical weight names (without the ``LAYER/`` prefix) and shapes for ``inputs`` features."""
        return {}

    def initializers(self) -> dict[str, str]:
        """Keras's default initializer of each weight leaf (see :mod:`rnnspec.core.weights`)."""
        return {}

    def params(self, inputs: int, convention: Convention) -> int:
        """Parameter count: the sum of the weights' sizes."""
        total = 0
        for shape in self.weight_shapes(inputs, convention).values():
            size = 1
            for d in shape:
                size *= d
            total += size
        return total

    def output_features(self, inputs: int) -> int:
        """Features per step (or per sample) of the output."""
        return inputs

    def output_per_step(self, per_step: bool) -> bool:
        """Whether the output still has a time axis, given whether the input has one."""
        return per_step

    def makes_mask(self) -> bool:
        """Whether the layer creates Keras's mask (``mask_zero``, ``Masking``)."""
        return False

    def keeps_mask(self) -> bool:
        """Whether Keras's mask flows through to the next layer."""
        return True

    def type_label(self) -> str:
        """The ``Layer (type)`` of the summary."""
        return self.keras_class


# -- input-side layers ---------------------------------------------------------------------------


class MaskingSpec(LayerSpec):
    """Keras ``Masking(mask_value)``, made from ``input.mask_value``: a step is masked where every
    feature equals the value; masked steps' features are set to 0."""

    kind: ClassVar[str] = "masking"
    keras_class: ClassVar[str] = "Masking"
    default_name: ClassVar[str] = "masking"

    mask_value: float
    """The padding value."""

    def makes_mask(self) -> bool:
        return True


class EmbeddingSpec(LayerSpec):
    """A Keras ``Embedding(vocab_size, output_dim)`` on token-id input."""

    kind: ClassVar[str] = "embedding"
    keras_class: ClassVar[str] = "Embedding"
    default_name: ClassVar[str] = "embedding"

    output_dim: PositiveInt
    """Size of each token's vector."""
    mask_zero: bool = False
    """Keras semantics: id 0 is padding; masked steps keep the recurrent state."""
    name: Name | None = None
    """Layer name; default `embedding`."""

    def makes_mask(self) -> bool:
        return self.mask_zero

    def weight_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        return {"embeddings": (inputs, self.output_dim)}

    def initializers(self) -> dict[str, str]:
        return {"embeddings": "uniform_0.05"}

    def output_features(self, inputs: int) -> int:
        return self.output_dim


class DropoutSpec(LayerSpec):
    """Keras ``Dropout(rate)``: while training each element is dropped with probability ``rate`` and
    the rest are scaled by ``1/(1-rate)``; identity at inference. No weights."""

    kind: ClassVar[str] = "dropout"
    keras_class: ClassVar[str] = "Dropout"
    default_name: ClassVar[str] = "dropout_{n}"

    dropout: Rate
    """Fraction of the elements dropped while training."""
    name: Name | None = None
    """Layer name; default `dropout_N` (N counts the model's Dropout layers from 0)."""


class SpatialDropoutSpec(LayerSpec):
    """Keras ``SpatialDropout1D(rate)``: while training whole feature channels are dropped, one mask
    per sequence (the same channels at every step), the rest scaled by ``1/(1-rate)``. Needs a
    time axis. No weights."""

    kind: ClassVar[str] = "spatial_dropout"
    keras_class: ClassVar[str] = "SpatialDropout1D"
    default_name: ClassVar[str] = "spatial_dropout_{n}"

    spatial_dropout: Rate
    """Fraction of the channels dropped while training."""
    name: Name | None = None
    """Layer name; default `spatial_dropout_N` (N counts the model's SpatialDropout1D layers from 0)."""


# -- recurrent cells -----------------------------------------------------------------------------


class RecurrentLayer(LayerSpec):
    """What every recurrent cell shares: units, sequences, dropout, direction, names."""

    gates: ClassVar[int]
    default_name: ClassVar[str] = "recurrent_{n}"

    units: PositiveInt
    """Size of the hidden state (per direction)."""
    return_sequences: bool = False
    """Output every step (batch, time, units) instead of the last one (batch, units)."""
    activation: RecurrentActivation = "tanh"
    """Activation of the state / candidate (Keras `activation`)."""
    use_bias: bool = True
    """Whether the layer has bias vectors."""
    dropout: Rate = 0.0
    """Fraction of the inputs dropped during training (one mask per sequence)."""
    recurrent_dropout: Rate = 0.0
    """Fraction of the recurrent state dropped during training (one mask per sequence)."""
    go_backwards: bool = False
    """Process the sequence in reverse (Keras semantics: sequence outputs stay reversed)."""
    bidirectional: bool = False
    """Wrap the layer in Keras `Bidirectional`: a forward and a backward copy."""
    merge_mode: MergeMode = "concat"
    """How a bidirectional layer merges the two directions."""
    name: Name | None = None
    """Layer name; default `recurrent_<index>` (the index counts recurrent layers only)."""

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_units(self) -> int:
        """Feature size of this layer's output (after merging directions)."""
        return self.units * (2 if self.bidirectional and self.merge_mode == "concat" else 1)

    def bias_vectors(self, convention: Convention) -> int:
        """Bias vectors of length ``gates × units`` per direction: 1 in Keras, 2 in PyTorch, 0 without bias."""
        if not self.use_bias:
            return 0
        return 2 if convention == "torch" else 1

    def direction_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        """The weights of one direction."""
        gu = self.gates * self.units
        shapes: dict[str, Shape] = {"kernel": (inputs, gu), "recurrent_kernel": (self.units, gu)}
        n_bias = self.bias_vectors(convention)
        if n_bias:
            shapes["bias"] = (gu,)
        if n_bias == 2:
            shapes["recurrent_bias"] = (gu,)
        return shapes

    def weight_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        shapes = self.direction_shapes(inputs, convention)
        if not self.bidirectional:
            return shapes
        return {f"{d}/{leaf}": s for d in ("forward", "backward") for leaf, s in shapes.items()}

    def initializers(self) -> dict[str, str]:
        return {
            "kernel": "glorot_uniform",
            "recurrent_kernel": "orthogonal",
            "bias": "zeros",
            "recurrent_bias": "zeros",
        }

    def output_features(self, inputs: int) -> int:
        return self.output_units

    def output_per_step(self, per_step: bool) -> bool:
        return self.return_sequences

    def keeps_mask(self) -> bool:
        return self.return_sequences

    def type_label(self) -> str:
        return "Bidirectional" if self.bidirectional else self.keras_class


class SimpleRNNSpec(RecurrentLayer):
    """Keras ``SimpleRNN``: ``h = activation(x·W + h·U + b)``."""

    kind: ClassVar[str] = "simple_rnn"
    keras_class: ClassVar[str] = "SimpleRNN"
    gates: ClassVar[int] = 1

    cell: Literal["simple_rnn"]
    """The cell type."""


class LSTMSpec(RecurrentLayer):
    """Keras ``LSTM`` (gates i, f, c, o)."""

    kind: ClassVar[str] = "lstm"
    keras_class: ClassVar[str] = "LSTM"
    gates: ClassVar[int] = 4

    cell: Literal["lstm"]
    """The cell type."""
    recurrent_activation: RecurrentActivation = "sigmoid"
    """Activation of the gates."""
    unit_forget_bias: bool = True
    """Initialise the forget-gate bias to 1 (Keras default)."""

    def initializers(self) -> dict[str, str]:
        return {**super().initializers(), "bias": "lstm_forget_bias" if self.unit_forget_bias else "zeros"}


class GRUSpec(RecurrentLayer):
    """Keras ``GRU`` (gates z, r, h)."""

    kind: ClassVar[str] = "gru"
    keras_class: ClassVar[str] = "GRU"
    gates: ClassVar[int] = 3

    cell: Literal["gru"]
    """The cell type."""
    recurrent_activation: RecurrentActivation = "sigmoid"
    """Activation of the gates."""
    reset_after: bool = True
    """Apply the reset gate after the recurrent matmul (Keras 3 and PyTorch); false is the Keras <= 2.3 GRU."""

    def bias_vectors(self, convention: Convention) -> int:
        if self.use_bias and self.reset_after:
            return 2
        return super().bias_vectors(convention)

    def direction_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        shapes = super().direction_shapes(inputs, convention)
        if self.use_bias and self.reset_after:
            # Keras keeps both biases of a reset-after GRU in one (2, 3·units) variable, in both conventions
            shapes.pop("recurrent_bias", None)
            shapes["bias"] = (2, self.gates * self.units)
        return shapes


# -- Dense ---------------------------------------------------------------------------------------


class DenseSpec(LayerSpec):
    """A Keras ``Dense`` layer (on every step when its input has a time axis)."""

    kind: ClassVar[str] = "dense"
    keras_class: ClassVar[str] = "Dense"
    default_name: ClassVar[str] = "head"

    units: PositiveInt
    """Number of outputs (per step for a per-step head)."""
    activation: DenseActivation = "linear"
    """Activation; softmax only on the output layer."""
    use_bias: bool = True
    """Whether the layer has a bias vector."""
    name: Name | None = None
    """Layer name; default `head` (mapping form) or `head_N` (list form)."""

    def weight_shapes(self, inputs: int, convention: Convention) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"kernel": (inputs, self.units)}
        if self.use_bias:
            shapes["bias"] = (self.units,)
        return shapes

    def initializers(self) -> dict[str, str]:
        return {"kernel": "glorot_uniform", "bias": "zeros"}

    def output_features(self, inputs: int) -> int:
        return self.units

    @model_validator(mode="after")
    def _softmax_needs_classes(self) -> DenseSpec:
        if self.activation == "softmax" and self.units == 1:
            raise CrossFieldIssues(
                [
                    CrossFieldIssue(
                        path=("activation",),
                        message="a softmax over 1 unit is always 1.0, so the model cannot learn",
                        received="units: 1, activation: softmax",
                        expected="softmax with units >= 2 (one per class), or one sigmoid unit",
                        fix="use `activation: sigmoid` for a binary output, or set `units` to the number of classes",
                    )
                ]
            )
        return self


# -- the registries and the list entries -----------------------------------------------------------

RECURRENT_KINDS: dict[str, type[RecurrentLayer]] = {cls.kind: cls for cls in (SimpleRNNSpec, LSTMSpec, GRUSpec)}
"""Recurrent cells by their ``cell`` tag: the one list a new cell joins."""
CELL_TAGS: tuple[str, ...] = tuple(RECURRENT_KINDS)
LAYER_KINDS: dict[str, type[LayerSpec]] = {
    cls.kind: cls for cls in (MaskingSpec, EmbeddingSpec, *RECURRENT_KINDS.values(), DropoutSpec, SpatialDropoutSpec)
}
LAYER_KINDS["dense"] = DenseSpec
"""Every layer kind by tag; each backend registers one builder per kind."""

KERAS_CELL_NAMES: dict[str, str] = {}
"""Keras class names (lower-cased, and Keras 2's CuDNN variants) → the ``cell`` tag, for suggestions."""
for _tag, _cls in RECURRENT_KINDS.items():
    KERAS_CELL_NAMES[_cls.keras_class.lower()] = _tag
    KERAS_CELL_NAMES[f"cudnn{_cls.keras_class.lower()}"] = _tag
    KERAS_CELL_NAMES[f"{_cls.keras_class.lower()}cell"] = _tag
KERAS_CELL_NAMES.update({"rnn": "simple_rnn", "simplernn": "simple_rnn", "vanilla": "simple_rnn"})


def _entry_tag(value: Any) -> str | None:
    """Which kind a ``recurrent`` or ``head`` list entry is: its ``cell``, or ``dropout`` / ``spatial_dropout``."""
    if isinstance(value, dict):
        if "cell" in value:
            cell = value["cell"]
            return cell if isinstance(cell, str) and cell in RECURRENT_KINDS else None
        if "units" in value:
            return "dense"  # a Dense head entry; in `recurrent`, a layer that lacks its `cell`
        if "spatial_dropout" in value:
            return "spatial_dropout"
        if "dropout" in value:
            return "dropout"
        return None
    return getattr(value, "kind", None)


_ENTRY_ERROR = {"custom_error_type": "entry_kind", "custom_error_message": "unknown entry kind"}
RecurrentEntry = Annotated[
    Union[  # noqa: UP007
        Annotated[SimpleRNNSpec, Tag("simple_rnn")],
        Annotated[LSTMSpec, Tag("lstm")],
        Annotated[GRUSpec, Tag("gru")],
        Annotated[DropoutSpec, Tag("dropout")],
        Annotated[SpatialDropoutSpec, Tag("spatial_dropout")],
    ],
    Discriminator(_entry_tag, **_ENTRY_ERROR),
]
"""An entry of ``recurrent``: a cell (``cell: lstm``...), ``{dropout: RATE}`` or ``{spatial_dropout: RATE}``."""
HeadEntry = Annotated[
    Union[  # noqa: UP007
        Annotated[DenseSpec, Tag("dense")],
        Annotated[DropoutSpec, Tag("dropout")],
    ],
    Discriminator(_entry_tag, **_ENTRY_ERROR),
]
"""An entry of a ``head`` list: a Dense layer ``{units, activation, use_bias, name}`` or ``{dropout: RATE}``."""

RECURRENT_ACTIVATIONS: tuple[str, ...] = RecurrentActivation.__args__  # type: ignore[attr-defined]

"""The spec language, format version 1, as pydantic models.

The field names are Keras's terms of art (``units``, ``return_sequences``, ``go_backwards``...),
and every default is Keras's default, so a Keras user reads a spec without a manual. Attribute
docstrings become the descriptions of the JSON Schema (``rnnspec schema``).

Checks that involve one object live on that object; checks that relate several parts of the
model (the stack, the loss against the head...) live in :meth:`ModelSpec._check_model` and
raise :class:`CrossFieldIssues`, which the loader turns into located errors.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "FORMAT_VERSION",
    "RECURRENT_ACTIVATIONS",
    "SGD",
    "Adam",
    "CrossFieldIssues",
    "EmbeddingSpec",
    "GRUSpec",
    "HeadSpec",
    "InputSpec",
    "LSTMSpec",
    "LossSpec",
    "ModelSpec",
    "RMSprop",
    "RecurrentSpec",
    "SimpleRNNSpec",
    "TrainingSpec",
]

FORMAT_VERSION = 1

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
RECURRENT_ACTIVATIONS: tuple[str, ...] = RecurrentActivation.__args__  # type: ignore[attr-defined]
HeadActivation = Literal["linear", "sigmoid", "softmax", "tanh", "relu"]
MergeMode = Literal["concat", "sum", "mul", "ave"]
LossName = Literal["binary_crossentropy", "sparse_categorical_crossentropy", "categorical_crossentropy", "mse"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)]
PositiveInt = Annotated[int, Field(gt=0)]


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


class InputSpec(_Strict):
    """What one sample is: a sequence of integer token ids or of float feature vectors."""

    vocab_size: PositiveInt | None = None
    """Token ids are integers in [0, vocab_size). Exactly one of vocab_size and features."""
    features: PositiveInt | None = None
    """Each step is a float vector of this size (one-hot, dense). Exactly one of vocab_size and features."""
    seq_len: PositiveInt | None = None
    """Number of time steps; omitted means variable length (None in shapes)."""

    @model_validator(mode="after")
    def _one_kind(self) -> InputSpec:
        if (self.vocab_size is None) == (self.features is None):
            both = self.vocab_size is not None
            raise CrossFieldIssues(
                [
                    CrossFieldIssue(
                        path=(),
                        message="input needs exactly one of `vocab_size` and `features`",
                        received="both" if both else "neither",
                        expected="`vocab_size: N` for integer token ids, or `features: N` for float vectors",
                        fix="keep `vocab_size` and add an `embedding`, or keep `features` (one-hot or dense input)"
                        if both
                        else "add `vocab_size: N` (token ids) or `features: N` (feature vectors)",
                    )
                ]
            )
        return self


class EmbeddingSpec(_Strict):
    """A Keras ``Embedding(vocab_size, output_dim)`` on token-id input."""

    output_dim: PositiveInt
    """Size of each token's vector."""
    mask_zero: bool = False
    """Keras semantics: id 0 is padding; masked steps keep the recurrent state."""
    name: Name | None = None
    """Layer name; default `embedding`."""


class _RecurrentBase(_Strict):
    units: PositiveInt
    """Size of the hidden state (per direction)."""
    return_sequences: bool = False
    """Output every step (batch, time, units) instead of the last one (batch, units)."""
    activation: RecurrentActivation = "tanh"
    """Activation of the state / candidate (Keras `activation`)."""
    use_bias: bool = True
    """Whether the layer has bias vectors."""
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Fraction of the inputs dropped during training (one mask per sequence)."""
    recurrent_dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Fraction of the recurrent state dropped during training (one mask per sequence)."""
    go_backwards: bool = False
    """Process the sequence in reverse (Keras semantics: sequence outputs stay reversed)."""
    bidirectional: bool = False
    """Wrap the layer in Keras `Bidirectional`: a forward and a backward copy."""
    merge_mode: MergeMode = "concat"
    """How a bidirectional layer merges the two directions."""
    name: Name | None = None
    """Layer name; default `recurrent_<index>`."""

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_units(self) -> int:
        """Feature size of this layer's output (after merging directions)."""
        return self.units * (2 if self.bidirectional and self.merge_mode == "concat" else 1)


class SimpleRNNSpec(_RecurrentBase):
    """Keras ``SimpleRNN``: ``h = activation(x·W + h·U + b)``."""

    cell: Literal["simple_rnn"]
    """The cell type."""


class LSTMSpec(_RecurrentBase):
    """Keras ``LSTM`` (gates i, f, c, o)."""

    cell: Literal["lstm"]
    """The cell type."""
    recurrent_activation: RecurrentActivation = "sigmoid"
    """Activation of the gates."""
    unit_forget_bias: bool = True
    """Initialise the forget-gate bias to 1 (Keras default)."""


class GRUSpec(_RecurrentBase):
    """Keras ``GRU`` (gates z, r, h)."""

    cell: Literal["gru"]
    """The cell type."""
    recurrent_activation: RecurrentActivation = "sigmoid"
    """Activation of the gates."""
    reset_after: bool = True
    """Apply the reset gate after the recurrent matmul (Keras 3 and PyTorch); false is the Keras <= 2.3 GRU."""


RecurrentSpec = Annotated[Union[SimpleRNNSpec, LSTMSpec, GRUSpec], Field(discriminator="cell")]  # noqa: UP007
CELL_TAGS: tuple[str, ...] = ("simple_rnn", "lstm", "gru")


class HeadSpec(_Strict):
    """A Keras ``Dense`` layer on the last recurrent output (on every step after return_sequences)."""

    units: PositiveInt
    """Number of outputs (per step for a per-step head)."""
    activation: HeadActivation = "linear"
    """Output activation."""
    use_bias: bool = True
    """Whether the head has a bias vector."""
    name: Name | None = None
    """Layer name; default `head`."""

    @model_validator(mode="after")
    def _softmax_needs_classes(self) -> HeadSpec:
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


class _OptimizerBase(_Strict):
    clipnorm: Annotated[float, Field(gt=0)] | None = None
    """Clip each gradient to this L2 norm."""
    clipvalue: Annotated[float, Field(gt=0)] | None = None
    """Clip each gradient element to [-clipvalue, clipvalue]."""

    @model_validator(mode="after")
    def _one_clip(self) -> _OptimizerBase:
        if self.clipnorm is not None and self.clipvalue is not None:
            raise CrossFieldIssues(
                [
                    CrossFieldIssue(
                        path=("clipvalue",),
                        message="Keras allows only one of clipnorm and clipvalue",
                        received=f"clipnorm: {self.clipnorm}, clipvalue: {self.clipvalue}",
                        expected="one of them",
                        fix="remove `clipnorm` or `clipvalue`",
                    )
                ]
            )
        return self


class SGD(_OptimizerBase):
    """Keras ``SGD``."""

    name: Literal["sgd"]
    """Optimizer name."""
    learning_rate: Annotated[float, Field(gt=0)] = 0.01
    """Keras default 0.01."""
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Momentum factor."""
    nesterov: bool = False
    """Use Nesterov momentum."""


class Adam(_OptimizerBase):
    """Keras ``Adam`` (epsilon added to sqrt(v) before bias correction: Keras's "epsilon hat")."""

    name: Literal["adam"]
    """Optimizer name."""
    learning_rate: Annotated[float, Field(gt=0)] = 0.001
    """Keras default 0.001."""
    beta_1: Annotated[float, Field(ge=0, lt=1)] = 0.9
    """Decay of the first moment."""
    beta_2: Annotated[float, Field(ge=0, lt=1)] = 0.999
    """Decay of the second moment."""
    epsilon: Annotated[float, Field(gt=0)] = 1e-7
    """Keras default 1e-7."""
    amsgrad: bool = False
    """Use the AMSGrad variant."""


class RMSprop(_OptimizerBase):
    """Keras ``RMSprop`` (epsilon inside the square root)."""

    name: Literal["rmsprop"]
    """Optimizer name."""
    learning_rate: Annotated[float, Field(gt=0)] = 0.001
    """Keras default 0.001."""
    rho: Annotated[float, Field(ge=0, lt=1)] = 0.9
    """Decay of the moving average of squared gradients."""
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Momentum factor."""
    epsilon: Annotated[float, Field(gt=0)] = 1e-7
    """Keras default 1e-7."""
    centered: bool = False
    """Normalise by the variance estimate instead of the second moment."""


OptimizerSpec = Annotated[Union[SGD, Adam, RMSprop], Field(discriminator="name")]  # noqa: UP007
OptimizerName = Literal["sgd", "adam", "rmsprop"]
OPTIMIZER_TAGS: tuple[str, ...] = OptimizerName.__args__  # type: ignore[attr-defined]


class LossSpec(_Strict):
    """A Keras loss; a plain name is short for ``{name: NAME}``."""

    name: LossName
    """Loss name."""
    from_logits: bool = False
    """The model's outputs are logits (no sigmoid/softmax head), as in seed 004."""


class TrainingSpec(_Strict):
    """How ``rnnspec train`` fits the model (Keras ``compile`` + ``fit`` arguments)."""

    optimizer: OptimizerSpec = Field(default_factory=lambda: RMSprop(name="rmsprop"))
    """An optimizer name with Keras defaults (`sgd`, `adam`, `rmsprop`), or `{name: adam, learning_rate: ...}`."""
    loss: LossSpec
    """A loss name, or `{name: ..., from_logits: true}`."""
    metrics: list[Literal["accuracy"]] = Field(default_factory=list)
    """Metrics reported per epoch."""
    batch_size: PositiveInt = 32
    """Samples per optimizer step (Keras default 32)."""
    epochs: PositiveInt = 1
    """Passes over the training data."""
    validation_split: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Fraction of the data held out for validation (Keras takes the last samples, before shuffling)."""
    shuffle: bool = True
    """Shuffle the training samples every epoch."""
    data: str | None = None
    """Default data: a path, or `builtin:NAME`."""

    @field_validator("optimizer", mode="before", json_schema_input_type=Union[OptimizerName, OptimizerSpec])  # noqa: UP007
    @classmethod
    def _optimizer_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("loss", mode="before", json_schema_input_type=Union[LossName, LossSpec])  # noqa: UP007
    @classmethod
    def _loss_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class ModelSpec(_Strict):
    """A recurrent sequence model: input, optional embedding, a stack of recurrent layers, optional head."""

    rnnspec: Literal[1]
    """Format version of the spec; this rnnspec reads version 1."""
    name: Name
    """Model name: letters, digits, '-' and '_'."""
    convention: Literal["keras", "torch"] = "keras"
    """How biases are parameterized: `keras` (one bias for SimpleRNN/LSTM) or `torch` (two, as nn.RNN/nn.LSTM)."""
    input: InputSpec
    """The model input."""
    embedding: EmbeddingSpec | None = None
    """Optional embedding of token ids (only with `vocab_size`)."""
    recurrent: Annotated[list[RecurrentSpec], Field(min_length=1)]
    """The recurrent stack, bottom to top."""
    head: HeadSpec | None = None
    """Optional Dense head; omitted means the last recurrent layer's outputs are the model's outputs."""
    training: TrainingSpec | None = None
    """Optional training settings."""

    # -- derived facts -------------------------------------------------------------------------

    def layer_names(self) -> list[str]:
        """Effective layer names, bottom to top (the names used for weights and in the summary)."""
        names = []
        if self.embedding is not None:
            names.append(self.embedding.name or "embedding")
        names += [layer.name or f"recurrent_{i}" for i, layer in enumerate(self.recurrent)]
        if self.head is not None:
            names.append(self.head.name or "head")
        return names

    @property
    def output_per_step(self) -> bool:
        """True when the model outputs one vector per time step."""
        return self.recurrent[-1].return_sequences

    @property
    def output_units(self) -> int:
        return self.head.units if self.head is not None else self.recurrent[-1].output_units

    @property
    def output_activation(self) -> str:
        """Activation of the model's outputs (`tanh` etc. of the last recurrent layer without a head)."""
        return self.head.activation if self.head is not None else self.recurrent[-1].activation

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that :func:`rnnspec.load_spec` reads back to an equal spec."""
        return self.model_dump(mode="json", exclude_none=True)

    # -- cross-field checks ----------------------------------------------------------------------

    @model_validator(mode="after")
    def _check_model(self) -> ModelSpec:
        issues = list(_cross_field_issues(self))
        if issues:
            raise CrossFieldIssues(issues)
        return self


def _layer_label(spec: ModelSpec, index: int) -> str:
    layer = spec.recurrent[index]
    return f"recurrent[{index}] ({layer.name or f'recurrent_{index}'}, {layer.cell})"


def _cross_field_issues(spec: ModelSpec):
    if spec.embedding is not None and spec.input.features is not None:
        yield CrossFieldIssue(
            path=("embedding",),
            message="an embedding needs token-id input, but the input is feature vectors",
            received=f"input.features: {spec.input.features} with an embedding",
            expected="`input.vocab_size` with an embedding, or `input.features` without one",
            fix="remove `embedding`, or replace `input.features` with `input.vocab_size`",
        )
    if spec.input.vocab_size is not None and spec.embedding is None:
        yield CrossFieldIssue(
            path=("input", "vocab_size"),
            message="token-id input needs an embedding before the recurrent layers",
            received="input.vocab_size without an `embedding` section",
            expected="an `embedding: {output_dim: N}` section",
            fix="add `embedding: {output_dim: 32}`, or use `features: N` for one-hot or dense input",
        )
    for i, layer in enumerate(spec.recurrent[:-1]):
        if not layer.return_sequences:
            yield CrossFieldIssue(
                path=("recurrent", i, "return_sequences"),
                message=f"{_layer_label(spec, i)} feeds {_layer_label(spec, i + 1)}, "
                "so it must return the whole sequence",
                received="return_sequences: false",
                expected="return_sequences: true on every recurrent layer but the last",
                fix=f"set `return_sequences: true` on recurrent[{i}]",
            )
    for i, layer in enumerate(spec.recurrent):
        if layer.bidirectional and layer.go_backwards:
            yield CrossFieldIssue(
                path=("recurrent", i, "go_backwards"),
                message="a bidirectional layer already runs one copy backwards; Keras's Bidirectional rejects "
                "go_backwards on the wrapped layer",
                received="bidirectional: true with go_backwards: true",
                expected="go_backwards: false (the default) on a bidirectional layer",
                fix=f"remove `go_backwards` from recurrent[{i}]",
            )
    names = spec.layer_names()
    seen: set[str] = set()
    for name in names:
        if name in seen:
            yield CrossFieldIssue(
                path=_path_of_name(spec, name),
                message=f"layer name {name!r} is used twice; weights are named by layer",
                received=f"two layers named {name!r}",
                expected="unique layer names",
                fix="rename one of them, or drop `name` to get the default",
            )
        seen.add(name)
    if spec.training is not None:
        yield from _loss_issues(spec)


def _path_of_name(spec: ModelSpec, name: str) -> tuple[str | int, ...]:
    hits: list[tuple[str | int, ...]] = []
    if spec.embedding is not None and spec.embedding.name == name:
        hits.append(("embedding", "name"))
    hits += [("recurrent", i, "name") for i, layer in enumerate(spec.recurrent) if layer.name == name]
    if spec.head is not None and spec.head.name == name:
        hits.append(("head", "name"))
    return hits[-1] if hits else ()


def _loss_issues(spec: ModelSpec):
    assert spec.training is not None
    loss = spec.training.loss
    act = spec.output_activation
    units = spec.output_units
    where = "the head" if spec.head is not None else f"the last recurrent layer ({act})"
    received = f"loss {loss.name}{' (from_logits)' if loss.from_logits else ''} on {where}: {units} unit(s), {act}"
    path = ("training", "loss")
    if loss.name == "mse":
        return
    if loss.from_logits and act in ("sigmoid", "softmax"):
        yield CrossFieldIssue(
            path=path,
            message="from_logits: true, but the outputs already go through " + act,
            received=received,
            expected="from_logits: true only when the outputs are raw scores (linear head, or no head)",
            fix=f"drop `from_logits`, or set the head's activation to linear (the loss then applies {act})",
        )
        return
    if loss.name == "binary_crossentropy":
        if act == "softmax":
            yield CrossFieldIssue(
                path=path,
                message=f"binary_crossentropy scores independent yes/no outputs, but the head is a softmax over "
                f"{units} classes",
                received=received,
                expected="binary_crossentropy with sigmoid outputs; a softmax head with a categorical loss",
                fix="use `loss: sparse_categorical_crossentropy` (integer labels) or "
                "`categorical_crossentropy` (one-hot labels)",
            )
        elif act != "sigmoid" and not loss.from_logits:
            yield CrossFieldIssue(
                path=path,
                message=f"binary_crossentropy needs probabilities, but the outputs are {act}",
                received=received,
                expected="a sigmoid head, or `from_logits: true` on raw scores",
                fix="set the head's `activation: sigmoid`, or use `loss: {name: binary_crossentropy, "
                "from_logits: true}`",
            )
    else:  # sparse_categorical / categorical
        if act == "sigmoid" or units < 2:
            yield CrossFieldIssue(
                path=path,
                message=f"{loss.name} needs a distribution over classes, but the outputs are {units} {act} unit(s)",
                received=received,
                expected="a softmax head with one unit per class (>= 2), or raw scores with from_logits: true",
                fix="for a yes/no label use `loss: binary_crossentropy` with one sigmoid unit; for classes use "
                "`head: {units: N_CLASSES, activation: softmax}`",
            )
        elif act != "softmax" and not loss.from_logits:
            yield CrossFieldIssue(
                path=path,
                message=f"{loss.name} needs probabilities, but the outputs are {act}",
                received=received,
                expected="a softmax head, or `from_logits: true` on raw scores",
                fix=f"set the head's `activation: softmax`, or use `loss: {{name: {loss.name}, from_logits: true}}`",
            )

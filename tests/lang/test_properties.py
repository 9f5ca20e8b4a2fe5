"""Property tests: random valid specs round-trip; random junk never raises anything but SpecError."""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnspec import SpecError, analyze, loads_spec, spec_from_dict
from rnnspec.lang.source import parse_bytes
from rnnspec.lang.spec import RECURRENT_ACTIVATIONS

CELLS = ["simple_rnn", "lstm", "gru"]


@st.composite
def layer(draw, last: bool):
    cell = draw(st.sampled_from(CELLS))
    out = {"cell": cell, "units": draw(st.integers(1, 64))}
    if not last:
        out["return_sequences"] = True
    elif draw(st.booleans()):
        out["return_sequences"] = draw(st.booleans())
    optional = {
        "activation": st.sampled_from(RECURRENT_ACTIVATIONS),
        "use_bias": st.booleans(),
        "dropout": st.floats(0, 0.99),
        "recurrent_dropout": st.floats(0, 0.99),
        "go_backwards": st.booleans(),
        "bidirectional": st.booleans(),
        "merge_mode": st.sampled_from(["concat", "sum", "mul", "ave"]),
    }
    if cell != "simple_rnn":
        optional["recurrent_activation"] = st.sampled_from(RECURRENT_ACTIVATIONS)
    if cell == "lstm":
        optional["unit_forget_bias"] = st.booleans()
    if cell == "gru":
        optional["reset_after"] = st.booleans()
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        out[key] = draw(optional[key])
    if out.get("bidirectional") and out.get("go_backwards"):
        del out["go_backwards"]  # Keras's Bidirectional rejects it (an error case of its own)
    return out


@st.composite
def valid_spec(draw):
    tokens = draw(st.booleans())
    spec: dict = {"rnnspec": 1, "name": draw(st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True))}
    spec["convention"] = draw(st.sampled_from(["keras", "torch"]))
    seq_len = draw(st.none() | st.integers(1, 1000))
    if tokens:
        spec["input"] = {"vocab_size": draw(st.integers(1, 100_000))}
        spec["embedding"] = {"output_dim": draw(st.integers(1, 512)), "mask_zero": draw(st.booleans())}
    else:
        spec["input"] = {"features": draw(st.integers(1, 300))}
    if seq_len is not None:
        spec["input"]["seq_len"] = seq_len
    depth = draw(st.integers(1, 4))
    spec["recurrent"] = [draw(layer(last=i == depth - 1)) for i in range(depth)]
    head_kind = draw(st.sampled_from(["none", "sigmoid", "softmax", "linear"]))
    if head_kind == "sigmoid":
        spec["head"] = {"units": 1, "activation": "sigmoid"}
        loss = "binary_crossentropy"
    elif head_kind == "softmax":
        spec["head"] = {"units": draw(st.integers(2, 50)), "activation": "softmax"}
        loss = draw(st.sampled_from(["sparse_categorical_crossentropy", "categorical_crossentropy"]))
    elif head_kind == "linear":
        spec["head"] = {"units": draw(st.integers(1, 10))}
        loss = "mse"
    else:
        loss = "mse"
    if draw(st.booleans()):
        spec["training"] = {
            "optimizer": draw(
                st.sampled_from(["sgd", "adam", "rmsprop"])
                | st.fixed_dictionaries(
                    {
                        "name": st.sampled_from(["sgd", "adam", "rmsprop"]),
                        "learning_rate": st.floats(1e-5, 1.0),
                    }
                )
            ),
            "loss": loss,
            "batch_size": draw(st.integers(1, 512)),
            "validation_split": draw(st.floats(0, 0.9)),
        }
    return spec


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_spec())
def test_valid_specs_round_trip(data: dict):
    spec = spec_from_dict(data)
    dumped = spec.to_dict()
    assert loads_spec(yaml.safe_dump(dumped, sort_keys=False)) == spec
    assert loads_spec(json.dumps(dumped), fmt="json") == spec
    result = analyze(spec)
    assert result.total_params == sum(r.params for r in result.layers) > 0
    assert len(result.layers) == len(spec.layer_names())


KEYS = [
    "rnnspec",
    "name",
    "input",
    "vocab_size",
    "features",
    "seq_len",
    "embedding",
    "output_dim",
    "mask_zero",
    "recurrent",
    "cell",
    "units",
    "return_sequences",
    "head",
    "activation",
    "training",
    "loss",
    "optimizer",
    "bidirectional",
    "merge_mode",
    "reset_after",
    "lstm",
    "gru",
    "from_logits",
    "name",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.sampled_from(KEYS)
)
junk = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children, max_size=6)
    ),
    max_leaves=30,
)


def _only_spec_errors(call) -> None:
    try:
        call()
    except SpecError as exc:
        assert exc.issues and all(i.message for i in exc.issues)


@settings(max_examples=300, deadline=None)
@given(junk)
def test_junk_data_raises_only_spec_error(data):
    _only_spec_errors(lambda: spec_from_dict(data))
    _only_spec_errors(lambda: loads_spec(yaml.safe_dump(data)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_junk_bytes_raise_only_spec_error(raw: bytes):
    _only_spec_errors(lambda: parse_bytes(raw, file="junk.yaml"))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{}[]:,-'\"#&*!|>%@` \n\tabc01")), max_size=120))
def test_junk_text_raises_only_spec_error(text: str):
    _only_spec_errors(lambda: loads_spec(text))
    _only_spec_errors(lambda: loads_spec(text, fmt="json"))

"""The keras backend under tf.distribute.MirroredStrategy (2 logical CPUs): the configurations it supports
train exactly as one device does; the ones Keras computes differently are refused with the reason.

TensorFlow fixes its logical devices when it starts, so the scenarios run in a fresh Python process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.parity import backend_or_skip

CHILD = r'''
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
import rnnspec

def spec(extra_training="", head="{units: 1, activation: sigmoid}", seq=False, mask="true"):
    return rnnspec.loads_spec(f"""rnnspec: 1
name: mirrored
input: {{vocab_size: 50}}
embedding: {{output_dim: 8, mask_zero: {mask}}}
recurrent:
  - {{cell: lstm, units: 12, return_sequences: {'true' if seq else 'false'}}}
head: {head}
training: {{optimizer: {{name: adam, learning_rate: 0.01{extra_training}}}, loss: binary_crossentropy}}
""")

rng = np.random.default_rng(0)
x = rng.integers(1, 50, size=(48, 14)).astype(np.int32)
for row, pad in enumerate(rng.integers(0, 6, size=48)):
    x[row, :pad] = 0
y = rng.integers(0, 2, size=48).astype(np.float32)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = {}

def mirrored(s):
    with strategy.scope():
        return rnnspec.build(s, "keras", seed=0)

s = spec()
one = rnnspec.fit(rnnspec.build(s, "keras", seed=0), x, y, epochs=2, batch_size=16, seed=1, validation_split=0.25)
two = rnnspec.fit(mirrored(s), x, y, epochs=2, batch_size=16, seed=1, validation_split=0.25)
out["replicas"] = mirrored(s).distribute_strategy.num_replicas_in_sync
out["one"], out["two"] = one, two

def refusal(s, xs, ys, batch):
    try:
        rnnspec.fit(mirrored(s), xs, ys, epochs=1, batch_size=batch, seed=1)
        return "trained"
    except rnnspec.RnnspecError as exc:
        return str(exc)

out["clipnorm"] = refusal(spec(", clipnorm: 1.0"), x, y, 16)
out["masked-per-step"] = refusal(spec(seq=True), x, np.ones((48, 14), np.float32), 16)
out["uneven"] = refusal(spec(), x[:45], y[:45], 16)
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def mirrored() -> dict:
    backend_or_skip("keras")
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_replicas_train_as_one_device(mirrored: dict):
    import numpy as np

    assert mirrored["replicas"] == 2
    one, two = mirrored["one"], mirrored["two"]
    assert list(one) == list(two)
    for key in ("batch_loss", "loss", "val_loss"):
        # even shards, an unmasked per-sample mean: float32 rounding at most (the reference measured 1.3e-6)
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=0)


def test_what_a_strategy_computes_differently_is_refused(mirrored: dict):
    assert "clips each replica's gradients before they are summed" in mirrored["clipnorm"]
    assert "divides a masked loss by each replica's own count" in mirrored["masked-per-step"]
    assert "a batch of 13 samples does not split evenly across 2 replicas" in mirrored["uneven"]

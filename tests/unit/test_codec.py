"""Checkpoints round-trip through the river codec and are refused when not authentic."""

import pickle

import pytest

from app.models.codec import CheckpointError, RiverCodec, sign
from app.models.shard import ShardModels
from app.models.spec import parse_specs
from tests.model_state import canonical


def test_checkpoint_round_trip():
    codec = RiverCodec("s3cret")
    shard = ShardModels.fresh(1, parse_specs("StandardScaler | LogisticRegression; GaussianNB"))
    shard.take_event({"id": "1", "key": None, "ts": 0, "x": {"a": 1.0}, "y": True}, now=1.0)
    shard.offset = 7
    snapshot = shard.snapshot()
    back = codec.loads(codec.dumps(snapshot))
    assert back["offset"] == 7
    assert canonical(back) == canonical(snapshot)


def test_wrong_secret_is_refused():
    data = RiverCodec("one").dumps({"offset": 1})
    with pytest.raises(CheckpointError, match="signature does not match"):
        RiverCodec("two").loads(data)


def test_tampered_checkpoint_is_refused():
    data = bytearray(RiverCodec("k").dumps({"offset": 1}))
    data[-2] ^= 1
    with pytest.raises(CheckpointError):
        RiverCodec("k").loads(bytes(data))


def test_signed_but_forbidden_class_is_refused():
    # Even with the right secret, only River's classes and a few containers may be unpickled.
    evil = sign(pickle.dumps(__import__("os").getcwd), "k")
    with pytest.raises(CheckpointError, match="not allowed"):
        RiverCodec("k").loads(evil)

"""The codecs of streamlearn.

* ``orjson``: JSON for every topic and table the app owns (events, labels, predictions, ...).
* :class:`RiverCodec`: model checkpoints. A pickled model read back from Kafka is code, so each
  checkpoint is signed with HMAC-SHA256 (key: ``STREAMLEARN_CHECKPOINT_SECRET``) and unpickled
  only after the signature checks, and then only from an allowlist of classes (River's own plus
  the few standard containers River models hold).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import pickle
from typing import Any

import orjson
from faust.serializers import codecs

SIGNATURE_BYTES = 32

#: Modules whose every class may appear in a checkpoint.
ALLOWED_MODULE_PREFIXES = ("river.",)
#: Single names outside River that River models are built from.
ALLOWED_GLOBALS = {
    ("builtins", "float"),
    ("builtins", "int"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("collections", "Counter"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("collections", "deque"),
    ("functools", "partial"),
    ("random", "Random"),
    ("copyreg", "_reconstructor"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
}


class CheckpointError(ValueError):
    """A checkpoint is unsigned, signed with another secret, or holds a class not allowed."""


class OrjsonCodec(codecs.Codec):
    """JSON via orjson; dict keys that are not strings (River's synthetic data) become strings.

    >>> codec = OrjsonCodec()
    >>> codec.dumps({"x": {1: 0.5}, "y": True})
    b'{"x":{"1":0.5},"y":true}'
    >>> codec.loads(b'{"a": [1, 2.5]}')
    {'a': [1, 2.5]}
    """

    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


class _RiverUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith(ALLOWED_MODULE_PREFIXES) or (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise CheckpointError(f"checkpoint refers to {module}.{name}, which is not allowed")


def unpickle(payload: bytes) -> Any:
    """Unpickle a verified payload, allowing River's classes and :data:`ALLOWED_GLOBALS` only."""
    return _RiverUnpickler(io.BytesIO(payload)).load()


def sign(payload: bytes, secret: str) -> bytes:
    """``payload`` prefixed with its HMAC-SHA256 under ``secret``.

    >>> len(sign(b"abc", "k")) == 3 + SIGNATURE_BYTES
    True
    """
    return hmac.new(secret.encode(), payload, hashlib.sha256).digest() + payload


def verify(signed: bytes, secret: str) -> bytes:
    """The payload of ``signed`` if its signature matches ``secret``; else :class:`CheckpointError`.

    >>> verify(sign(b"abc", "k"), "k")
    b'abc'
    >>> verify(sign(b"abc", "k"), "other")
    Traceback (most recent call last):
    app.models.codec.CheckpointError: checkpoint signature does not match ...
    """
    digest, payload = signed[:SIGNATURE_BYTES], signed[SIGNATURE_BYTES:]
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    if len(digest) != SIGNATURE_BYTES or not hmac.compare_digest(digest, expected):
        raise CheckpointError(
            "checkpoint signature does not match STREAMLEARN_CHECKPOINT_SECRET: refusing to "
            "unpickle it (written with another secret, or tampered with)"
        )
    return payload


class RiverCodec(codecs.Codec):
    """Signed, allowlisted pickle for River models and metrics."""

    def __init__(self, secret: str, **kwargs: Any) -> None:
        super().__init__(secret=secret, **kwargs)
        self.secret = secret

    def _dumps(self, obj: Any) -> bytes:
        return sign(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), self.secret)

    def _loads(self, s: bytes) -> Any:
        return unpickle(verify(s, self.secret))


def register() -> None:
    """Make ``orjson`` known to Faust under that name.

    Faust's own ``json`` codec is left in place: Faust also uses it for its internal records
    (assignor metadata, ...), and for table keys and plain-dict table values. Checkpoints do not
    go through a Faust codec: ``tables/checkpoints.py`` signs and verifies them itself with
    :class:`RiverCodec`, so that Faust's recovery never unpickles anything.
    """
    codecs.register("orjson", OrjsonCodec())

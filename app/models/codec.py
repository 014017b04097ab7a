"""The codecs of streamlearn.

* ``orjson``: JSON for every topic and table the app owns (events, labels, predictions, ...).
* :class:`RiverCodec`: model checkpoints, signed and read back as ``app/models/signing.py``
  says (HMAC-SHA256 with ``STREAMLEARN_CHECKPOINT_SECRET``, an allowlist of classes).
"""

from __future__ import annotations

import pickle
from typing import Any

import orjson
from faust.serializers import codecs

from app.models.signing import CheckpointError, sign, unpickle, verify

__all__ = ["CheckpointError", "OrjsonCodec", "RiverCodec", "register", "sign", "unpickle", "verify"]


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

"""Signed pickles of River models, and reading them back safely. Pure: no Faust, no Kafka.

A pickled model read back from Kafka or a file is code, so every checkpoint, version and
exported model is signed with HMAC-SHA256 (key: ``STREAMLEARN_CHECKPOINT_SECRET``) and
unpickled only after the signature checks, and then only from an allowlist of classes (River's
own plus the few standard containers River models hold). ``app/models/codec.py`` (checkpoints),
``tables/versions.py`` (versions) and ``app/models/export.py`` (files) use it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import pickle
from typing import Any

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

"""Every private name of faust, mode, aiokafka and river that streamlearn uses, one function each.

Checked against the pinned versions (``requirements.lock``): faust-streaming 0.15.3,
mode-streaming 0.7.1, aiokafka 0.14.0, river 0.26.1. Each function says why it is needed and
what it relies on; tests/unit/test_compat.py tests that behaviour, without a broker, so an
upgrade that changes it fails there rather than in a running worker. No other module of app/,
agents/ or tables/ touches a private name of these libraries (tests/unit/test_layers.py holds
it). mode-streaming needs none today.

Not here, as Faust documents them for subclasses: the ``_dumps`` / ``_loads`` methods of a
``faust.serializers.codecs.Codec`` (app/models/codec.py).

Cheap to import: it imports none of these libraries at import time (pure modules import it), and
nothing that builds the app; a function imports what it needs when called.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

# aiokafka


def return_raw_records(marker: object) -> None:
    """Make aiokafka's fetcher hand out its own C records (``offset``, ``key``, ``value``,
    ``timestamp``, ``headers``) to a consumer created with ``key_deserializer=marker``, instead
    of a Python ``ConsumerRecord`` per message; every other consumer is untouched. Idempotent.

    Needed by app/kafka/raw_fetch.py: a ``ConsumerRecord`` costs about as much per message as
    decoding its JSON. aiokafka 0.14.0 builds it in ``PartitionRecords._consumer_record(tp,
    record)``, called per record, and keeps the consumer's key deserializer as
    ``PartitionRecords._key_deserializer``; this wraps that method.
    """
    from aiokafka.consumer.fetcher import PartitionRecords

    original = PartitionRecords._consumer_record
    if getattr(original, "raw_marker", None) is marker:
        return

    def _consumer_record(self: Any, tp: Any, record: Any) -> Any:
        if self._key_deserializer is marker:
            return record
        return original(self, tp, record)

    _consumer_record.raw_marker = marker  # type: ignore[attr-defined]
    PartitionRecords._consumer_record = _consumer_record


def append_to_batch(batch: Any, key: bytes | None, value: bytes | None, headers: list) -> bool:
    """Append one message to an open aiokafka ``BatchBuilder`` (from
    ``producer.create_batch()``, no serializers): True, or False when it is full (and then left
    as it was).

    Needed by app/kafka/outbox.py, once per message produced: ``BatchBuilder.append`` parses keyword
    arguments and calls the (absent) serializers first. aiokafka 0.14.0's ``BatchBuilder`` keeps
    the C builder as ``_builder`` (``append(offset, timestamp, key, value, headers)``, None when
    full) and the next offset as ``_relative_offset``. A None timestamp is the time of the append.
    """
    if batch._builder.append(batch._relative_offset, None, key, value, headers) is None:
        return False
    batch._relative_offset += 1
    return True


def refresh_metadata(consumer: Any) -> Awaitable[Any]:
    """Ask the broker for the cluster's metadata again (await the result), so that
    ``consumer.partitions_for_topic`` sees a topic created after the consumer started.

    Needed by app/commands/features.py (``kafka:TOPIC`` input). aiokafka 0.14.0's
    ``AIOKafkaConsumer`` has no public call for it; its client, ``_client``, has
    ``force_metadata_update()``, which wakes the metadata task and returns a future.
    """
    return consumer._client.force_metadata_update()


# faust


def drop_blueprint(web: Any, blueprint: str) -> bool:
    """Leave ``blueprint`` (its ``module:name``) out of the blueprints Faust's web server
    applies when it starts: whether the list was found.

    Needed by app/web/views.py (``drop_faust_index``): faust-streaming 0.15.3 mounts its
    ``{"status": "OK"}`` index at ``/`` whenever its statistics pages are off, with no setting to
    leave it out. ``Web.init_server`` applies the ``(prefix, blueprint)`` pairs of
    ``web.blueprints._enabled`` (a ``BlueprintManager``); this removes it from that list.
    """
    enabled = getattr(web.blueprints, "_enabled", None)
    if not isinstance(enabled, list):
        return False
    enabled[:] = [(prefix, bp) for prefix, bp in enabled if bp != blueprint]
    return True


def add_web_middleware(web: Any, middleware: Callable) -> None:
    """Add an aiohttp ``middleware`` to Faust's web server, before it starts: it then sees
    every request the server answers (Faust's own pages and a 404 too).

    Needed by app/web/auth.py (STREAMLEARN_WEB_TOKEN): Faust has no setting for middlewares.
    faust-streaming 0.15.3's aiohttp driver (``faust.web.drivers.aiohttp.Web``) builds its
    ``aiohttp.web.Application`` when the app's ``web`` is first asked for and keeps it as
    ``web_app``; aiohttp freezes its ``middlewares`` list when the server starts
    (``AppRunner.setup``), so this must run while the worker is assembled.
    """
    from aiohttp import web as aiohttp_web

    application = web.web_app
    if not isinstance(application, aiohttp_web.Application) or application.frozen:
        raise RuntimeError("Faust's web server has started, or is not aiohttp's: no middleware")
    application.middlewares.append(middleware)


def read_committed(app: Any) -> None:
    """Make ``app``'s Faust worker consumer read only committed messages of transactional
    producers (Kafka's ``isolation.level=read_committed``), as with Faust's own exactly_once,
    but with Faust's agents left at least once. Idempotent; other apps are untouched.

    Needed by STREAMLEARN_PROCESSING_GUARANTEE=exactly_once: the shards' checkpoints, window
    values and parked features are written in transactions (app/kafka/transaction.py), and a
    table recovered, or a label joined, from a transaction that was aborted would stand on
    output nobody sees. Faust 0.15.3 chooses the level in
    ``AIOKafkaConsumerThread._create_worker_consumer`` from its own processing guarantee only,
    and aiokafka 0.14.0 keeps it as ``AIOKafkaConsumer._isolation_level`` until ``start()``
    builds its fetcher with it; this wraps that method, for apps marked ``read_committed``.
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    app.read_committed = True
    original = AIOKafkaConsumerThread._create_worker_consumer
    if getattr(original, "read_committed", False):
        return

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        if getattr(self.app, "read_committed", False):
            consumer._isolation_level = "read_committed"
        return consumer

    _create_worker_consumer.read_committed = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer


def forget_gaps(consumer: Any, tp: Any, start: int) -> None:
    """Forget the offsets from ``start`` on that Faust's ``consumer`` saw skipped in ``tp``, so
    that its commit waits for them to be acknowledged.

    Needed by agents/shards.py (``seek_back``): a Faust consumer that sees offsets skipped marks
    them as done, and its commit passes them. faust-streaming 0.15.3 keeps them per partition in
    ``Consumer._gap`` (an ``IntervalTree``) and adds them to the acknowledged offsets in
    ``_new_offset``.
    """
    gaps = consumer._gap.get(tp)
    if gaps:
        gaps.chop(start, 2**62)


def forget_unacked(consumer: Any, message: Any) -> None:
    """Stop Faust's ``consumer`` from waiting for ``message`` to be acknowledged, without
    acknowledging it (its offset is not committed: the next owner reads it again).

    Needed by tables/live_shard.py: a rebalance waits (``Consumer.wait_empty``) until the set of
    messages handed out and not yet acknowledged is empty, which faust-streaming 0.15.3 keeps as
    ``Consumer._unacked_messages``.
    """
    consumer._unacked_messages.discard(message)


def store_encoders(store: Any) -> tuple[Callable[[Any], bytes], Callable[[Any], bytes | None]]:
    """A table store's own ``(encode_key, encode_value)``: a key or value as the bytes the store
    and the table's changelog hold.

    Needed by tables/direct.py, which writes a table's changelog itself. faust-streaming 0.15.3's
    ``Store`` (``faust.stores.base``) has them as ``_encode_key`` and ``_encode_value``, with the
    table's key and value types and serializers.
    """
    return store._encode_key, store._encode_value


def decode_key(store: Any, raw: bytes) -> Any:
    """A key as the table's store holds it (bytes), decoded as the table reads it.

    Needed by tables/windows.py, whose sweep reads the store's raw entries. faust-streaming
    0.15.3: ``Store._decode_key``, the inverse of ``_encode_key`` (:func:`store_encoders`).
    """
    return store._decode_key(raw)


def decode_value(store: Any, raw: bytes) -> Any:
    """A value as the table's store holds it (bytes), decoded as the table reads it.

    Needed by tables/windows.py, whose sweep reads the store's raw entries. faust-streaming
    0.15.3: ``Store._decode_value``, the inverse of ``_encode_value`` (:func:`store_encoders`).
    """
    return store._decode_value(raw)


def partition_db(store: Any, partition: int) -> Any:
    """The rocksdict ``Rdict`` of one partition of a table's RocksDB store (opened if it was
    not), or None for a store not kept per partition (``memory://``) or not read through
    rocksdict.

    Needed by tables/direct.py (``stored``), to scan one partition in key order: Faust's table
    API has no such scan. faust-streaming 0.15.3's RocksDB ``Store`` opens a partition's database
    with ``_db_for_partition(partition)``, an ``Rdict`` when ``use_rocksdict``.
    """
    open_partition = getattr(store, "_db_for_partition", None)
    if open_partition is None or not getattr(store, "use_rocksdict", False):
        return None
    return open_partition(partition)


@contextmanager
def as_current_event(event: Any) -> Iterator[None]:
    """Within this block, Faust takes ``event`` for the event being processed: what
    ``faust.current_event()`` returns, and what a table write reads its partition from
    (``event.message.partition``). ``event`` must accept a weak reference.

    Needed by tables/anchor.py, to write to a table outside an agent's stream. faust-streaming
    0.15.3 keeps a weak reference to the current event in the context variable
    ``faust.streams._current_event``, which has no public setter.
    """
    from faust.streams import _current_event

    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


# river


def is_multiclass(model: Any) -> bool:
    """Whether a River classifier learns more than two classes.

    Needed by app/models/spec.py to choose a classifier's metrics. River 0.26.1 says it in
    ``Classifier._multiclass`` (False by default, True for e.g. ``GaussianNB``, forwarded by a
    ``Pipeline`` from its last step); River's own checks read it, and there is no public name.
    """
    return bool(getattr(model, "_multiclass", False))

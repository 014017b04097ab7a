"""``faust -A app features INPUT --out OUTPUT``: the stream's features, computed offline.

Reads INPUT: a JSONL file of events messages as they appear on the events topic (one message per
line, in file order), or ``kafka:TOPIC`` (every partition from its beginning to its end when the
command starts, each in order). Writes OUTPUT: one JSON line per event taken, ``{"id", "key",
"ts", "x", "y"?}`` (``x`` as the model sees it), or Parquet when OUTPUT ends in ``.parquet``
(columns ``id``, ``key``, ``ts``, ``y``, then ``x.<feature>`` per feature; needs pyarrow, the
``parquet`` extra). Messages the stream would refuse are counted and left out, and a summary
says why. A progress bar on a terminal. The features are ``app/features/offline.py``'s, the stream's
code. With ``format = "avro"`` in ``[events]``, only ``kafka:TOPIC`` (a JSONL file holds no
Avro): the registry must answer first (else one line, exit 1), then each record's writer schema
is loaded into the intake's decoder before it is taken (``RegistryClient.load_retrying``, as the
engine does: fetched once by id, the registry waited for up to
STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT), so that the rows equal the enriched topic's.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import click
import faust
import orjson
from faust.cli import AppCommand, argument, option

from app.config import Config
from app.contracts.mapping import Origin
from app.features.offline import OfflineFeatures, counted
from app.kafka.reader import bar, records
from app.kafka.registry import RegistryClient, RegistryError, RegistryUnavailable

KAFKA = "kafka:"
#: rows per Parquet row group
ROW_GROUP = 65536


def install(app: faust.App, config: Config, registry: RegistryClient | None = None) -> None:
    """Add ``faust -A app features`` to ``app``: it computes with ``config``'s intake and
    recipe (``registry``: the schema registry's client, for Avro events)."""

    @app.command(
        argument("input"),
        option("--out", "output", required=True, help="OUTPUT: a .jsonl file, or a .parquet file."),
    )
    async def features(self: AppCommand, input: str, output: str) -> None:
        """Compute the features of the events in INPUT (a JSONL file or kafka:TOPIC) as the
        stream does, into OUTPUT (JSON lines, or Parquet if it ends in .parquet)."""
        try:
            await _features(self, input, output, config, registry)
        except click.ClickException as exc:  # one line, not a worker's traceback
            print(f"features: {exc.format_message()}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None
        finally:
            if registry is not None:
                await registry.close()


async def _features(
    self: AppCommand,
    input: str,
    output: str,
    config: Config,
    registry: RegistryClient | None = None,
) -> None:
    offline = OfflineFeatures(config)
    if input.startswith(KAFKA):
        topic = input[len(KAFKA) :]
        if not topic:
            raise click.BadParameter("kafka:TOPIC needs a topic name", param_hint="INPUT")
        rows = topic_rows(offline, topic, config, registry)
    else:
        check_file_input(input, config)
        rows = _aiter(file_rows(offline, input, config.events_topic))
    if output.endswith(".parquet"):
        n = await write_parquet(rows, Path(output))
    else:
        n = await write_jsonl(rows, Path(output))
    print(offline.summary(), file=sys.stderr)
    self.say(f"features: {counted(n, 'row')} written to {output}")


def check_file_input(path: str, config: Config) -> None:
    """Refuse, before reading, a file that does not exist or a mapping that needs Kafka."""
    if not Path(path).is_file():
        raise click.BadParameter(f"{path}: no such file", param_hint="INPUT")
    mapping = config.event_mapping
    if mapping is None:
        return
    if mapping.fields.format == "avro":
        raise click.BadParameter(
            "the [events] mapping reads Avro (format = 'avro'), which a JSONL file does not "
            "hold: read the topic, kafka:TOPIC",
            param_hint="INPUT",
        )
    needs = [
        name
        for name, path_of in (("id", mapping.fields.id), ("time", mapping.fields.time))
        if path_of is None
    ]
    if mapping.key is None:
        needs.append("key")
    if needs:
        raise click.BadParameter(
            f"the [events] mapping takes {', '.join(needs)} from Kafka (the record's key, "
            "timestamp or offset), which a file does not have: read the topic, kafka:TOPIC",
            param_hint="INPUT",
        )


def file_rows(offline: OfflineFeatures, name: str, topic: str) -> Iterator[dict]:
    """The rows of the messages of the JSONL file ``name``, in file order (blank lines skipped).
    A message refused is reported as ``name line N`` (N from 1), not as a topic's offset
    (``topic``: the events topic, what a mapping sees as the origin)."""
    path = Path(name)
    with path.open("rb") as f, bar(path.stat().st_size, "B", path.name) as shown:
        for number, line in enumerate(f):
            shown.update(len(line))
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            origin = Origin(topic, 0, number, None, 0)
            row = offline.take(line, origin, f"{name} line {number + 1}")
            if row is not None:
                yield row


async def topic_rows(
    offline: OfflineFeatures,
    topic: str,
    config: Config,
    registry: RegistryClient | None = None,
) -> AsyncIterator[dict]:
    """The rows of a topic's records: each partition from its beginning to its end offset when
    this started, each partition in order (partitions interleaved). Avro: each record's schema
    loaded first (a set lookup once it is known)."""
    decoder = offline.intake.decoder
    if decoder is not None:  # (asked here: a worker's start-up check is the worker's only)
        try:
            await registry.check()
        except RegistryError as exc:
            raise click.ClickException(str(exc)) from None
    async for record in records(config.settings, topic):
        if decoder is not None:
            try:
                await registry.load_retrying(
                    decoder, (record.value,), config.schema_registry_timeout
                )
            except RegistryUnavailable as exc:
                raise click.ClickException(str(exc)) from None
        origin = Origin(topic, record.partition, record.offset, record.key, record.timestamp)
        row = offline.take(record.value, origin)
        if row is not None:
            yield row


async def write_jsonl(rows: AsyncIterator[dict], path: Path) -> int:
    """Write one JSON line per row to ``path`` (through a temporary file: all or nothing)."""
    n = 0
    with _replacing(path) as f:
        async for row in rows:
            f.write(orjson.dumps(row))
            f.write(b"\n")
            n += 1
    return n


async def write_parquet(rows: AsyncIterator[dict], path: Path) -> int:
    """Write the rows to a Parquet file: a first pass to a temporary JSONL file finds every
    feature and its type, a second writes row groups of :data:`ROW_GROUP` rows."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise click.ClickException(
            "writing Parquet needs pyarrow: pip install 'streamlearn[parquet]' (or pyarrow)"
        ) from None
    kinds: dict[str, set[type]] = {}
    with tempfile.TemporaryFile() as spool:
        n = 0
        async for row in rows:
            flat = _flat(row)
            for name, value in flat.items():
                kinds.setdefault(name, set()).add(type(value))
            spool.write(orjson.dumps(flat))
            spool.write(b"\n")
            n += 1
        schema = pa.schema([(name, _arrow_type(pa, seen)) for name, seen in kinds.items()])
        spool.seek(0)
        with _replacing(path) as f, pq.ParquetWriter(f, schema) as writer:
            batch: list[dict] = []
            for line in spool:
                batch.append(orjson.loads(line))
                if len(batch) == ROW_GROUP:
                    writer.write_table(_table(pa, schema, batch))
                    batch.clear()
            if batch or n == 0:
                writer.write_table(_table(pa, schema, batch))
    return n


def _flat(row: dict) -> dict:
    flat = {"id": row["id"], "key": row["key"], "ts": row["ts"]}
    if "y" in row:
        flat["y"] = row["y"]
    for name, value in row["x"].items():
        flat[f"x.{name}"] = value
    return flat


def _arrow_type(pa, seen: set[type]):
    """One column's type: numbers stay numbers (float64 once any is a float)."""
    seen = seen - {type(None)}
    if seen <= {bool} and seen:
        return pa.bool_()
    if seen <= {int} and seen:
        return pa.int64()
    if seen <= {int, float} and seen:
        return pa.float64()
    return pa.string()  # strings, or a mix: JSON text of each value


def _table(pa, schema, batch: list[dict]):
    columns = []
    for field in schema:
        values = [row.get(field.name) for row in batch]
        if field.type == pa.string():
            values = [
                v if v is None or type(v) is str else orjson.dumps(v).decode() for v in values
            ]
        columns.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


class _replacing:
    """A binary file written beside ``path`` and moved onto it only when complete."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        self.file = os.fdopen(fd, "wb")
        return self.file

    def __exit__(self, kind, exc, tb) -> None:
        self.file.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


async def _aiter(rows: Iterator[dict]) -> AsyncIterator[dict]:
    for i, row in enumerate(rows):
        yield row
        if i % 10000 == 9999:
            await asyncio.sleep(0)

"""``faust -A app models list|export|promote|rollback``: the models of an app, through Kafka.

Reads: the ``shard-checkpoints`` changelog (``list``: each shard's newest checkpoint) and the
``model-versions`` changelog (``export``: the kept versions), signed with
STREAMLEARN_CHECKPOINT_SECRET and checked before anything is unpickled. Writes: ``export``'s
file (``--out``; ``app/models/version_file.py``: ``from app import load_model`` reads it back)
and, with ``--mlflow``, a model version in an MLflow registry (``app/commands/mlflow_export.py``,
the one module that imports MLflow, imported on that path only);
``promote`` and ``rollback``: one command per shard on ``<id>-control``, checked first against
what Kafka holds (an unknown model or version is refused, nothing sent), applied by each shard
once (``agents/control.py``). Keeps nothing. ``list`` and ``export`` need no worker running.

(Faust has a ``models`` command of its own, for its Record classes: this one takes its name.)
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from types import ModuleType

import click
import faust
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faust.cli import AppCommand, argument, option

from app.config import Config
from app.kafka.admin import bootstrap_servers
from app.kafka.auth import client_options
from app.kafka.reader import records
from app.models.codec import RiverCodec
from app.models.signing import CheckpointError
from app.models.version_file import describe, write_file

ACTIONS = ("list", "export", "promote", "rollback")
#: what ``export --mlflow`` needs installed
INSTALL = "pip install 'streamlearn[mlflow]' (mlflow-skinny, SQLAlchemy, alembic, pandas)"


def install(app: faust.App, config: Config) -> None:
    """Add ``faust -A app models`` to ``app``."""

    @app.command(
        argument("action", type=click.Choice(ACTIONS)),
        argument("name", required=False),
        option("--version", "version", type=int, default=None, help="export: this version."),
        option("--shard", "shard", type=int, default=None, help="export: of this shard."),
        option("--out", "out", default=None, help="export: the file to write."),
        option(
            "--mlflow",
            "to_mlflow",
            is_flag=True,
            default=False,
            help="export: register it in the MLflow registry of MLFLOW_TRACKING_URI (default "
            "sqlite:///mlflow.db), alias champion or challenger (needs streamlearn[mlflow]).",
        ),
        option("--json", "as_json", is_flag=True, default=False, help="list: JSON lines."),
        name="models",
    )
    async def models(
        self: AppCommand,
        action: str,
        name: str | None,
        version: int | None,
        shard: int | None,
        out: str | None,
        to_mlflow: bool,
        as_json: bool,
    ) -> None:
        """The app's models: list (role, version and metrics per shard), export NAME (a kept
        version [--version V] [--shard S], to a signed file --out FILE and/or to an MLflow
        registry --mlflow), promote NAME, or
        rollback NAME [--version V] (default: the version taken at its last promotion or drift
        action), on every shard."""
        try:
            if action == "list":
                for line in await listing(config, as_json):
                    self.say(line)
            elif action == "export":
                for line in await export(config, name, version, shard, out, to_mlflow):
                    self.say(line)
            else:
                self.say(await send_command(config, action, name, version))
        except (click.ClickException, CheckpointError) as exc:
            text = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
            print(f"models {action}: {text}", file=sys.stderr)
            raise SystemExit(2) from None


async def newest(config: Config, table: str) -> dict:
    """The newest value of each key of ``table``'s changelog (deleted keys left out)."""
    found: dict = {}
    topic = f"{config.id}-{table}-changelog"
    async for record in records(config.settings, topic, progress=False):
        key = json.loads(record.key)
        if record.value is None:
            found.pop(key, None)
        else:
            found[key] = record.value
    return found


async def listing(config: Config, as_json: bool = False) -> list[str]:
    """One line per model and shard: role, version, labels learned and metrics, from the
    shards' newest checkpoints."""
    codec = RiverCodec(config.checkpoint_secret)
    rows = []
    for shard, raw in sorted((await newest(config, "shard-checkpoints")).items()):
        snapshot = codec.loads(raw)
        champion = snapshot.get("champion") or next(iter(snapshot["models"]), "")
        for model, saved in snapshot["models"].items():
            rows.append(
                {
                    "shard": shard,
                    "name": model,
                    "role": "champion" if model == champion else "challenger",
                    "version": saved.get("version", 0),
                    "n_learned": saved["n_learned"],
                    "spec": saved["spec"].strip(),
                    "metrics": {type(m).__name__: m.get() for m in saved["metric"]},
                }
            )
    if not rows:
        raise click.ClickException(f"no checkpoint of app {config.id!r} in Kafka yet")
    if as_json:
        return [orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY).decode() for row in rows]
    lines = [f"{'shard':>5}  {'model':<28} {'role':<10} {'version':>7} {'learned':>9}  metrics"]
    for row in rows:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in row["metrics"].items())
        lines.append(
            f"{row['shard']:>5}  {row['name']:<28} {row['role']:<10} {row['version']:>7} "
            f"{row['n_learned']:>9}  {shown}"
        )
    return lines


def mlflow_export() -> ModuleType:
    """``app/commands/mlflow_export.py``, imported now (it imports MLflow); if MLflow's client
    is not installed, a ``ClickException`` saying what to install."""
    try:
        from app.commands import mlflow_export
    except ModuleNotFoundError as exc:
        raise click.ClickException(f"--mlflow needs MLflow's client ({exc}): {INSTALL}") from None
    return mlflow_export


async def export(
    config: Config,
    name: str | None,
    version: int | None,
    shard: int | None,
    out: str | None,
    to_mlflow: bool = False,
) -> list[str]:
    """Export a kept version of model ``name``, that ``version`` (default: the newest kept) of
    that ``shard`` (default: the one whose version is newest): write it to ``out`` and/or
    register it in MLflow's registry (``to_mlflow``); what was done, a line each."""
    if not name or not (out or to_mlflow):
        raise click.UsageError("export needs NAME and --out FILE or --mlflow")
    registry = mlflow_export() if to_mlflow else None  # (before reading Kafka: fail early)
    kept = [
        (describe(value), value)
        for key, value in (await newest(config, "model-versions")).items()
        if key.split(":", 1)[0] == name
    ]
    if not kept:
        raise click.ClickException(
            f"no version of model {name!r} is kept in Kafka (a version is taken every "
            "STREAMLEARN_SNAPSHOT_EVERY labels, and at promotions and drift actions)"
        )
    chosen = [
        (meta, value)
        for meta, value in kept
        if (shard is None or meta["shard"] == shard)
        and (version is None or meta["version"] == version)
    ]
    if not chosen:
        have = ", ".join(f"shard {m['shard']} v{m['version']}" for m, _ in sorted_kept(kept))
        raise click.ClickException(f"model {name!r} has no such version; kept: {have}")
    meta, value = max(chosen, key=lambda mv: (mv[0]["version"], -mv[0]["shard"]))
    what = (
        f"models export: {name} version {meta['version']} of shard {meta['shard']} "
        f"({meta['n_learned']} labels learned, {meta['reason']})"
    )
    done = []
    if out:
        path = Path(out)
        write_file(path, value)
        done.append(f"{what} written to {path}")
    if registry is not None:
        try:
            done.append(f"{what} {registry.register(value, config.checkpoint_secret, config.id)}")
        except CheckpointError:
            raise
        except Exception as exc:  # MLflow's or its store's: one line, with no password in it
            where = registry.scrub(registry.tracking_uri())
            if isinstance(exc, ModuleNotFoundError):  # the store's driver
                fix = INSTALL if exc.name in ("sqlalchemy", "alembic") else "install it"
                text = f"needs {exc.name}, which is not installed: {fix}"
            else:
                text = registry.scrub(f"{type(exc).__name__}: {exc}".splitlines()[0])
            raise click.ClickException(f"MLflow registry {where}: {text}") from None
    return done


def sorted_kept(kept: list[tuple[dict, bytes]]) -> list[tuple[dict, bytes]]:
    return sorted(kept, key=lambda mv: (mv[0]["shard"], mv[0]["version"]))


async def send_command(config: Config, action: str, name: str | None, version: int | None) -> str:
    """Check a ``promote`` or ``rollback`` against what Kafka holds, then send it to every
    shard through ``<id>-control``; what was sent."""
    if not name:
        raise click.UsageError(f"{action} needs NAME")
    checkpoints = await newest(config, "shard-checkpoints")
    codec = RiverCodec(config.checkpoint_secret)
    known = {m for raw in checkpoints.values() for m in codec.loads(raw)["models"]}
    if name not in known:
        raise click.ClickException(
            f"no model named {name!r} in the shards' checkpoints (they have: "
            f"{', '.join(sorted(known)) or 'none yet'})"
        )
    if action == "rollback":
        kept = [
            describe(value)
            for key, value in (await newest(config, "model-versions")).items()
            if key.split(":", 1)[0] == name
        ]
        if version is not None:
            ok = any(m["version"] == version for m in kept)
            missing = f"version {version} of {name!r} is not kept"
        else:
            ok = any(m["reason"].startswith(("promotion", "drift")) for m in kept)
            missing = f"no version of {name!r} was taken at a promotion or drift action"
        if not ok:
            have = ", ".join(f"shard {m['shard']} v{m['version']}" for m in kept) or "none"
            raise click.ClickException(f"{missing} (kept: {have}); nothing sent")
    topic = config.internal("control")
    command = {"action": action, "model": name, "version": version, "id": uuid.uuid4().hex}
    shards = await send_to_every_partition(config, topic, orjson.dumps(command))
    return (
        f"models {action}: {name}{'' if version is None else f' version {version}'} sent to "
        f"{shards} shard(s) through {topic} (id {command['id']}); each applies it once, at "
        f"its next read, and records it on {config.model_events}"
    )


async def send_to_every_partition(config: Config, topic: str, value: bytes) -> int:
    """Send ``value`` to every partition of ``topic``; how many there are."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(config.broker),
        **client_options(config.settings),
        acks="all",
        enable_idempotence=True,
    )
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        raise click.ClickException(f"cannot reach {config.broker}: {exc}") from None
    try:
        partitions = await producer.partitions_for(topic)
        for partition in sorted(partitions):
            await producer.send_and_wait(topic, value, partition=partition)
        return len(partitions)
    finally:
        await producer.stop()

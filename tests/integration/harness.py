"""Real workers, real topics: start `faust -A app worker` processes and talk to them over Kafka."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.compat import refresh_metadata
from app.kafka.admin import ensure_topics
from app.models.codec import RiverCodec

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
BOOTSTRAP = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
SECRET = "integration-test-secret"
WAIT = 90.0
#: how the tests' own clients connect to a cluster that is not plain, by bootstrap string
CLIENT_OPTIONS: dict[str, dict[str, Any]] = {}


#: security settings every Pipeline's workers get (``use_security``), lower-case names
SECURITY: dict[str, str] = {}


def options(bootstrap: str) -> dict[str, Any]:
    return CLIENT_OPTIONS.get(bootstrap, {})


def env_settings(path: Path) -> dict[str, str]:
    """A file's ``STREAMLEARN_X=v`` lines as settings ``{"x": v}``."""
    out = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        if name.startswith("STREAMLEARN_"):
            out[name.removeprefix("STREAMLEARN_").lower()] = value
    return out


def use_security(env_file: Path, bootstrap: str = BOOTSTRAP) -> None:
    """Connect the pipelines' workers and the harness's own clients to ``bootstrap`` with the
    ``STREAMLEARN_*`` security settings of ``env_file`` (scripts/kafka.sh's ``client.env``)."""
    from app.kafka.auth import client_options
    from app.settings import Settings

    values = {k: v for k, v in env_settings(env_file).items() if k != "broker"}
    SECURITY.update(values)
    CLIENT_OPTIONS[bootstrap] = client_options(
        Settings.from_env({f"STREAMLEARN_{k.upper()}": v for k, v in values.items()})
    )


def run(coro) -> Any:
    """Run ``coro`` to completion in its own thread (callers may already run an event loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - keep polling; report the last error
            last_error = exc
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


class Pipeline:
    """One test's own app id, topics, and the workers running it."""

    def __init__(self, name: str, bootstrap: str = BOOTSTRAP, **settings: Any) -> None:
        self.bootstrap = bootstrap
        self.id = f"it-{name}-{uuid.uuid4().hex[:8]}"
        self.events = f"{self.id}-events"
        self.labels = f"{self.id}-labels"
        self.predictions = f"{self.id}-predictions"
        self.settings = {
            "ID": self.id,
            "BROKER": ";".join(f"kafka://{b}" for b in bootstrap.split(",")),
            "EVENTS_TOPIC": self.events,
            "LABELS_TOPIC": self.labels,
            "PREDICTIONS_TOPIC": self.predictions,
            "CHECKPOINT_SECRET": SECRET,
            "CHECKPOINT_SECONDS": "0.5",
            "STORE": "rocksdb://",
            **{k.upper(): str(v) for k, v in {**SECURITY, **settings}.items()},
        }
        self.workers: list[Worker] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_")}
        env.update({f"STREAMLEARN_{k}": v for k, v in self.settings.items()})
        return env

    def start_worker(self, datadir: Path | None = None, host: str | None = None) -> Worker:
        """Start a worker (with ``datadir``: that data dir instead of its own; with ``host``:
        its web port bound to that loopback address and advertised as its URL)."""
        if not self.workers:  # as a user would: the input topics exist before the first event
            run(
                ensure_topics(
                    self.settings["BROKER"],
                    [self.events, self.labels],
                    int(self.settings.get("PARTITIONS", 1)),
                    int(self.settings.get("REPLICATION", 1)),
                    options(self.bootstrap),
                )
            )
        worker = Worker(self, len(self.workers), host)
        if datadir is not None:
            worker.datadir = datadir
        self.workers.append(worker)
        worker.start()
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.kill()

    def command(
        self,
        *args: str,
        timeout: float = 300,
        cwd: Path | None = None,
        env: dict[str, str | None] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a real ``faust -A app`` command (``replay ...``, ``features ...``) with this
        pipeline's settings (in ``cwd``, default the checkout; ``env``: variables set, or unset
        where None)."""
        environ = self.env()
        if cwd is not None:  # (the checkout's app, not another on the venv's path)
            environ["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(ROOT), environ.get("PYTHONPATH")) if p
            )
        for name, value in (env or {}).items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        return subprocess.run(
            [sys.executable, "-m", "faust", "-A", "app", *args],
            cwd=ROOT if cwd is None else cwd,
            env=environ,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def replay(self, *args: str) -> subprocess.CompletedProcess:
        """Run the real ``faust -A app replay`` command against this pipeline's topics."""
        return self.command("replay", *args)

    def send(
        self,
        topic: str,
        values: list[bytes | None],
        keys: list[bytes | None] | None = None,
        partitions: list[int] | None = None,
    ):
        run(produce(self.bootstrap, topic, values, keys, partitions))

    def send_paced(
        self,
        topic: str,
        values: list[bytes],
        keys: list[bytes | None],
        rate: float,
        partitions: list[int] | None = None,
    ) -> threading.Thread:
        """Send in the background at about ``rate`` messages/s (a stream, not a backlog), so
        that a worker killed meanwhile dies in the middle of it. ``join()`` the thread to wait:
        it raises what the sending raised."""
        chunk = max(1, int(rate / 10))

        def paced() -> None:
            for i in range(0, len(values), chunk):
                part = None if partitions is None else partitions[i : i + chunk]
                self.send(topic, values[i : i + chunk], keys[i : i + chunk], part)
                time.sleep(0.1)

        thread = _Sender(target=paced, daemon=True)
        thread.start()
        return thread

    def read(self, topic: str, count: int, timeout: float = WAIT) -> list:
        return run(consume(self.bootstrap, topic, count, timeout))

    def last_checkpoint(self, shard: int = 0) -> dict | None:
        """The newest checkpoint of ``shard`` as stored in the changelog topic, decoded (of
        committed transactions only, with STREAMLEARN_PROCESSING_GUARANTEE=exactly_once)."""
        exactly = self.settings.get("PROCESSING_GUARANTEE") == "exactly_once"
        records = run(
            consume_all(
                self.bootstrap,
                f"{self.id}-shard-checkpoints-changelog",
                "read_committed" if exactly else "read_uncommitted",
            )
        )
        codec = RiverCodec(SECRET)
        found = None
        for record in records:
            if json.loads(record.key) == shard and record.value is not None:
                found = codec.loads(record.value)
        return found


class _Sender(threading.Thread):
    """A thread whose ``join()`` raises the exception its target raised."""

    error: BaseException | None = None

    def run(self) -> None:
        try:
            super().run()
        except BaseException as exc:  # noqa: BLE001 - handed to join()
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise RuntimeError(f"sending failed: {self.error!r}") from self.error


class Worker:
    """A ``faust -A app worker`` subprocess with its own web port, data dir and log file; its
    web port on ``host`` (given: bound there, ``STREAMLEARN_WEB_URL`` its :attr:`url`)."""

    def __init__(self, pipeline: Pipeline, index: int, host: str | None = None) -> None:
        self.pipeline = pipeline
        self.index = index
        self.bind = host
        self.host = host or "127.0.0.1"
        self.port = free_port(self.host)
        self.datadir = ARTIFACTS / pipeline.id / f"worker-{index}"
        self.log_path = ARTIFACTS / pipeline.id / f"worker-{index}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.spawn()
        wait_for(self.ready, what=f"worker {self.index} of {self.pipeline.id} to serve /stats/")

    def spawn(self) -> None:
        """Start the worker process, without waiting for it to serve its web view."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = self.pipeline.env()
        env["STREAMLEARN_WEB_PORT"] = str(self.port)
        env["STREAMLEARN_DATADIR"] = str(self.datadir)
        if self.bind is not None:
            env["STREAMLEARN_WEB_BIND"] = self.bind
            env["STREAMLEARN_WEB_URL"] = self.url
        log = open(self.log_path, "a")  # noqa: SIM115 - closed with the process
        self.starts += 1
        self.process = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "app", "worker", "-l", "info"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"worker exited with {self.process.returncode}; see {self.log_path}")
        return self.get("/stats/") is not None

    @property
    def url(self) -> str:
        """The worker's web address."""
        return f"http://{self.host}:{self.port}"

    def headers(self) -> dict[str, str]:
        """What a request to the worker carries: the pipeline's web token, if it has one."""
        token = self.pipeline.settings.get("WEB_TOKEN")
        return {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def get(self, path: str) -> Any:
        try:
            request = urllib.request.Request(f"{self.url}{path}", headers=self.headers())
            with urllib.request.urlopen(request, timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def models(self) -> list[dict]:
        return self.get("/models/") or []

    def model(self, name: str, shard: int = 0) -> dict | None:
        for entry in self.models():
            if entry["name"] == name and entry["shard"] == shard:
                return entry
        return None

    def stats(self) -> dict:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"worker exited with {self.process.returncode}; see {self.log_path}")
        return self.get("/stats/") or {}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
            self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def produce(
    bootstrap: str,
    topic: str,
    values: list,
    keys: list | None = None,
    partitions: list[int] | None = None,
) -> None:
    """Send ``values`` (with ``keys``; into ``partitions`` if given, else by key) to ``topic``."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, **options(bootstrap)
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                value,
                key=None if keys is None else keys[i],
                partition=None if partitions is None else partitions[i],
            )
            for i, value in enumerate(values)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int, timeout: float) -> list:
    """The first ``count`` records of ``topic`` (all partitions), or fail after ``timeout``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        **options(bootstrap),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{topic}: got {len(records)} of {count} records in {timeout}s")
            batch = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def consume_all(
    bootstrap: str, topic: str, isolation_level: str = "read_uncommitted"
) -> list:
    """Every record of ``topic`` up to its end offsets now (``read_committed``: of committed
    transactions only, up to the first one still open)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        isolation_level=isolation_level,
        **options(bootstrap),
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await refresh_metadata(consumer)
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list = []
        while True:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=1000)
            for part in batch.values():
                records.extend(part)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def create_topic(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    """Create ``topic`` (one partition) with topic-level ``configs``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options(bootstrap))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=configs)])
    finally:
        await admin.close()


def own_kafka(port: int | str, run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """``scripts/kafka.sh *args`` for a cluster of a test's own: first broker on ``port``, its
    data and logs in ``run_dir`` (apart from the session's shared broker)."""
    env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_RUN": str(run_dir)}
    return subprocess.run(
        [str(ROOT / "scripts/kafka.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextlib.contextmanager
def own_cluster(port: int, run_dir: Path, brokers: int) -> Iterator[str]:
    """A cluster of ``brokers`` brokers of a test's own (see :func:`own_kafka`), up for the
    ``with`` block; yields its bootstrap servers."""
    result = own_kafka(port, run_dir, "up", str(brokers))
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield ",".join(f"127.0.0.1:{port + i}" for i in range(brokers))
    finally:
        own_kafka(port, run_dir, "down")

"""A schema registry really stopped under a running worker, and started again with its data.

Each test runs a registry of its own (scripts/registry.sh on REGISTRY_PORT+2, its pid and log in
the test's tmp_path, its data in an H2 file there: ``REGISTRY_DATA``), so that ``down`` then
``up`` is a real restart that keeps every schema and id, as a team's registry does, and the
session's registry is not disturbed. The events, schemas, producer and checks are those of
test_avro_pipeline.py: the worker must end with the model River learns offline from the decoded
rows, every event learned once, no good message dead-lettered.

- Stopped for 20 s mid-stream: messages of a schema the worker holds are learned meanwhile; the
  first message of a schema id it has not seen (registered before the outage) pauses reading
  until the registry is up again, then reading goes on.
- Stopped for longer than STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT: the worker stops by itself with
  the reason; started again once the registry is back, it reads on from its last checkpoint.
"""

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.harness import ROOT, consume_all, run, wait_for
from tests.integration.test_avro_pipeline import (
    EVENTS,
    LR,
    Avro,
    assert_learned_once_as_river,
    learned,
    rows,
    schema_id,
    send,
    start,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE = 20.0  # seconds the registry is down in the mid-stream test
TIMEOUT = 5  # STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT of the worker that must stop


@dataclass
class OwnRegistry:
    """A registry of one test's own: scripts/registry.sh with its port, run dir and data dir."""

    port: int
    run_dir: Path
    data: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/apis/ccompat/v7"

    def script(self, command: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "REGISTRY_PORT": str(self.port),
            "REGISTRY_MANAGEMENT_PORT": str(self.port + 1),
            "REGISTRY_RUN": str(self.run_dir),
            "REGISTRY_DATA": str(self.data),
        }
        return subprocess.run(
            [str(ROOT / "scripts" / "registry.sh"), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def up(self) -> None:
        done = self.script("up")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"data in {self.data}" in done.stdout  # not in memory: a restart keeps the ids

    def down(self) -> None:
        done = self.script("down")
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def own_registry(tmp_path):
    """A registry of this test's own on REGISTRY_PORT+2 (its management port +3), up; always
    stopped at the end."""
    port = int(os.environ.get("REGISTRY_PORT", "8081")) + 2
    registry = OwnRegistry(port, tmp_path / "registry-run", tmp_path / "registry-data")
    try:
        registry.up()
        yield registry
    finally:
        registry.script("down")


def dead_letters(pipeline) -> list:
    """Every record of the events' dead-letter topic (none if it was never created)."""
    return run(consume_all(pipeline.bootstrap, f"{pipeline.events}-dlq"))


def test_a_registry_stopped_for_20_s_mid_stream_pauses_reading_and_nothing_is_lost_or_learned_twice(
    pipeline_factory, tmp_path, own_registry
):
    pipeline, worker = start(pipeline_factory, tmp_path, own_registry.url, EVENTS, partitions=1)
    data = rows(600, 400)
    avro = Avro(own_registry.url, pipeline.events)
    values = avro.events(data, 400)  # v2 registered now, before the outage; not yet read
    assert schema_id(values[399]) != schema_id(values[400])
    send(pipeline.bootstrap, pipeline.events, values[:300], [0] * 300)
    wait_for(lambda: learned(worker) == 300, what="300 learned before the outage")

    own_registry.down()
    stopped = time.monotonic()
    send(pipeline.bootstrap, pipeline.events, values[300:400], [0] * 100)  # v1: held
    wait_for(lambda: learned(worker) == 400, what="v1 events learned during the outage")
    send(pipeline.bootstrap, pipeline.events, values[400:], [0] * 200)  # v2: an id not yet seen
    engine = wait_for(
        lambda: (e := worker.stats()["engine"])["registry_paused"] is not None and e,
        what="reading paused",
    )
    assert engine["registry_waits"] >= 1
    while time.monotonic() - stopped < OUTAGE:
        assert learned(worker) == 400  # paused: nothing of the read stepped
        assert worker.stats()["counters"].get("dead_letters", 0) == 0
        time.sleep(1)
    own_registry.up()
    wait_for(lambda: learned(worker) == 600, what="600 learned after the outage")

    assert_learned_once_as_river(pipeline, worker, data)
    stats = worker.stats()
    assert stats["engine"]["registry_paused"] is None
    assert worker.starts == 1 and worker.alive
    assert dead_letters(pipeline) == []
    log = worker.log()
    assert "cannot be reached" in log and "reading paused, trying again in" in log
    assert "engine: the schema registry answers again after" in log


def test_a_registry_away_longer_than_the_timeout_stops_the_worker_and_a_restart_reads_on(
    pipeline_factory, tmp_path, own_registry
):
    pipeline, worker = start(
        pipeline_factory,
        tmp_path,
        own_registry.url,
        EVENTS,
        partitions=1,
        schema_registry_timeout=TIMEOUT,
    )
    data = rows(400, 200)
    avro = Avro(own_registry.url, pipeline.events)
    values = avro.events(data, 200)  # v2 registered now; the worker has not seen its id
    assert schema_id(values[199]) != schema_id(values[200])
    send(pipeline.bootstrap, pipeline.events, values[:200], [0] * 200)
    wait_for(lambda: learned(worker) == 200, what="200 learned before the outage")
    wait_for(
        lambda: (c := pipeline.last_checkpoint(0)) and c["models"][LR.name]["n_learned"] == 200,
        what="the checkpoint of 200",
    )

    own_registry.down()
    stopped = time.monotonic()
    send(pipeline.bootstrap, pipeline.events, values[200:], [0] * 200)  # v2: unknown id
    wait_for(lambda: not worker.alive, what="the worker to stop by itself")
    took = time.monotonic() - stopped
    assert worker.process.returncode == 1
    assert took >= TIMEOUT
    # the reason: one CRITICAL line of the log (stderr), then Faust's own crash lines
    reason = (
        f"[CRITICAL] engine: stopping, reading paused too long: the schema registry at "
        f"{own_registry.url} cannot be reached: ClientConnectorError: "
    )
    (line,) = [line.rstrip() for line in worker.log().splitlines() if reason in line]
    assert re.search(
        rf"; still so after \d+ s \(STREAMLEARN_SCHEMA_REGISTRY_TIMEOUT={TIMEOUT}\)$", line
    )
    assert dead_letters(pipeline) == []

    own_registry.up()
    worker.start()  # the same data dir: it restores its checkpoint and reads on
    wait_for(lambda: learned(worker) == 400, what="400 learned after the restart")

    assert_learned_once_as_river(pipeline, worker, data)
    assert dead_letters(pipeline) == []

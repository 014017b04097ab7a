"""A three-broker cluster loses a broker mid-stream: nothing is lost, learning goes on."""

import time

import orjson
import pytest

from tests.integration.harness import ROOT, Pipeline, own_cluster, own_kafka, wait_for
from tests.integration.test_faults import LR, N, assert_exact, hyperplane_events, learned

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PORT = 29092
RUN = ROOT / ".cache/kafka/run-3"


def kafka(*args: str):
    return own_kafka(PORT, RUN, *args)


@pytest.fixture(scope="module")
def three_brokers(kafka_jars):
    with own_cluster(PORT, RUN, 3) as bootstrap:
        yield bootstrap


def test_killing_one_of_three_brokers_loses_nothing(three_brokers):
    pipeline = Pipeline(
        "broker-loss",
        bootstrap=three_brokers,
        partitions=2,
        replication=3,
        model=LR.text,
        checkpoint_every=300,
    )
    try:
        worker = pipeline.start_worker()
        rows = hyperplane_events(N, seed=5)
        half = N // 2
        pipeline.send(
            pipeline.events,
            [orjson.dumps(r) for r in rows[:half]],
            [r["id"].encode() for r in rows[:half]],
        )
        wait_for(
            lambda: sum(e["n_learned"] for e in worker.models()) >= half // 2,
            what="learning under way",
        )
        assert kafka("kill", "1").returncode == 0
        killed_at = time.monotonic()
        before = sum(e["n_learned"] for e in worker.models())
        # the second half is produced to the surviving brokers (acks=all, min.insync.replicas=2)
        pipeline.send(
            pipeline.events,
            [orjson.dumps(r) for r in rows[half:]],
            [r["id"].encode() for r in rows[half:]],
        )
        wait_for(
            lambda: sum(e["n_learned"] for e in worker.models()) > before + 100,
            timeout=60,
            what="learning to go on after the broker kill",
        )
        print(f"learning again {time.monotonic() - killed_at:.1f}s after the broker kill")
        assert_exact(pipeline, [worker], rows, 2)
        assert worker.alive
        assert len(learned([worker])) == 2
    finally:
        pipeline.stop()

"""The only broker stops answering for longer than aiokafka's request timeout: the worker waits."""

import os
import signal
import time

import orjson
import pytest

from tests.integration.harness import ROOT, Pipeline, own_cluster, wait_for
from tests.integration.test_faults import LR, assert_exact, hyperplane_events, learned

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: (below Linux's ephemeral range 32768-60999: a client's connection could hold 39092 or its
#: controller port 39192 and stop the broker from binding it, which failed a CI run)
PORT = 28092
RUN = ROOT / ".cache/kafka/run-pause"
#: longer than aiokafka's default request timeout (40 s), after which it drops unsent batches
PAUSE = 50.0
#: a backlog the worker takes seconds to learn on any machine (about 5 s here, at 40k events/s),
#: so that it is still learning (and writing predictions) when the broker freezes
N = 200_000


@pytest.fixture(scope="module")
def own_broker(kafka_jars):
    with own_cluster(PORT, RUN, 1) as bootstrap:
        yield bootstrap


def test_a_broker_frozen_for_50_s_mid_stream_loses_nothing_and_the_worker_goes_on(own_broker):
    pid = int((RUN / "broker-0/pid").read_text())
    pipeline = Pipeline("broker-pause", bootstrap=own_broker, partitions=1, model=LR.text)
    rows = hyperplane_events(N, seed=9)
    try:
        worker = pipeline.start_worker()
        pipeline.send(pipeline.events, [orjson.dumps(r) for r in rows[:1000]])
        wait_for(lambda: learned([worker])[0]["n_learned"] == 1000, what="1000 learned")
        # The rest goes in while the worker is stopped: a backlog it starts on all at once, so
        # that however fast the machine, the broker freezes while it learns and writes (sent
        # while it reads, the worker would keep up with the sender and be done by the freeze).
        os.kill(worker.process.pid, signal.SIGSTOP)
        try:
            pipeline.send(pipeline.events, [orjson.dumps(r) for r in rows[1000:]])
        finally:
            os.kill(worker.process.pid, signal.SIGCONT)
        wait_for(lambda: learned([worker])[0]["n_learned"] > 1000, what="learning under way")
        assert learned([worker])[0]["n_learned"] < N  # (else there is no output in flight)
        # frozen, not dead: connections stay open and requests go unanswered
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(PAUSE)  # the fault itself lasts this long; nothing to wait for
            assert worker.alive
        finally:
            os.kill(pid, signal.SIGCONT)
        assert_exact(pipeline, [worker], rows, 1)
        assert worker.alive and worker.starts == 1
        assert "Kafka did not take output" not in worker.log()
    finally:
        pipeline.stop()

"""Labels that never come (STREAMLEARN_LABEL_DEFAULT): an event still unlabelled once
STREAMLEARN_LABEL_TTL of event time has passed is learned with the default, once; two apps on
the same stream learn the same model, River's own on those labels."""

import orjson
import pytest

from tests.integration.harness import wait_for
from tests.integration.test_faults import LR, hyperplane_events, learned
from tests.model_state import canonical, first_difference

pytestmark = pytest.mark.integration

N = 600
TTL = 50


def test_unlabelled_events_are_learned_once_with_the_default_the_same_in_two_apps(
    pipeline_factory,
):
    rows = hyperplane_events(N)
    for row in rows:
        del row["y"]  # nobody labels these: the default does, once their deadline has passed
    # the join's clock reaches the last event's ts: every event more than TTL before it expires
    expired = N - 1 - TTL
    models = []
    for _ in range(2):
        pipeline = pipeline_factory(
            partitions=1, model=LR.text, label_ttl=TTL, label_default="false"
        )
        worker = pipeline.start_worker()
        pipeline.send(pipeline.events, [orjson.dumps(r) for r in rows])
        wait_for(
            lambda w=worker: (e := learned([w]).get(0)) and e["n_learned"] == expired,
            what=f"{expired} events learned with the default",
        )
        wait_for(
            lambda p=pipeline: (c := p.last_checkpoint(0))
            and c["models"][LR.name]["n_learned"] == expired,
            what="a checkpoint covering them",
        )
        assert worker.stats()["counters"].get("labels_defaulted") == expired
        assert worker.stats()["counters"].get("expired_events", 0) == 0
        models.append(pipeline.last_checkpoint(0)["models"][LR.name]["model"])
    assert first_difference(canonical(models[0]), canonical(models[1])) is None
    offline = LR.build()
    for row in rows[:expired]:  # in event time, each with the default
        offline.learn_one(orjson.loads(orjson.dumps(row["x"])), False)
    assert first_difference(canonical(models[0]), canonical(offline)) is None

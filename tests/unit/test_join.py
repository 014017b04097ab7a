"""The label join's rules (app/models/join.py): every order its two halves can arrive in."""

import pytest

from app.models.join import Expiry, join


def park(event_id="e1", ts=10.0, shard=3) -> dict:
    return {
        "kind": "park",
        "id": event_id,
        "key": "card-1",
        "ts": ts,
        "x": {"a": 1.0},
        "y_pred": {"m": [[False, 0.4], [True, 0.6]]},
        "shard": shard,
    }


def label(event_id="e1", y=True, ts=20.0) -> dict:
    return {"kind": "label", "id": event_id, "y": y, "ts": ts}


def test_event_first_then_its_label_sends_the_joined_label_to_the_events_shard():
    waiting = join(None, park(), 0, 4)
    assert waiting.send is None and waiting.counter is None
    assert waiting.entry == {"park": park(), "since": 10.0, "p": 0}
    done = join(waiting.entry, label(), 0, 9)
    assert done.shard == 3
    assert done.send == {
        "src": ["j", 0, 9],
        "kind": "label",
        "id": "e1",
        "key": "card-1",
        "ts": 20.0,
        "x": {"a": 1.0},
        "y": True,
        "y_pred": {"m": [[False, 0.4], [True, 0.6]]},
    }
    assert done.entry == {"joined": True, "since": 20.0, "p": 0}


def test_label_first_then_its_event_sends_the_same_joined_label():
    waiting = join(None, label(), 1, 2)
    assert waiting.entry == {"label": label(), "since": 20.0, "p": 1} and waiting.send is None
    done = join(waiting.entry, park(), 1, 5)
    assert done.shard == 3 and done.send["y"] is True and done.send["src"] == ["j", 1, 5]
    assert done.send["x"] == {"a": 1.0} and done.send["ts"] == 20.0  # the label's time


def test_a_second_label_is_counted_and_dropped_before_and_after_the_join():
    first = join(None, label(y=True), 0, 0)
    again = join(first.entry, label(y=False), 0, 1)
    assert again == type(again)(counter="duplicate_labels")  # the first one is kept
    done = join(first.entry, park(), 0, 2)
    late = join(done.entry, label(y=False), 0, 3)
    assert late.send is None and late.entry is None and late.counter == "duplicate_labels"


def test_features_parked_again_after_a_crash_are_dropped_not_learned_twice():
    done = join(join(None, park(), 0, 0).entry, label(), 0, 1)
    again = join(done.entry, park(), 0, 2)  # the engine re-sent what its checkpoint missed
    assert again.send is None and again.entry is None and again.counter == "parks_dropped"


def test_entries_older_than_the_ttl_of_their_partition_expire_oldest_first_once():
    table = {
        "parked": join(None, park(ts=0.0), 0, 0).entry,
        "early-label": join(None, label(ts=50.0), 0, 1).entry,
        "done": {"joined": True, "since": 1.0, "p": 0},
        "other-partition": join(None, park(ts=0.0), 1, 0).entry,
        "fresh": join(None, park(ts=90.0), 0, 2).entry,
    }
    index = Expiry()
    index.load(0, table.items())
    assert index.expired(0, now_ts=100.0, ttl=100.0, current=table.get) == []  # exactly the TTL
    assert index.expired(0, now_ts=100.0, ttl=40.0, current=table.get) == [
        ("parked", "park"),
        ("done", "joined"),
        ("early-label", "label"),
    ]
    assert index.expired(0, now_ts=100.0, ttl=40.0, current=table.get) == []  # taken out
    assert not index.knows(1)


def test_an_entry_replaced_since_it_was_indexed_expires_by_its_new_time():
    table = {"e1": join(None, park(ts=0.0), 0, 0).entry}
    index = Expiry()
    index.load(0, table.items())
    done = join(table["e1"], label(ts=80.0), 0, 1)
    table["e1"] = done.entry
    index.add(0, "e1", done.entry["since"])
    assert index.expired(0, now_ts=100.0, ttl=40.0, current=table.get) == []  # since 80 now
    assert index.expired(0, now_ts=121.0, ttl=40.0, current=table.get) == [("e1", "joined")]


@pytest.mark.parametrize("label_first", [False, True])
@pytest.mark.parametrize(
    ("gap", "joins"), [(86_400.0, True), (86_400.5, False), (-86_401.0, False)]
)
def test_a_label_joins_only_within_the_ttl_of_its_event_in_either_order(label_first, gap, joins):
    """A chargeback stamped 5 days after its order used to be learned with a 1-day TTL when
    nothing else had moved the join's clock: whether a label is in time is now its own time
    against its event's, whatever arrived first."""
    ttl = 86_400.0
    event, late = park(), label()
    late["ts"] = event["ts"] + gap
    first, second = (late, event) if label_first else (event, late)
    waiting = join(None, first, 0, 0, ttl)
    outcome = join(waiting.entry, second, 0, 1, ttl)
    assert (outcome.send is not None) is joins
    if not joins:
        assert outcome.counter == "late_labels"
        # the event waits on (for a label in time, or to expire), never the late label
        waiting_now = outcome.entry or waiting.entry
        assert "park" in waiting_now and waiting_now["since"] == event["ts"]

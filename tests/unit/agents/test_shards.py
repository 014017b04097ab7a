"""The keeper of a worker's shards (agents/shards.py): what it holds, what the engine reads,
and what a revocation changes, without a broker (tables as dicts)."""

import asyncio
from dataclasses import replace
from types import SimpleNamespace

import pytest

from agents.shards import Shards
from app.config import Config
from app.settings import Settings
from tests.unit.fakes import fake_shard_tables, settle, until

MODEL = "LogisticRegression"


class Reader:
    def __init__(self) -> None:
        self.reads: list[dict[int, int]] = []

    async def read(self, offsets: dict[int, int]) -> None:
        self.reads.append(offsets)


class Leaving:
    """Faust's consumer while a rebalance is under way."""

    def __init__(self) -> None:
        self.forgotten: list = []

    def leaving(self) -> bool:
        return True

    def forget(self, message) -> None:
        self.forgotten.append(message)


@pytest.fixture
def keeper(app, monkeypatch):
    config = Config.build(Settings(model=MODEL, checkpoint_every=1000, checkpoint_seconds=2.0))
    return Shards(config, fake_shard_tables(config.specs), consumer=Leaving())


async def test_an_assignment_creates_its_shards_and_the_engine_reads_exactly_those(keeper):
    reader = Reader()
    keeper.reader = reader
    assert keeper.owned(0) is None and keeper.read_by_engine(0) is None  # nothing before
    await keeper.load({0, 2})
    assert reader.reads == [{0: 0, 2: 0}] and keeper.reading() == [0, 2]
    keeper.live[2].took(41, 42)  # the engine took offsets 0..41 of partition 2
    await keeper.load({2, 3})  # a rebalance: 0 went elsewhere, 3 came
    assert keeper.owned(0) is None and keeper.read_by_engine(2) is keeper.owned(2)
    assert reader.reads[-1] == {2: 42, 3: 0}
    assert keeper.n_restored == 0  # no checkpoint in the table: fresh models


async def test_a_revoked_shard_is_not_read_then_dropped(keeper):
    keeper.own({0})
    live = keeper.owned(0)
    live.read_to(last_offset=9, highwater=25)
    assert keeper.lags() == {0: 15}
    await keeper.revoke({0})
    assert not live.reading and live.lag is None and keeper.owned(0) is None
    assert keeper.lags() == {} and keeper.reading() == []


def test_a_copy_the_rekey_stage_sent_again_is_counted_not_taken(keeper):
    keeper.own({1})
    live = keeper.owned(1)
    assert live.first_copy(3, 7) and not live.first_copy(3, 7) and not live.first_copy(3, 2)
    assert live.first_copy(0, 2)
    assert live.models.origins == {"r3": 7, "r0": 2} and live.models.n_duplicates == 2


def test_messages_past_a_hole_are_let_go_while_the_worker_leaves(keeper):
    keeper.own({0})
    live = keeper.owned(0)
    past = SimpleNamespace(message=SimpleNamespace(offset=5), ack=lambda: None)
    live.hold(past)
    live._ack_covered(covered=-1)
    assert keeper.consumer.forgotten == [past.message] and live.held == []


async def test_window_flags_are_counted_and_a_reset_said_once(keeper, caplog):
    from app.features.recipe import DISTINCT_CAPPED, STATE_RESET, TOO_LATE
    from tables.anchor import writing_to

    pipeline_counts = keeper.tables.counters.counts
    keeper.own({0})
    live = keeper.owned(0)
    names = ("too_late", "distinct_capped", "windows_reset")
    before = {n: pipeline_counts[f"{n}:0"] for n in names}
    with writing_to(0, "unit-scoring"):
        live.count_flags(TOO_LATE | STATE_RESET)
        live.count_flags(DISTINCT_CAPPED | STATE_RESET)
    after = {n: pipeline_counts[f"{n}:0"] - before[n] for n in names}
    assert after == {"too_late": 1, "distinct_capped": 1, "windows_reset": 2}
    said = [r for r in caplog.records if "stored by other features" in r.getMessage()]
    assert len(said) == 1


class Opener:
    """Opens shards' transactional outboxes as the test lets it: each opening waits for
    ``release`` (a shard of ``one_by_one``: for its own event there); ``fail`` makes the next
    one fail as Kafka refusing the transactional id does."""

    def __init__(self) -> None:
        self.opened: list[int] = []
        self.closed: list[object] = []
        self.release = asyncio.Event()
        self.one_by_one: dict[int, asyncio.Event] = {}
        self.fail: Exception | None = None

    async def __call__(self, shard: int):
        self.opened.append(shard)
        await self.one_by_one.get(shard, self.release).wait()
        if self.fail is not None:
            failed, self.fail = self.fail, None
            raise failed
        outbox = SimpleNamespace(shard=shard)

        async def close() -> None:
            self.closed.append(outbox)

        outbox.close = close
        return outbox


@pytest.fixture
def transactional(app):
    """A keeper under exactly_once whose engine runs, and what opens its shards' outboxes."""
    config = Config.build(Settings(model=MODEL, checkpoint_every=1000, checkpoint_seconds=2.0))
    tables = replace(fake_shard_tables(config.specs), exactly_once=True)
    opener = Opener()
    keeper = Shards(config, tables, open_outbox=opener)
    keeper.reader = Reader()
    return keeper, opener


async def test_a_shard_stepped_while_its_assignment_s_fence_opens_it_waits_for_that_opening(
    transactional,
):
    # Faust's recovery does not wait for the fence: the engine can step a shard whose outbox
    # the fence is still opening (slow on a fresh broker), and a second producer of the shard's
    # transactional id would fence the first
    keeper, opener = transactional
    fencing = asyncio.ensure_future(keeper.fence({0, 1}))
    await until(lambda: opener.opened == [0])
    keeper.own({0, 1})
    stepping = [asyncio.ensure_future(keeper.ready_to_step(s)) for s in (0, 1, 0)]
    await settle()  # (shard 1's step opens it: the fence, on shard 0 still, then waits for it)
    assert opener.opened == [0, 1] and not any(t.done() for t in stepping)
    opener.release.set()
    await fencing
    first, second, again = [await t for t in stepping]
    assert opener.opened == [0, 1]  # one producer per shard
    assert first is again is keeper.owned(0) and second is keeper.owned(1)
    assert first.own_outbox.shard == 0 and second.own_outbox.shard == 1
    assert keeper.fenced == {} and opener.closed == []
    await keeper.fence({0, 1})  # assigned again, kept: their producers stay
    assert opener.opened == [0, 1] and keeper.fenced == {}


async def test_a_shard_revoked_while_its_outbox_opens_has_it_closed_once_opened(transactional):
    keeper, opener = transactional
    keeper.own({0})
    stepping = asyncio.ensure_future(keeper.ready_to_step(0))
    await until(lambda: opener.opened == [0])
    revoking = asyncio.ensure_future(keeper.revoke({0}))
    await settle()
    assert not revoking.done()  # (the opening is let finish, then closed)
    opener.release.set()
    await revoking
    assert await stepping is None
    assert [o.shard for o in opener.closed] == [0] and keeper.fenced == {}


async def test_an_opening_that_fails_fails_every_waiter_and_the_next_ask_opens_again(
    transactional,
):
    keeper, opener = transactional
    opener.fail = RuntimeError("TransactionalIdAuthorizationFailed")
    fencing = asyncio.ensure_future(keeper.fence({0}))
    await until(lambda: opener.opened == [0])
    keeper.own({0})
    stepping = asyncio.ensure_future(keeper.ready_to_step(0))
    await settle()
    opener.release.set()
    for waiter in (fencing, stepping):
        with pytest.raises(RuntimeError, match="TransactionalIdAuthorization"):
            await waiter
    assert keeper.fenced == {}
    live = await keeper.ready_to_step(0)
    assert opener.opened == [0, 0] and live.own_outbox.shard == 0


async def test_shards_revoked_while_their_outboxes_open_each_have_theirs_closed(transactional):
    keeper, opener = transactional
    opener.one_by_one = {0: asyncio.Event(), 1: asyncio.Event()}
    keeper.own({0, 1})
    stepping = [asyncio.ensure_future(keeper.ready_to_step(s)) for s in (0, 1)]
    await until(lambda: opener.opened == [0, 1])
    revoking = asyncio.ensure_future(keeper.revoke({0, 1}))
    await settle()
    opener.one_by_one[1].set()  # (shard 1 opens first, its step waiting on it)
    await settle()
    opener.one_by_one[0].set()
    await revoking
    assert [await t for t in stepping] == [None, None]
    assert sorted(o.shard for o in opener.closed) == [0, 1] and keeper.fenced == {}


async def test_a_step_waiting_for_its_outbox_when_the_engine_stops_opens_no_second_one(
    transactional,
):
    keeper, opener = transactional
    keeper.own({0})
    stepping = asyncio.ensure_future(keeper.ready_to_step(0))
    await until(lambda: opener.opened == [0])
    stopping = asyncio.ensure_future(keeper.stop())
    await settle()
    opener.release.set()
    await stopping
    assert await stepping is None
    assert opener.opened == [0] and [o.shard for o in opener.closed] == [0]
    assert keeper.fenced == {} and keeper.owned(0).own_outbox is None


async def test_an_opening_that_fails_with_no_one_waiting_is_not_kept(transactional):
    keeper, opener = transactional
    opener.fail = RuntimeError("no answer within 60 s")
    fencing = asyncio.ensure_future(keeper.fence({0}))
    await until(lambda: opener.opened == [0])
    fencing.cancel()  # (Faust's rebalance handler cancelled: the opening goes on)
    await settle()
    opener.release.set()
    await settle()
    assert keeper.fenced == {}
    keeper.own({0})
    live = await keeper.ready_to_step(0)
    assert opener.opened == [0, 0] and live.own_outbox.shard == 0

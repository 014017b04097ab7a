"""``fraud``: a seeded synthetic card-transaction stream with delayed labels and a drift point.

Each card has a home merchant category and a typical amount. Legitimate transactions arrive at a
steady pace around those. Fraud comes in two patterns that per-card windowed features can catch:

* **burst**: a compromised card makes several transactions within a few minutes;
* **unusual amount**: one transaction far above the card's typical amount, at an odd merchant.

At the drift point (a fraction of the stream) the fraudsters change tactics: bursts use small
amounts (card testing) and unusual amounts move to a different merchant category.

Events carry no ``y``; each label goes to the labels topic ``label_delay`` seconds of event time
after its event, as chargebacks do. Same seed, same stream.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass

MERCHANTS = ("grocery", "fuel", "restaurant", "online", "travel", "electronics", "jewelry")


@dataclass(frozen=True)
class FraudStream:
    """Parameters of the stream; iterate :meth:`messages` to get it."""

    seed: int = 42
    n_cards: int = 200
    fraud_rate: float = 0.02
    label_delay: float = 600.0
    mean_gap: float = 2.0
    drift_at: float = 0.5
    start_ts: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z

    def messages(self, limit: int) -> Iterator[tuple[str, dict]]:
        """``("events" | "labels", value)`` in event-time order: ``limit`` events, their labels.

        >>> stream = list(FraudStream(seed=1, label_delay=5.0).messages(50))
        >>> sum(kind == "events" for kind, _ in stream), sum(kind == "labels" for kind, _ in stream)
        (50, 50)
        >>> stream == list(FraudStream(seed=1, label_delay=5.0).messages(50))
        True
        """
        rng = random.Random(self.seed)
        cards = [
            (f"card-{i:05d}", rng.choice(MERCHANTS[:4]), rng.lognormvariate(3.0, 0.6))
            for i in range(self.n_cards)
        ]
        due: list[tuple[float, int, dict]] = []
        ts = self.start_ts
        burst: list[tuple[str, str, float]] = []
        drift_index = int(limit * self.drift_at)
        for i in range(limit):
            ts += rng.expovariate(1.0 / self.mean_gap)
            while due and due[0][0] <= ts:
                yield "labels", heapq.heappop(due)[2]
            drifted = i >= drift_index
            if burst:
                card, merchant, amount = burst.pop()
                fraud = True
            else:
                card, home, typical = rng.choice(cards)
                roll = rng.random()
                if roll < self.fraud_rate / 2:
                    # burst: this and the next few transactions of the card are fraud
                    small = drifted
                    n = rng.randint(3, 6)
                    burst = [
                        (
                            card,
                            "online",
                            rng.uniform(1, 5) if small else typical * rng.uniform(2, 4),
                        )
                        for _ in range(n)
                    ]
                    card, merchant, amount = burst.pop()
                    fraud = True
                elif roll < self.fraud_rate:
                    merchant = "electronics" if drifted else "jewelry"
                    amount = typical * rng.uniform(8, 20)
                    fraud = True
                else:
                    merchant = home if rng.random() < 0.7 else rng.choice(MERCHANTS[:5])
                    amount = typical * rng.lognormvariate(0, 0.35)
                    fraud = False
            event_id = f"tx-{self.seed}-{i:08d}"
            yield (
                "events",
                {
                    "id": event_id,
                    "key": card,
                    "ts": round(ts, 3),
                    "x": {
                        "amount": round(amount, 2),
                        "merchant": merchant,
                        "hour": int((ts % 86400) // 3600),
                        "online": merchant == "online",
                    },
                },
            )
            label_ts = round(ts + self.label_delay, 3)
            heapq.heappush(due, (label_ts, i, {"id": event_id, "y": fraud, "ts": label_ts}))
        while due:
            yield "labels", heapq.heappop(due)[2]

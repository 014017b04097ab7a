"""The features offline: events messages in, the rows the models would see out (pure: no Kafka).

Reads raw events messages one at a time, in order (a JSONL file's lines, a topic's records);
keeps each key's window state in memory for the whole run; gives, per event taken, the row
``{"id", "key", "ts", "x", "y"?}`` with ``x`` exactly as the stream enriches it. Each message goes
through the stream's own per-event step (``app/step.py``: intake, the recipe's windows, one-hot),
without models, so that a row's ``x`` equals, to the bit, what the engine writes to
``STREAMLEARN_ENRICHED_TOPIC`` for the same messages. ``app/commands/features.py`` reads the input
and writes the output.
"""

from __future__ import annotations

import time
from collections import Counter

from app.config import Config
from app.contracts.intake import TRANSFORM_DROPPED, Intake
from app.contracts.mapping import Origin
from app.features.recipe import Recipe, flag_counters
from app.step import MemoryWindows, Refused, Step

#: reasons kept for the summary, per counter
KEEP_REASONS = 3


class OfflineFeatures:
    """The features of a stream of events messages, as the engine computes them."""

    def __init__(self, config: Config) -> None:
        self.intake = Intake.configured(config)
        self.recipe: Recipe = config.recipe
        #: the stream's per-event step, and each key's window state (``windows.states``)
        self.step = Step(self.intake)
        self.windows = MemoryWindows(self.recipe)
        #: messages read, rows given, and what was refused or flagged, by counter
        self.n_read = 0
        self.n_rows = 0
        self.counts: Counter[str] = Counter()
        #: the first few reasons of each refusal counter, with where the message came from
        self.reasons: dict[str, list[str]] = {}

    def take(self, raw: bytes | None, origin: Origin, where: str | None = None) -> dict | None:
        """The row of one message (None: refused, counted); ``origin`` names where it came
        from (a mapping may read the Kafka key, timestamp or offset of it), and ``where`` says
        it to a person in the summary (a file's ``events.jsonl line 6``), else
        ``topic[partition]@offset``."""
        self.n_read += 1
        taken = self.step.take(raw, origin, time.time(), self.windows)
        self.counts.update(flag_counters(taken.flags))
        if type(taken) is Refused:
            counter, reason = taken.counter, taken.reason
            self.counts[counter] += 1
            if reason is not None and counter != TRANSFORM_DROPPED:
                kept = self.reasons.setdefault(counter, [])
                if len(kept) < KEEP_REASONS:
                    if where is None:
                        where = f"{origin.topic}[{origin.partition}]@{origin.offset}"
                    kept.append(f"{where}: {reason}")
            return None
        event = taken.event
        row = {"id": event["id"], "key": event["key"], "ts": event["ts"], "x": event["x"]}
        if "y" in event:
            row["y"] = event["y"]
        self.n_rows += 1
        return row

    def summary(self) -> str:
        """One paragraph: what was read, given and refused (with the first reasons)."""
        lines = [
            f"{counted(self.n_read, 'message')} read, {counted(self.n_rows, 'row')} written, "
            f"{counted(len(self.windows.states), 'key')}"
        ]
        for counter, n in sorted(self.counts.items()):
            lines.append(f"  {counter}: {n}")
            lines.extend(f"    {reason}" for reason in self.reasons.get(counter, []))
        return "\n".join(lines)


def counted(count: int, noun: str) -> str:
    """``count`` ``noun``s, in words a person reads: 1 row, 2 rows."""
    return f"{count} {noun}{'' if count == 1 else 's'}"

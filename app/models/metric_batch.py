"""Batched updates of River's default classification metrics, bit-identical to River's own.

A binary classifier's default metrics (Accuracy, ROCAUC, LogLoss) cost, updated one event at a
time, about a quarter of a worker's throughput: River's ROCAUC updates ``n_thresholds`` (10)
confusion matrices per event. :class:`app.models.shard.LiveModel` keeps instead the ``(y, y_pred)``
it scored and hands them here in one batch whenever the metrics are needed (their values, the
objects themselves, a checkpoint) or enough have been kept. A batch leaves each metric object in
exactly the state River's ``update`` called once per event, in the same order, would have:

* a confusion matrix (Accuracy's; each of ROCAUC's) holds sums of 1.0: exact in floats up to
  2**53, so adding the count of each ``(y_true, y_pred)`` cell of a batch at once gives the same
  floats. Cells are added in the order of their first event in the batch, so every dict of the
  matrix gets its keys in River's order, and its key objects are those of that first event;
* LogLoss is a running mean whose floats depend on the order of the updates (and whose state
  River keeps private): its own ``update`` is called event by event, in order, when the batch
  is applied.

For a binary classifier's defaults the three are updated in one pass over the batch.

Any other metric (and one of these three whose confusion matrix is shared with another metric,
or a River version other than the one checked, :data:`CHECKED_RIVER`) is updated per event, as
River's :class:`river.metrics.base.Metrics` does: :func:`plan` says which is which. No private
name of River's is used; what the batches rely on of River's update is checked by unit tests
(tests/unit/test_metrics_batch.py).

The updates assume what River's classifiers give: probabilities that compare with floats.
Something that made River's own ``update`` raise raises here when the batch is applied.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial
from itertools import pairwise
from typing import Any

import river
from river import metrics

#: The River version whose metrics' internals this module was checked against.
CHECKED_RIVER = "0.26.1"

#: What a batch is: the ``(y_true, y_pred)`` of each scored event, in order; ``y_pred`` as the
#: model predicted it (a probability dict, or a label / number).
Scored = list[tuple[Any, Any]]
#: Applies a batch to one metric.
Applier = Callable[[Scored], None]
#: Updates one metric with one event: ``(update, wants_label)``, as River's Metrics does.
PerEvent = tuple[Callable[[Any, Any], None], bool]


def plan(metric: Iterable) -> tuple[list[PerEvent], list[Applier]]:
    """Split River metrics into those updated per event and those updated by batch.

    >>> per_event, batched = plan(metrics.Accuracy() + metrics.ROCAUC() + metrics.MacroF1())
    >>> len(per_event), len(batched)
    (1, 2)
    """
    members = list(metric)
    per_event: list[PerEvent] = []
    batched: list[Applier] = []
    shared = _shared_matrices(members)
    for m in members:
        applier = _applier(m, shared) if river.__version__ == CHECKED_RIVER else None
        if applier is None:
            per_event.append((m.update, getattr(m, "requires_labels", False)))
        else:
            batched.append(applier)
    return per_event, _fused(batched)


def _fused(batched: list[Applier]) -> list[Applier]:
    """One applier for a binary classifier's defaults (Accuracy, ROCAUC and LogLoss, one each),
    :func:`_binary`, instead of three; other sets as they are."""
    by_kind = {a.func: a for a in batched}
    trio = (_accuracy, _rocauc, _log_loss)
    if len(by_kind) != len(batched) or any(f not in by_kind for f in trio):
        return batched
    fused = partial(_binary, *(by_kind[f].args[0] for f in trio))
    return [fused, *(a for a in batched if a.func not in trio)]


def _matrices(m: Any) -> list:
    """The confusion matrices a metric updates (public attributes of River's metrics)."""
    found = []
    if isinstance(getattr(m, "cm", None), metrics.ConfusionMatrix):
        found.append(m.cm)
    found += [cm for cm in getattr(m, "cms", ()) if isinstance(cm, metrics.ConfusionMatrix)]
    return found


def _shared_matrices(members: list) -> set[int]:
    """Ids of confusion matrices more than one metric (or one metric twice) updates."""
    seen: Counter = Counter(id(cm) for m in members for cm in _matrices(m))
    return {key for key, n in seen.items() if n > 1}


def _applier(m: Any, shared: set[int]) -> Applier | None:
    """A batch update of ``m`` equal to River's per-event one, or None (updated per event)."""
    kind = type(m)
    if any(id(cm) in shared for cm in _matrices(m)):
        return None
    if kind is metrics.Accuracy and type(m.cm) is metrics.ConfusionMatrix:
        return partial(_accuracy, m.cm)
    if (
        kind is metrics.ROCAUC
        and all(type(cm) is metrics.ConfusionMatrix for cm in m.cms)
        and len(m.cms) == len(m.thresholds)
        and all(a < b for a, b in pairwise(m.thresholds))
    ):
        return partial(_rocauc, m)
    if kind is metrics.LogLoss:
        return partial(_log_loss, m)
    return None


def add_cells(cm: metrics.ConfusionMatrix, cells: dict[tuple[Any, Any], int]) -> None:
    """Add ``cells`` (``(y_true, y_pred)`` -> events, in the order of each cell's first event)
    to ``cm``: what ``cm.update(y_true, y_pred)`` once per event (w = 1.0) leaves, to the bit.

    One ``cm.update`` per cell with the cell's count as its weight: it adds ``w`` to each of
    its float sums (whole numbers: exact), and 1 to ``n_samples``, which is then given the rest
    of the count (river 0.26.1's ``ConfusionMatrix.update``; a unit test compares the two).
    """
    update = cm.update
    for (y_true, y_pred), n in cells.items():
        update(y_true, y_pred, float(n))
        cm.n_samples += n - 1


def likeliest(p: dict) -> Any:
    """The label River's Metrics gives a label metric for probabilities ``p``:
    ``max(p, key=p.get)``, the first key of the highest probability; for a dict of two, the same
    comparison without ``max``'s keyword call (several times cheaper).

    >>> likeliest({False: 0.5, True: 0.5}), likeliest({"a": 0.2, "b": 0.7, "c": 0.1})
    (False, 'b')
    """
    if type(p) is dict and len(p) == 2:
        first, second = p
        # max() keeps the first unless a later one compares greater (so do NaNs: never)
        return second if p[second] > p[first] else first
    return max(p, key=p.get)


def _accuracy(cm: metrics.ConfusionMatrix, scored: Scored) -> None:
    """Accuracy of a batch: as River's Metrics, the likeliest label of a probability dict."""
    labels = [likeliest(p) if isinstance(p, dict) else p for _, p in scored]
    add_cells(cm, Counter(zip([y for y, _ in scored], labels, strict=True)))


def _p_true(p: Any) -> Any:
    """What ROCAUC and LogLoss score: ``p.get(True, 0.0)`` of a dict, else ``p``."""
    return p.get(True, 0.0) if isinstance(p, dict) else p


def _rocauc(m: metrics.ROCAUC, scored: Scored) -> None:
    """ROCAUC of a batch. Per event one int: how many thresholds ``p(True)`` is above
    (``bisect_left``: they ascend, so ``p > t`` holds for the first k), plus ``size`` if
    ``y_true == pos_val``."""
    thresholds, pos_val = m.thresholds, m.pos_val
    size = len(thresholds) + 1
    codes = [
        bisect_left(thresholds, p.get(True, 0.0) if isinstance(p, dict) else p)
        + (size if y == pos_val else 0)
        for y, p in scored
    ]
    _rocauc_cells(m, codes, scored)


def _rocauc_cells(m: metrics.ROCAUC, codes: list[int], scored: Scored) -> None:
    """ROCAUC's matrices given each event's code (:func:`_rocauc`): per threshold, the count of
    each ``(y_true, p > t)`` cell, in the order of its first event, whose objects are River's
    keys of a new cell."""
    thresholds, pos_val = m.thresholds, m.pos_val
    size = len(thresholds) + 1
    counts = Counter(codes)  # (in the order of each code's first event)
    first = {code: scored[codes.index(code)] for code in counts}
    for i, (t, cm) in enumerate(zip(thresholds, m.cms, strict=True)):
        cells: dict[tuple[bool, bool], int] = {}
        keys: dict[tuple[bool, bool], tuple[Any, Any]] = {}
        for code, n in counts.items():
            cell = (code >= size, code % size > i)
            if cell in cells:
                cells[cell] += n
            else:
                # the comparisons River made for the cell's first event: its keys (bools, or
                # numpy's if the probabilities were numpy floats)
                y, p = first[code]
                keys[cell] = (y == pos_val, _p_true(p) > t)
                cells[cell] = n
        add_cells(cm, {keys[cell]: n for cell, n in cells.items()})


def _log_loss(m: metrics.LogLoss, scored: Scored) -> None:
    """LogLoss of a batch: River's own ``update``, event by event, in order."""
    update = m.update
    for y, p in scored:
        update(y, p)


def _binary(
    cm: metrics.ConfusionMatrix, roc: metrics.ROCAUC, log_loss: metrics.LogLoss, scored: Scored
) -> None:
    """Accuracy, ROCAUC and LogLoss of a batch in one pass: per event what :func:`_accuracy`
    (with :func:`likeliest` inline) and :func:`_rocauc` compute, and LogLoss's ``update``
    (given ``p(True)``, which is what it reads of a probability dict)."""
    thresholds, pos_val = roc.thresholds, roc.pos_val
    size = len(thresholds) + 1
    loss = log_loss.update
    labels: list = []
    codes: list[int] = []
    add_label, add_code = labels.append, codes.append
    for y, p in scored:
        if type(p) is dict and len(p) == 2:
            first, second = p
            add_label(second if p[second] > p[first] else first)
            p = p.get(True, 0.0)
        elif isinstance(p, dict):
            add_label(max(p, key=p.get))
            p = p.get(True, 0.0)
        else:
            add_label(p)
        add_code(bisect_left(thresholds, p) + (size if y == pos_val else 0))
        loss(y, p)
    add_cells(cm, Counter(zip([y for y, _ in scored], labels, strict=True)))
    _rocauc_cells(roc, codes, scored)


def apply(batched: list[Applier], scored: Scored) -> None:
    """Apply a batch to every batched metric."""
    for applier in batched:
        applier(scored)

"""What features keyed events get, as windows and aggregations: a :class:`FeatureSpec`.

Two ways to one: :func:`parse` checks the ``[windows]`` and ``[[aggregate]]`` tables of the
config file (parsed TOML: plain dicts and lists); :func:`default_spec` gives the features of an
app whose file has no ``[[aggregate]]`` (the fixed recipe of earlier versions), from
``STREAMLEARN_WINDOW``, ``HOP_WINDOW``, ``HOP_STEP`` and ``WINDOW_FEATURES``. Keeps frozen
definitions and the feature names they give. No state, no Faust, no settings: the arithmetic is
in :mod:`app.features.aggregates`, the rules every spec shares in :mod:`app.features.recipe`.
docs/features.md is the reference of the format and of every name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from app.features.encode import window_label, window_names

#: window kinds and the keys each one takes besides ``kind``
KINDS: dict[str, tuple[str, ...]] = {
    "tumbling": ("size",),
    "hopping": ("size", "step"),
    "sliding": ("size",),
    "lifetime": (),
}
#: aggregations over numeric fields; ``count`` is one feature per window, not per field
NUMERIC = ("count", "sum", "mean", "min", "max", "std")
AGGREGATIONS = (*NUMERIC, "distinct", "ewm_mean")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class FeatureSpecError(ValueError):
    """A ``[windows]`` or ``[[aggregate]]`` entry that cannot be computed; says which one."""


@dataclass(frozen=True)
class WindowDef:
    """One named window: ``kind`` and its sizes in seconds of event time (0: not used)."""

    name: str
    kind: str
    size: float = 0.0
    step: float = 0.0


@dataclass(frozen=True)
class Numeric:
    """The fields of the default spec's ``sum`` and ``mean``: every numeric field of an event's
    ``x`` (an int or a float; not a bool), or only those of them named in ``only``
    (``STREAMLEARN_WINDOW_FEATURES``). A window gives one feature per field it holds a value of,
    in the order it first took them, and ``mean`` is the field's sum per event of the window (an
    event without a value of the field counts, as 0). A config file names its fields instead.
    """

    only: frozenset[str] | None = None

    def __str__(self) -> str:
        return "*"


@dataclass(frozen=True)
class Output:
    """One feature: its name, the window it is computed over (index into the spec's windows;
    -1 for ``ewm_mean``), the field (``""`` for ``count``; :class:`Numeric` for each numeric
    field, ``*`` in the name) and the aggregation."""

    name: str
    window: int
    field: str | Numeric
    aggregation: str
    half_life: float = 0.0


@dataclass(frozen=True)
class FeatureSpec:
    """The windows and the features computed over them, in the order they are written."""

    windows: tuple[WindowDef, ...]
    outputs: tuple[Output, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Every feature name the spec adds (``secs_since_last`` besides; ``*`` stands for
        each numeric field, see :class:`Numeric`)."""
        return tuple(o.name for o in self.outputs)

    @property
    def numeric(self) -> Numeric | None:
        """The :class:`Numeric` fields of the default spec (None: the fields are named)."""
        return next((o.field for o in self.outputs if isinstance(o.field, Numeric)), None)


def default_spec(
    window: float, hop_window: float, hop_step: float, only: frozenset[str] | None = None
) -> FeatureSpec:
    """The features of an app whose config file has no ``[[aggregate]]``: count, sum and mean
    of every numeric field (or of those in ``only``) over a tumbling window of ``window``
    seconds and a hopping one of ``hop_window`` seconds every ``hop_step``, named after their
    sizes (``STREAMLEARN_WINDOW``, ``HOP_WINDOW``, ``HOP_STEP``, ``WINDOW_FEATURES``; the sizes
    are checked by ``app/settings.py``).

    >>> spec = default_spec(3600, 3600, 600)
    >>> [(w.name, w.kind, w.size, w.step) for w in spec.windows]
    [('tumbling_1h', 'tumbling', 3600.0, 0.0), ('hopping_1h', 'hopping', 3600.0, 600.0)]
    >>> spec.names
    ('count_tumbling_1h', '*_sum_tumbling_1h', '*_mean_tumbling_1h', \
'count_hopping_1h', '*_sum_hopping_1h', '*_mean_hopping_1h')
    >>> default_spec(60, 20, 10, frozenset({"amount"})).numeric
    Numeric(only=frozenset({'amount'}))
    """
    fields = Numeric(only)
    windows = window_names(window, hop_window)
    outputs = []
    for index, name in enumerate(windows):
        outputs.append(Output(f"count_{name}", index, "", "count"))
        for aggregation in ("sum", "mean"):
            outputs.append(Output(f"{fields}_{aggregation}_{name}", index, fields, aggregation))
    return FeatureSpec(
        (
            WindowDef(windows[0], "tumbling", float(window)),
            WindowDef(windows[1], "hopping", float(hop_window), float(hop_step)),
        ),
        tuple(outputs),
    )


def parse(
    windows: dict | None, aggregates: list | None, where: str, expires: float | None = None
) -> FeatureSpec | None:
    """The spec of a config file's ``[windows]`` and ``[[aggregate]]`` tables; None without any
    ``[[aggregate]]`` (the app then has :func:`default_spec`). ``where`` starts every error
    message; ``expires`` (``STREAMLEARN_WINDOW_EXPIRES``), when given, bounds the window sizes.

    >>> spec = parse({"last_10m": {"kind": "sliding", "size": 600}},
    ...              [{"fields": ["amount"], "aggregations": ["count", "max"],
    ...                "windows": ["last_10m"]}], "streamlearn.toml")
    >>> spec.names
    ('count_last_10m', 'amount_max_last_10m')
    >>> parse({"w": {"kind": "weekly"}}, [], "streamlearn.toml")
    Traceback (most recent call last):
    ...
    app.features.spec.FeatureSpecError: streamlearn.toml: [windows] w: unknown kind 'weekly' \
(one of: tumbling, hopping, sliding, lifetime)
    """
    if windows is not None and not isinstance(windows, dict):
        raise FeatureSpecError(f"{where}: [windows] must be a table of named windows")
    defs = [_window(name, table, where, expires) for name, table in (windows or {}).items()]
    if not aggregates:
        return None
    if not isinstance(aggregates, list):
        raise FeatureSpecError(f"{where}: aggregate must be an array of tables ([[aggregate]])")
    index = {d.name: i for i, d in enumerate(defs)}
    outputs: dict[str, Output] = {}
    for number, entry in enumerate(aggregates, 1):
        at = f"{where}: [[aggregate]] #{number}"
        for output in _aggregate(entry, at, index):
            same = outputs.setdefault(output.name, output)  # declared twice: computed once
            if same != output:
                raise FeatureSpecError(
                    f"{at}: {output.name!r} names two different features; rename a field or "
                    "a window"
                )
    # a window no entry uses keeps no state
    used = sorted({o.window for o in outputs.values() if o.window >= 0})
    index_of = {old: new for new, old in enumerate(used)}
    kept = [replace(o, window=index_of[o.window]) if o.window >= 0 else o for o in outputs.values()]
    return FeatureSpec(tuple(defs[i] for i in used), _grouped(kept, len(used)))


def _grouped(outputs: list[Output], n_windows: int) -> tuple[Output, ...]:
    """The order features are written in: window by window (as declared in [windows]), each
    with its count first, then each field's numeric aggregations (fields in the order they were
    first declared, aggregations in :data:`AGGREGATIONS` order), then distinct; ewm_mean last."""
    field_rank: dict[str, int] = {}
    for o in outputs:
        field_rank.setdefault(o.field, len(field_rank))

    def order(o: Output) -> tuple:
        window = o.window if o.window >= 0 else n_windows
        group = {"count": 0, "distinct": 2}.get(o.aggregation, 1)
        return (window, group, field_rank[o.field], AGGREGATIONS.index(o.aggregation), o.half_life)

    return tuple(sorted(outputs, key=order))


def _window(name: str, table: object, where: str, expires: float | None) -> WindowDef:
    at = f"{where}: [windows] {name}"
    if not _NAME.match(name):
        raise FeatureSpecError(f"{at}: a window name is letters, digits and _ only")
    if not isinstance(table, dict):
        raise FeatureSpecError(f'{at}: expected a table, e.g. {{ kind = "tumbling", size = 3600 }}')
    kind = table.get("kind")
    if kind is None:
        raise FeatureSpecError(f"{at}: no kind (kind = one of: {', '.join(KINDS)})")
    if kind not in KINDS:
        raise FeatureSpecError(f"{at}: unknown kind {kind!r} (one of: {', '.join(KINDS)})")
    allowed = ("kind", *KINDS[kind])
    for key in table:
        if key not in allowed:
            raise FeatureSpecError(f"{at}: {key!r} is not a setting of a {kind} window")
    sizes = {}
    for key in KINDS[kind]:
        value = table.get(key)
        if value is None:
            raise FeatureSpecError(f"{at}: a {kind} window needs {key} (seconds of event time)")
        if type(value) not in (int, float) or not value > 0 or value == float("inf"):
            raise FeatureSpecError(
                f"{at}: {key} must be a positive number of seconds, got {value!r}"
            )
        sizes[key] = float(value)
    size, step = sizes.get("size", 0.0), sizes.get("step", 0.0)
    if kind == "hopping":
        if step > size:
            raise FeatureSpecError(f"{at}: step ({step:g}) must not exceed size ({size:g})")
        if abs(size / step - round(size / step)) > 1e-9:
            raise FeatureSpecError(f"{at}: size ({size:g}) must be a multiple of step ({step:g})")
    if expires is not None and size > expires:
        raise FeatureSpecError(
            f"{at}: size {size:g} s is longer than STREAMLEARN_WINDOW_EXPIRES ({expires:g} s), "
            "after which an idle key is forgotten: raise STREAMLEARN_WINDOW_EXPIRES"
        )
    return WindowDef(name, kind, size, step)


def _aggregate(entry: object, at: str, index: dict[str, int]) -> list[Output]:
    if not isinstance(entry, dict):
        raise FeatureSpecError(f"{at}: expected a table with fields, aggregations, windows")
    for key in entry:
        if key not in ("fields", "aggregations", "windows", "half_life"):
            raise FeatureSpecError(
                f"{at}: unknown key {key!r} (fields, aggregations, windows, half_life)"
            )
    fields = _names(entry, "fields", at)
    aggregations = _names(entry, "aggregations", at)
    for aggregation in aggregations:
        if aggregation not in AGGREGATIONS:
            raise FeatureSpecError(
                f"{at}: unknown aggregation {aggregation!r} (one of: {', '.join(AGGREGATIONS)})"
            )
    windowed = [a for a in aggregations if a != "ewm_mean"]
    window_names = _names(entry, "windows", at) if windowed or "windows" in entry else []
    for name in window_names:
        if name not in index:
            known = ", ".join(index) or "none declared"
            raise FeatureSpecError(f"{at}: unknown window {name!r} ([windows]: {known})")
    half_life = entry.get("half_life")
    if "ewm_mean" in aggregations:
        if type(half_life) not in (int, float) or not 0 < half_life < float("inf"):
            raise FeatureSpecError(
                f"{at}: ewm_mean needs half_life, a positive number of seconds, got {half_life!r}"
            )
    elif half_life is not None:
        raise FeatureSpecError(f"{at}: half_life is only for the ewm_mean aggregation")
    outputs = []
    for name in window_names:
        w = index[name]
        for aggregation in windowed:
            if aggregation == "count":
                outputs.append(Output(f"count_{name}", w, "", "count"))
                continue
            for field in fields:
                outputs.append(Output(f"{field}_{aggregation}_{name}", w, field, aggregation))
    if "ewm_mean" in aggregations:
        label = window_label(float(half_life))
        for field in fields:
            name = f"{field}_ewm_mean_{label}"
            outputs.append(Output(name, -1, field, "ewm_mean", float(half_life)))
    return outputs


def _names(entry: dict, key: str, at: str) -> list[str]:
    value = entry.get(key)
    if not isinstance(value, list) or not value:
        raise FeatureSpecError(f"{at}: {key} must be a non-empty list, got {value!r}")
    for item in value:
        if not isinstance(item, str) or not item:
            raise FeatureSpecError(f"{at}: {key} must hold non-empty strings, got {item!r}")
    return list(dict.fromkeys(value))

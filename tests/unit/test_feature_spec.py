"""app/features/spec.py: the feature names a config gives, and an error naming each bad entry."""

from __future__ import annotations

import math

import pytest

from app.features.encode import window_label
from app.features.spec import FeatureSpecError, Numeric, WindowDef, default_spec, parse

WHERE = "cfg.toml"
GOOD_WINDOWS = {
    "day": {"kind": "tumbling", "size": 86400},
    "hour": {"kind": "hopping", "size": 3600, "step": 600},
    "last_10m": {"kind": "sliding", "size": 600},
    "ever": {"kind": "lifetime"},
}
GOOD_ENTRY = {"fields": ["amount"], "aggregations": ["sum"], "windows": ["hour"]}


def test_no_aggregate_is_the_default_spec():
    assert parse(None, None, WHERE) is None
    assert parse(GOOD_WINDOWS, None, WHERE, 86400.0) is None
    assert parse(GOOD_WINDOWS, [], WHERE) is None


@pytest.mark.parametrize(
    ("sizes", "only", "names"),
    [
        ((3600, 3600, 600), None, ("tumbling_1h", "hopping_1h")),
        ((7.0, 20.0, 5.0), frozenset({"a", "b"}), ("tumbling_7s", "hopping_20s")),
        ((1.5, 4.5, 1.5), frozenset({"a"}), ("tumbling_1.5s", "hopping_4.5s")),
    ],
)
def test_the_default_spec_is_the_fixed_recipe_in_windows_and_aggregations(sizes, only, names):
    window, hop_window, hop_step = sizes
    spec = default_spec(window, hop_window, hop_step, only)
    tumbling, hopping = names
    assert spec.windows == (
        WindowDef(tumbling, "tumbling", window),
        WindowDef(hopping, "hopping", hop_window, hop_step),
    )
    assert spec.numeric == Numeric(only)
    assert spec.names == (
        f"count_{tumbling}",
        f"*_sum_{tumbling}",
        f"*_mean_{tumbling}",
        f"count_{hopping}",
        f"*_sum_{hopping}",
        f"*_mean_{hopping}",
    )
    assert all(o.field == Numeric(only) for o in spec.outputs if o.aggregation != "count")


def test_a_config_file_names_its_fields_a_star_too():
    spec = parse(GOOD_WINDOWS, [{**GOOD_ENTRY, "fields": ["*"]}], WHERE)
    assert spec.numeric is None and spec.names == ("*_sum_hour",)  # a field named "*"


def test_names_count_once_per_window_then_field_aggregation_window():
    spec = parse(
        GOOD_WINDOWS,
        [
            {
                "fields": ["amount", "items"],
                "aggregations": ["count", "sum", "mean", "min", "max", "std"],
                "windows": ["hour", "ever"],
            },
            {"fields": ["merchant"], "aggregations": ["distinct"], "windows": ["last_10m"]},
            {"fields": ["amount", "items"], "aggregations": ["count"], "windows": ["hour"]},
        ],
        WHERE,
    )
    expected = ["count_hour"]
    expected += [
        f"{f}_{a}_hour" for a in ("sum", "mean", "min", "max", "std") for f in ("amount", "items")
    ]
    expected += ["count_ever"]
    expected += [
        f"{f}_{a}_ever" for a in ("sum", "mean", "min", "max", "std") for f in ("amount", "items")
    ]
    expected += ["merchant_distinct_last_10m"]
    assert sorted(spec.names) == sorted(expected)  # count_hour declared twice: once
    assert len(spec.names) == len(set(spec.names))
    kinds = {w.name: (w.kind, w.size, w.step) for w in spec.windows}
    assert kinds == {  # "day" is declared but used by no entry: it keeps no state
        "hour": ("hopping", 3600.0, 600.0),
        "last_10m": ("sliding", 600.0, 0.0),
        "ever": ("lifetime", 0.0, 0.0),
    }
    by_name = {o.name: o for o in spec.outputs}
    assert by_name["count_hour"].field == "" and by_name["count_hour"].aggregation == "count"
    assert spec.windows[by_name["items_std_ever"].window].name == "ever"


@pytest.mark.parametrize(
    ("half_life", "label"), [(3600, "1h"), (600, "10m"), (90, "90s"), (7200.0, "2h")]
)
def test_ewm_mean_is_named_by_its_half_life(half_life, label):
    assert window_label(half_life) == label
    spec = parse(
        None,
        [{"fields": ["amount", "items"], "aggregations": ["ewm_mean"], "half_life": half_life}],
        WHERE,
    )
    assert spec.names == (f"amount_ewm_mean_{label}", f"items_ewm_mean_{label}")
    assert all(o.half_life == half_life for o in spec.outputs)


def test_ewm_mean_beside_windowed_aggregations():
    spec = parse(
        GOOD_WINDOWS,
        [
            {
                "fields": ["amount"],
                "aggregations": ["max", "ewm_mean"],
                "windows": ["last_10m"],
                "half_life": 600,
            }
        ],
        WHERE,
    )
    assert set(spec.names) == {"amount_max_last_10m", "amount_ewm_mean_10m"}


def test_sizes_up_to_expires_and_a_hop_of_one_step_are_fine():
    spec = parse(
        {
            "t": {"kind": "tumbling", "size": 7200},
            "h": {"kind": "hopping", "size": 7200, "step": 7200},
            "s": {"kind": "sliding", "size": 0.5},
        },
        [{"fields": ["a"], "aggregations": ["count"], "windows": ["t", "h", "s"]}],
        WHERE,
        7200.0,
    )
    assert spec.names == ("count_t", "count_h", "count_s")


def aggregate_error(*entries, windows=GOOD_WINDOWS, expires=None) -> str:
    with pytest.raises(FeatureSpecError) as error:
        parse(windows, list(entries), WHERE, expires)
    return str(error.value)


def window_error(table, expires=None) -> str:
    return aggregate_error(GOOD_ENTRY, windows={**GOOD_WINDOWS, "bad": table}, expires=expires)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"kind": "weekly", "size": 10}, "unknown kind 'weekly'"),
        ({"size": 10}, "no kind (kind = one of: tumbling, hopping, sliding, lifetime)"),
        ({"kind": "tumbling"}, "needs size"),
        ({"kind": "tumbling", "size": 0}, "size must be a positive number"),
        ({"kind": "tumbling", "size": -60}, "size must be a positive number"),
        ({"kind": "sliding", "size": 0.0}, "size must be a positive number"),
        ({"kind": "sliding", "size": True}, "size must be a positive number"),
        ({"kind": "sliding", "size": "1h"}, "size must be a positive number"),
        ({"kind": "hopping", "size": 3600}, "needs step"),
        ({"kind": "hopping", "size": 3600, "step": 0}, "step must be a positive number"),
        ({"kind": "hopping", "size": 3600, "step": -600}, "step must be a positive number"),
        ({"kind": "hopping", "size": 600, "step": 3600}, "must not exceed size"),
        ({"kind": "hopping", "size": 3600, "step": 700}, "must be a multiple of step"),
        ({"kind": "tumbling", "size": 60, "step": 10}, "'step' is not a setting"),
        ({"kind": "lifetime", "size": 60}, "'size' is not a setting"),
        ("tumbling", "expected a table"),
    ],
)
def test_a_bad_window_is_named(table, says):
    message = window_error(table)
    assert message.startswith(f"{WHERE}: [windows] bad: ")
    assert says in message


@pytest.mark.parametrize(
    "table",
    [
        {"kind": "tumbling", "size": 7201},
        {"kind": "hopping", "size": 10800, "step": 600},
        {"kind": "sliding", "size": 86400},
    ],
)
def test_a_window_longer_than_expires_is_named(table):
    message = aggregate_error(GOOD_ENTRY, windows={"bad": table}, expires=7200.0)
    assert message.startswith(f"{WHERE}: [windows] bad: ")
    assert "STREAMLEARN_WINDOW_EXPIRES" in message


def test_a_window_name_is_letters_digits_and_underscores():
    message = aggregate_error(GOOD_ENTRY, windows={"a-b": {"kind": "lifetime"}})
    assert message.startswith(f"{WHERE}: [windows] a-b: ")


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"fields": ["a"], "aggregations": ["median"], "windows": ["hour"]}, "'median'"),
        ({"fields": ["a"], "aggregations": ["sum"], "windows": ["week"]}, "unknown window 'week'"),
        ({"fields": [], "aggregations": ["sum"], "windows": ["hour"]}, "fields must be"),
        ({"aggregations": ["sum"], "windows": ["hour"]}, "fields must be"),
        ({"fields": "a", "aggregations": ["sum"], "windows": ["hour"]}, "fields must be"),
        ({"fields": [""], "aggregations": ["sum"], "windows": ["hour"]}, "fields must hold"),
        ({"fields": ["a"], "aggregations": [], "windows": ["hour"]}, "aggregations must be"),
        ({"fields": ["a"], "aggregations": ["sum"], "windows": []}, "windows must be"),
        ({"fields": ["a"], "aggregations": ["sum"]}, "windows must be"),
        ({"fields": ["a"], "aggregations": ["ewm_mean"]}, "ewm_mean needs half_life"),
        ({"fields": ["a"], "aggregations": ["ewm_mean"], "half_life": 0}, "needs half_life"),
        ({"fields": ["a"], "aggregations": ["ewm_mean"], "half_life": -5}, "needs half_life"),
        ({"fields": ["a"], "aggregations": ["ewm_mean"], "half_life": "1h"}, "needs half_life"),
        ({"fields": ["a"], "aggregations": ["ewm_mean"], "half_life": math.inf}, "needs half_life"),
        ({"fields": ["a"], "aggregations": ["ewm_mean"], "half_life": math.nan}, "needs half_life"),
        (
            {"fields": ["a"], "aggregations": ["sum"], "windows": ["hour"], "half_life": 60},
            "half_life is only for",
        ),
        ({"fields": ["a"], "aggregations": ["sum"], "windows": ["hour"], "x": 1}, "unknown key"),
        ("sum", "expected a table"),
    ],
)
def test_a_bad_aggregate_is_named_by_its_number(entry, says):
    message = aggregate_error(GOOD_ENTRY, entry)
    assert message.startswith(f"{WHERE}: [[aggregate]] #2: ")
    assert says in message
    message = aggregate_error(entry)
    assert message.startswith(f"{WHERE}: [[aggregate]] #1: ")


def test_an_unknown_window_without_windows_declared():
    message = aggregate_error(GOOD_ENTRY, windows=None)
    assert message.startswith(f"{WHERE}: [[aggregate]] #1: unknown window 'hour'")


def test_the_tables_themselves_must_be_a_table_and_an_array():
    with pytest.raises(FeatureSpecError, match=r"^cfg\.toml: \[windows\]"):
        parse(["hour"], [GOOD_ENTRY], WHERE)
    with pytest.raises(FeatureSpecError, match=r"^cfg\.toml: aggregate must be an array"):
        parse(GOOD_WINDOWS, GOOD_ENTRY, WHERE)

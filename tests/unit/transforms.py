"""Transforms the tests name in STREAMLEARN_TRANSFORM (event dict in, event dict or None out)."""


def drop_small(event: dict) -> dict | None:
    """Drop events under 1.0; add a feature to the others."""
    if event["x"].get("amount", 0) < 1.0:
        return None
    event["x"]["big"] = event["x"]["amount"] > 100
    return event


def explode(event: dict) -> dict:
    raise KeyError("merchant")


def break_it(event: dict) -> dict:
    event["x"]["bad"] = [1]
    return event


def unwritable(event: dict) -> dict:
    """Values JSON cannot hold, chosen by the event's id (e0, e1, e2); other events unchanged."""
    kind = event["id"]
    if kind == "e0":
        event["x"]["merchant"] = "caf\udce9"  # a lone surrogate (as surrogateescape makes)
    elif kind == "e1":
        event["x"][7] = 1.0  # a feature name that is not a string
    elif kind == "e2":
        event["x"]["amount"] = Float(2.5)  # a float subclass (numpy's float64 is one)
    return event


class Float(float):
    pass


def foreign(event: dict) -> dict | None:
    """tests/integration/test_foreign.py's: drops events marked ``drop``, raises on ``boom``."""
    if event["x"].get("drop"):
        return None
    if "boom" in event["x"]:
        raise ValueError(f"cannot take {event['id']}")
    return event

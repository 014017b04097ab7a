"""A transform that imports streamlearn's own modules, as a team's transform may."""

from tables.windows import RECIPE


def tag(event: dict) -> dict:
    """Add a feature naming the recipe the worker runs."""
    event["x"]["recipe"] = RECIPE.fingerprint
    return event

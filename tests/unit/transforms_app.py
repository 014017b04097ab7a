"""A transform that imports streamlearn's own modules, as a team's transform may."""

from app.settings import settings


def tag(event: dict) -> dict:
    """Add a feature naming the recipe the worker runs."""
    event["x"]["recipe"] = settings.recipe.fingerprint
    return event

"""What River learns offline from rows whose labels come late, and the check that a worker's
model and metrics equal it."""

from river import evaluate

from tests.integration.harness import wait_for
from tests.model_state import canonical, first_difference


def with_delayed_labels(spec, inline: list, delayed: list):
    """River offline: test-then-train on ``inline`` ``(x, y)``; each of ``delayed`` predicted by
    the model as it stands after them (the events arrive before their labels), then scored and
    learned in order (the order of their labels). Returns ``(model, metric)``."""
    model, metric = spec.build(), spec.new_metrics()
    evaluate.progressive_val_score(inline, model, metric)
    predicted = [model.predict_proba_one(x) for x, _ in delayed]
    for (x, y), y_pred in zip(delayed, predicted, strict=True):
        metric.update(y, y_pred)
        model.learn_one(x, y)
    return model, metric


def assert_worker_equals(pipeline, worker, spec, model, metric, n: int) -> None:
    """The worker's one shard has ``spec``'s metrics equal to ``metric``, and its checkpoint of
    ``n`` events holds a model equal to ``model``, parameter by parameter."""
    (entry,) = worker.models()
    assert entry["metrics"] == {type(m).__name__: m.get() for m in metric}
    checkpoint = wait_for(
        lambda: (c := pipeline.last_checkpoint(0))
        and c["models"][spec.name]["n_learned"] == n
        and c,
        what=f"the checkpoint of {n}",
    )
    diff = first_difference(canonical(checkpoint["models"][spec.name]["model"]), canonical(model))
    assert diff is None, f"differs at {diff}"

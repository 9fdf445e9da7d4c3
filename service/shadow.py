"""Shadow traffic: a request through an alias with a shadow version is answered as usual,
then (after the response is sent, as a background task of the route) predicted again by the
shadow, and the two compared in Prometheus:

- nns_shadow_labels_total{model, version, shadow_version, outcome="agree"|"disagree"}: per
  instance, whether the shadow's label is the answered one (classifiers);
- nns_shadow_abs_difference{model, version, shadow_version}: per request, the mean absolute
  difference of the outputs (probabilities, or values/scores);
- nns_shadow_errors_total{...}: shadow runs that failed or could not be compared.

The shadow never touches the answer: it starts after it, its NumPy work runs in a worker
thread, and every failure is swallowed and counted.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
import numpy as np

from nn_core.heads import Decoded
from service import predictor
from service.db import Database
from service.observability import OTHER, Metrics
from service.registry.cache import ModelCache
from service.serving import Served, serve_shadow

log = logging.getLogger(__name__)


async def mirror(
    database: Database,
    cache: ModelCache,
    metrics: Metrics,
    served: Served,
    x: Any,
    answered: Decoded,
    threshold: float | None,
) -> None:
    """Predict `x` with `served`'s shadow and record how it compares with `answered`.
    `threshold` is the request's own (None: the shadow version's, as for any request)."""
    if served.shadow is None:
        return
    model, version = metrics.model_labels(served.name, str(served.version))
    shadow_version = OTHER
    try:
        shadow = await serve_shadow(database, cache, served.name, served.shadow)
        shadow_version = metrics.model_labels(served.name, str(shadow.version))[1]
        agree, disagree, difference = await anyio.to_thread.run_sync(
            _compare, shadow, x, answered, threshold
        )
    except Exception as exc:  # never the client's problem: counted and logged
        metrics.shadow_errors.labels(model, version, shadow_version).inc()
        log.warning("shadow run of %s failed: %s", served.name, exc)
        return
    labels = (model, version, shadow_version)
    if agree or disagree:
        metrics.shadow_labels.labels(*labels, "agree").inc(agree)
        metrics.shadow_labels.labels(*labels, "disagree").inc(disagree)
    metrics.shadow_difference.labels(*labels).observe(difference)


def _compare(
    shadow: Served, x: Any, answered: Decoded, requested: float | None
) -> tuple[int, int, float]:
    """(labels agreeing, labels disagreeing, mean absolute output difference)."""
    threshold = predictor.threshold_for(shadow.model, requested, shadow.threshold, "threshold")
    decoded = predictor.run(shadow.model, x, "instances", threshold)
    ours, theirs = _outputs(answered), _outputs(decoded)
    if ours.shape != theirs.shape:
        raise ValueError(f"outputs of shape {theirs.shape} cannot be compared with {ours.shape}")
    agree = disagree = 0
    if answered.labels is not None and decoded.labels is not None:
        agree = sum(a == b for a, b in zip(answered.labels, decoded.labels, strict=True))
        disagree = len(answered.labels) - agree
    difference = float(np.mean(np.abs(ours - theirs))) if ours.size else 0.0
    return agree, disagree, difference


def _outputs(decoded: Decoded) -> np.ndarray:
    found = decoded.probabilities if decoded.probabilities is not None else decoded.values
    return np.asarray(found if found is not None else [], dtype=np.float64)

"""A pool's placement in the config: the experts of one pool share one replica, so they must agree on it.

Placement and scaling (resources, autoscaling, the request limits) are per deployment, and a pool is one
deployment; an expert that leaves them unset takes the pool's, experts that set them must set the same values.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coe.config import ExpertConfig

PLACEMENT_FIELDS = ("resources", "autoscaling", "max_ongoing_requests", "max_queued_requests")


def _shown(value: Any) -> Any:
    return value.model_dump() if hasattr(value, "model_dump") else value


def resolve_pool_placement(experts: list[ExpertConfig]) -> None:
    """Fills the unset placement fields of each pool's experts from the ones that set them (in place); raises
    ValueError naming the pool, the field and the experts that disagree."""
    pools: dict[str, list[ExpertConfig]] = {}
    for e in experts:
        pools.setdefault(e.pool_name, []).append(e)
    for pool, members in pools.items():
        if len(members) < 2:
            continue
        for field in PLACEMENT_FIELDS:
            setters = [e for e in members if field in e.model_fields_set]
            values = {e.name: _shown(getattr(e, field)) for e in setters}
            if any(v != next(iter(values.values())) for v in values.values()):
                raise ValueError(f"pool {pool!r}: its experts disagree on {field} ({values}); a pool is one "
                                 f"deployment: set {field} on one of its experts, or the same on all")
            for e in members:
                if setters and field not in e.model_fields_set:
                    setattr(e, field, copy.deepcopy(getattr(setters[0], field)))
                    e.model_fields_set.add(field)

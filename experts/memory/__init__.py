"""Memory tiers for expert weights: budgets, eviction, prefetch, and expert-affinity scheduling."""

from experts.memory.bandwidth import BandwidthMeter
from experts.memory.errors import MemoryBusyError, QueueFullError
from experts.memory.manager import TierBudgets, TierManager
from experts.memory.movable import TIERS, Movable, Tier
from experts.memory.policies import Candidate, CostAwarePolicy, EvictionPolicy, LRUPolicy, make_policy
from experts.memory.scheduler import ExpertQueues

__all__ = [
    "TIERS", "BandwidthMeter", "Candidate", "CostAwarePolicy", "EvictionPolicy", "ExpertQueues", "LRUPolicy",
    "MemoryBusyError", "Movable", "QueueFullError", "Tier", "TierBudgets", "TierManager", "make_policy",
]

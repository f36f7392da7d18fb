"""Defaults of the memory tiers and the scheduler, defined once: the library's and coe's config (MemoryConfig)."""

ACQUIRE_TIMEOUT_S = 60.0  # how long a request waits for device room before it gets a 503
MAX_SKIPS = 8  # times the affinity scheduler may pass over a queued request
MAX_WAIT_S = 30.0  # ... or seconds it may keep it waiting

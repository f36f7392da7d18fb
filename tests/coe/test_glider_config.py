"""router.type glider: the glider section validates, defaults keep old configs valid, and the gateway builds it."""

from pathlib import Path

import numpy as np
import pytest

from coe.config import ConfigError, load_config, parse_config
from routers.glider import GliderRouter

ROOT = Path(__file__).resolve().parents[2]


def config(router: dict):
    return parse_config({"experts": [{"name": "a", "model": "m"}, {"name": "b", "model": "m"}],
                         "router": {"general_expert": "a", **router}}, "<test>")


def test_existing_configs_stay_coe_with_glider_defaults():
    cfg = load_config(ROOT / "configs" / "default.yaml")
    assert cfg.router.type == "coe"
    g = cfg.router.glider
    assert (g.alpha, g.top_k, g.instruction_mode, g.artifact) == (1.0, 1, "cheap", Path("artifacts/glider-router"))


def test_glider_section_is_validated():
    cfg = config({"type": "glider", "glider": {"alpha": 2.5, "top_k": 2, "instruction_mode": "llm",
                                               "instruction_expert": "b"}})
    assert (cfg.router.type, cfg.router.glider.alpha, cfg.router.glider.top_k) == ("glider", 2.5, 2)
    with pytest.raises(ConfigError, match="router.glider.top_k"):
        config({"type": "glider", "glider": {"top_k": 0}})
    with pytest.raises(ConfigError, match="instruction_expert 'nope' is not an expert"):
        config({"type": "glider", "glider": {"instruction_expert": "nope"}})
    with pytest.raises(ConfigError, match="router.type"):
        config({"type": "moe"})


class Fixed:
    """A 384-d encoder that returns one fixed unit vector (the router is built, not exercised for quality)."""

    def encode(self, texts):
        v = np.zeros((len(texts), 384), dtype=np.float32)
        v[:, 0] = 1.0
        return v


def test_gateway_builds_glider_over_the_committed_artifacts():
    from coe.serve.routing import RouterHolder

    cfg = load_config(ROOT / "configs" / "default.yaml")
    cfg.router.type = "glider"
    cfg.router.glider.top_k = 2
    holder = RouterHolder(cfg, encoder=Fixed())
    assert isinstance(holder.router, GliderRouter)
    # the three routed experts; the MoErging expert is served by name (it has no instruction in glider-router)
    assert sorted(holder.router.experts) == sorted(e.name for e in cfg.experts if e.moerging is None)
    d = holder.route_one("anything")
    assert d.reason.startswith("glider: alpha=1 ") and len(d.weights) == 2
    assert sum(d.weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert holder.describe()["glider"]["instruction_cache"] == {"hits": 0, "misses": 0, "size": 0}

"""The gateway's router refuses an altered artifact and names the file (start-up and admin reload)."""

import shutil
from pathlib import Path

import pytest

from coe.config import load_config
from coe.serve.routing import RouterHolder
from routers.artifacts import ArtifactError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("victim", ["weights.safetensors", "meta.json"])
def test_altered_router_artifact_is_refused(tmp_path, victim):
    art = tmp_path / "coe-router"
    shutil.copytree(ROOT / "artifacts" / "coe-router", art)
    cfg = load_config(ROOT / "configs" / "default.yaml")
    cfg.router.artifact = art
    RouterHolder(cfg, encoder=object())  # intact: accepted (the encoder is not used before routing)
    data = bytearray((art / victim).read_bytes())
    data[-2] ^= 1
    (art / victim).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{art / victim}: sha256"):
        RouterHolder(cfg, encoder=object())


def test_router_encoder_other_than_the_artifacts_is_refused():
    """The committed artifact records the encoder it was trained with; the config naming another stops start-up."""
    import json

    cfg = load_config(ROOT / "configs" / "default.yaml")
    trained = json.loads((ROOT / "artifacts" / "coe-router" / "meta.json").read_text())["encoder"]
    assert cfg.router.encoder == trained  # the default config serves the encoder the artifact was trained with
    other = "registry:all-minilm-l6-v2" if trained != "registry:all-minilm-l6-v2" else "onnx:all-minilm-l6-v2"
    cfg.router.encoder = other
    with pytest.raises(ArtifactError, match=rf"trained with encoder '{trained}', but the router is given '{other}'"):
        RouterHolder(cfg)

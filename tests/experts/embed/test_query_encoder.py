"""Query encoder with LoRA adapters: fresh adapter = base, save/load round trip, corrupt or foreign refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from experts.embed.adapters import AdapterError, LoraSpec, load_adapter, save_adapter
from experts.embed.query_encoder import ExpertQueryEncoder, encoder_id

pytestmark = pytest.mark.slow  # loads the real MiniLM (tens of seconds on a busy 2-core box)

TEXTS = ["wing flutter at supersonic speed", "protein folding in yeast"]


@pytest.fixture(scope="module")
def encoder() -> ExpertQueryEncoder:
    return ExpertQueryEncoder()


def test_encoder_id_names_the_package_version() -> None:
    assert encoder_id("registry:all-minilm-l6-v2").startswith("registry:all-minilm-l6-v2@")
    assert encoder_id("/models/x") == "/models/x"


def test_adapter_round_trip(encoder: ExpertQueryEncoder, tmp_path: Path) -> None:
    base = encoder.encode(TEXTS)
    encoder.add_adapter("fresh", LoraSpec())
    np.testing.assert_allclose(encoder.encode(TEXTS, "fresh"), base, atol=1e-6)  # LoRA B starts at zero
    weights = encoder.adapter_weights("fresh")
    assert len(weights) == 6 * 3 * 2  # 6 layers x (query, key, value) x (A, B)
    rng = np.random.default_rng(0)
    weights = {k: (rng.normal(scale=0.05, size=v.shape) if "lora_B" in k else v).astype(np.float32)
               for k, v in weights.items()}
    save_adapter(tmp_path / "a", weights, LoraSpec(), {"base_encoder": encoder.ref}, command="test")
    encoder.load_expert("loaded", tmp_path / "a")
    moved = encoder.encode(TEXTS, "loaded")
    assert np.abs(moved - base).max() > 1e-3
    np.testing.assert_allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(encoder.encode(TEXTS), base, atol=1e-6)  # None = adapters disabled
    with pytest.raises(KeyError, match="unknown expert 'nope'"):
        encoder.encode(TEXTS, "nope")


def test_corrupt_or_foreign_adapter_is_refused(encoder: ExpertQueryEncoder, tmp_path: Path) -> None:
    weights = {"w": np.zeros((2, 2), dtype=np.float32)}
    save_adapter(tmp_path / "a", weights, LoraSpec(), {"base_encoder": "registry:other"})
    with pytest.raises(AdapterError, match="trained on 'registry:other'"):
        encoder.load_expert("foreign", tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    (tmp_path / "a" / "meta.json").write_text(json.dumps({**meta, "base_encoder": encoder.ref}))
    with pytest.raises(AdapterError, match=r"meta\.json: sha256 .* does not match the manifest"):
        load_adapter(tmp_path / "a")


def test_direct_forward_equals_sentence_transformers_encode(encoder: ExpertQueryEncoder, tmp_path: Path) -> None:
    """The request path (one direct forward, LoRA layers switched in place) computes what `encode` computes."""
    from experts.embed.query_encoder import DIRECT_FORWARD_MAX

    rng = np.random.default_rng(1)
    encoder.add_adapter("shapes", LoraSpec())
    weights = {k: (rng.normal(scale=0.05, size=v.shape) if "lora_B" in k else v).astype(np.float32)
               for k, v in encoder.adapter_weights("shapes").items()}
    save_adapter(tmp_path / "b", weights, LoraSpec(), {"base_encoder": encoder.ref}, command="test")
    encoder.load_expert("direct", tmp_path / "b")
    texts = TEXTS + ["a much longer query about the heat transfer of a slender cone in hypersonic flow"]
    assert len(texts) <= DIRECT_FORWARD_MAX

    def reference(expert: str | None) -> np.ndarray:  # sentence-transformers' own encode, peft's own switch
        peft = encoder._peft
        if expert is None:
            with peft.disable_adapter():
                return encoder.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        peft.set_adapter(encoder._name(expert))
        return encoder.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    direct = {e: encoder.encode(texts, e) for e in (None, "direct", None, "direct")}  # switch back and forth
    for expert, got in direct.items():
        np.testing.assert_allclose(got, reference(expert), atol=1e-5)
    assert np.abs(direct["direct"] - direct[None]).max() > 1e-3  # the adapter is really applied, and then removed
    encoder._active = object()  # peft's own switching above: let the encoder re-apply its state
    np.testing.assert_allclose(encoder.encode(texts * 8, "direct")[:3], direct["direct"], atol=1e-5)  # batched path



def test_inference_switch_leaves_gradients_alone_and_training_switch_sets_them(encoder: ExpertQueryEncoder) -> None:
    encoder.add_adapter("grads", LoraSpec())
    name = encoder._name("grads")

    def trainable() -> set[str]:
        return {n for n, p in encoder.model.named_parameters() if p.requires_grad}

    for p in encoder.model.parameters():
        p.requires_grad_(False)
    encoder.encode(TEXTS, "grads")
    encoder.encode(TEXTS)
    assert trainable() == set()  # the request path's switches touch no gradient flag
    encoder.activate("grads", trainable=True)
    assert trainable() and all(f".{name}." in n for n in trainable())
    assert not encoder._tuner_layers[0].disable_adapters and encoder._tuner_layers[0].active_adapters == [name]


def test_encode_pair_is_base_and_expert_in_one_pass(encoder: ExpertQueryEncoder, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    encoder.add_adapter("pairs", LoraSpec())
    weights = {k: (rng.normal(scale=0.05, size=v.shape) if "lora_B" in k else v).astype(np.float32)
               for k, v in encoder.adapter_weights("pairs").items()}
    save_adapter(tmp_path / "p", weights, LoraSpec(), {"base_encoder": encoder.ref}, command="test")
    encoder.load_expert("paired", tmp_path / "p")
    texts = TEXTS + ["a much longer query about the heat transfer of a slender cone in hypersonic flow"]
    base, expert = encoder.encode_pair(texts, "paired")
    np.testing.assert_allclose(base, encoder.encode(texts), atol=1e-5)
    np.testing.assert_allclose(expert, encoder.encode(texts, "paired"), atol=1e-5)
    assert np.abs(expert - base).max() > 1e-3
    np.testing.assert_allclose(encoder.encode(texts), base, atol=1e-5)  # the hooks are idle again afterwards
    with pytest.raises(KeyError, match="unknown expert 'nope'"):
        encoder.encode_pair(texts, "nope")

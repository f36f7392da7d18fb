"""A built encoder folder counts only with a build.json naming the current source weights and recipe."""

import json

import pytest

from experts.embed import encoder_build as eb
from experts.embed.encoders import EncoderError, EncoderRef

REF = EncoderRef("onnx", "all-minilm-l6-v2")


def test_marker_decides_whether_a_folder_is_built(tmp_path, monkeypatch):
    monkeypatch.setenv("COE_CACHE_DIR", str(tmp_path))
    folder = eb.folder_of(REF)
    assert folder == tmp_path / "encoders" / "onnx-all-minilm-l6-v2" and not eb.is_built(REF)
    folder.mkdir(parents=True)
    (folder / eb.BUILD_FILE).write_text(json.dumps({"source": eb._source_id(REF), "version": eb.BUILD_VERSION}))
    assert eb.is_built(REF) and eb.built_dir(REF) == folder
    (folder / eb.BUILD_FILE).write_text(json.dumps({"source": "registry:all-minilm-l6-v2@0.0.1", "version": 1}))
    assert not eb.is_built(REF)  # other weights: rebuilt
    (folder / eb.BUILD_FILE).write_text("{half")
    assert not eb.is_built(REF)


def test_registry_and_plain_refs_need_no_build():
    assert eb.ensure_built("registry:all-minilm-l6-v2") is None
    assert eb.ensure_built("/some/sentence-transformers/folder") is None


def test_each_kind_has_its_recipe():
    recipe = {kind: eb._recipe(EncoderRef(kind, "all-minilm-l6-v2"))
              for kind in ("onnx", "onnx-int8", "model2vec", "onnx-fused-int8", "onnx-int8-l4", "onnx-fused-l2")}
    assert recipe["onnx"] is eb._export_onnx and recipe["onnx-int8"] is eb._quantize_onnx
    assert recipe["model2vec"] is eb._distill_model2vec
    assert {recipe[k] for k in ("onnx-fused-int8", "onnx-int8-l4", "onnx-fused-l2")} == {eb._export_variant}


@pytest.mark.slow
def test_more_layers_than_the_model_has_are_refused(tmp_path):
    with pytest.raises(EncoderError, match="all-minilm-l6-v2 has 6 layers, 9 asked"):
        eb._export_onnx(EncoderRef("onnx-int8-l9", "all-minilm-l6-v2"), tmp_path)

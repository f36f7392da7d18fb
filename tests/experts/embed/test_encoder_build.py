"""A built encoder folder counts only with a build.json naming the current source weights and recipe."""

import json

from experts.embed import encoder_build as eb
from experts.embed.encoders import EncoderRef

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

"""The app builder: where a relative config path resolves."""


def test_relative_config_path_resolves_against_checkout_outside_it(tmp_path, monkeypatch):
    from coe.serve.app import config_path
    from experts.paths import REPO_ROOT

    monkeypatch.chdir(tmp_path)
    assert config_path("configs/default.yaml") == REPO_ROOT / "configs" / "default.yaml"
    (tmp_path / "mine.yaml").write_text("x: 1")
    assert config_path("mine.yaml").resolve() == tmp_path / "mine.yaml"

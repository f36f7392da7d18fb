"""build_backend: the expert's config → its backend; options built once, a module:factory backend of one's own."""

import sys
import types

import pytest

from coe.config import ConfigError, ExpertConfig, parse_config
from coe.serve.backends import backend_options, build_backend
from experts.llm.base import BackendOptions


def test_backend_options_come_from_the_config_and_its_defaults_are_the_librarys():
    assert backend_options(ExpertConfig(name="a", model="x")) == BackendOptions()
    cfg = ExpertConfig(name="a", model="x", dtype="float32", chat_template=False, context_length=512)
    assert backend_options(cfg, device="cuda:1") == BackendOptions(dtype="float32", chat_template=False,
                                                                   context_length=512, device="cuda:1")


def test_a_module_factory_backend_gets_the_experts_config(monkeypatch):
    seen = []
    module = types.ModuleType("my_backends")
    module.make = lambda cfg: seen.append(cfg) or "the backend"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "my_backends", module)
    cfg = ExpertConfig(name="a", model="x", backend="my_backends:make", backend_options={"k": 1})
    assert build_backend(cfg) == "the backend"
    assert seen == [cfg] and seen[0].backend_options == {"k": 1}


def test_an_unloadable_factory_names_the_reference():
    with pytest.raises(ValueError, match="backend 'no_such_module:make' cannot be loaded"):
        build_backend(ExpertConfig(name="a", model="x", backend="no_such_module:make"))
    with pytest.raises(ValueError, match="backend 'os:no_such_attr' cannot be loaded"):
        build_backend(ExpertConfig(name="a", model="x", backend="os:no_such_attr"))
    with pytest.raises(ValueError, match="backend 'os:sep' is not callable"):
        build_backend(ExpertConfig(name="a", model="x", backend="os:sep"))


def test_backend_must_be_known_or_module_colon_name():
    with pytest.raises(ConfigError, match="experts.0.backend"):
        parse_config({"experts": [{"name": "a", "model": "x", "backend": "tensorrt"}],
                      "router": {"general_expert": "a"}})


def test_production_config_has_no_test_hooks():
    assert not {"fail_on_purpose", "fail_while_file"} & set(ExpertConfig.model_fields)

"""The gateway's request checks, as plain functions."""

import pytest

from coe.api.errors import BadRequest
from coe.api.schemas import ChatCompletionRequest
from coe.config import parse_config
from coe.serve.gateway import check_limits, last_user_text, resolve_max_tokens

CFG = parse_config({
    "experts": [{"name": "a", "model": "x", "max_tokens_limit": 100, "default_max_tokens": 20}],
    "router": {"general_expert": "a"},
    "server": {"max_messages": 3, "max_chars": 50},
})


def req(messages, **kw):
    return ChatCompletionRequest(model="coe", messages=messages, **kw)


def test_routes_on_last_user_message():
    r = req([{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
              {"role": "user", "content": [{"type": "text", "text": "second"}]}])
    assert last_user_text(r) == "second"


def test_limits():
    check_limits(req([{"role": "user", "content": "fine"}]), CFG)
    with pytest.raises(BadRequest, match="4 messages; the limit is 3"):
        check_limits(req([{"role": "user", "content": "x"}] * 4), CFG)
    with pytest.raises(BadRequest, match="the limit is 50"):
        check_limits(req([{"role": "user", "content": "x" * 51}]), CFG)
    with pytest.raises(BadRequest, match="role 'user'"):
        check_limits(req([{"role": "system", "content": "x"}]), CFG)
    with pytest.raises(BadRequest, match="empty"):
        check_limits(req([{"role": "user", "content": "   "}]), CFG)


def test_max_tokens_default_and_cap():
    expert = CFG.expert("a")
    assert resolve_max_tokens(req([{"role": "user", "content": "x"}]), expert) == 20
    assert resolve_max_tokens(req([{"role": "user", "content": "x"}], max_tokens=100), expert) == 100
    with pytest.raises(BadRequest, match="above the limit 100"):
        resolve_max_tokens(req([{"role": "user", "content": "x"}], max_tokens=101), expert)

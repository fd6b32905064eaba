"""config.json checks: one line per problem, every problem at once."""

import json

import pytest

from relay.config import SCHEMA, ConfigError, load


def test_defaults_load():
    cfg = load("")
    assert cfg.socks.port == 1080 and cfg.http.port == 8080 and cfg.guard.allow == []


def test_every_problem_one_line_each():
    text = json.dumps({"socks": {"port": 70000, "udp": "true"}, "limits": {"tunels": 5}, "dsn": {}})
    with pytest.raises(ConfigError) as e:
        load(text)
    problems = e.value.problems
    assert "config.json: socks.port: expected 1..65535, got 70000" in problems
    assert any(p.startswith("config.json: socks.udp: expected true or false") and "without quotes" in p for p in problems)
    assert 'config.json: limits.tunels: unknown key (did you mean "tunnels"?)' in problems
    assert 'config.json: dsn: unknown section (did you mean "dns"?)' in problems
    assert len(problems) == 4


def test_bad_json_names_the_file():
    with pytest.raises(ConfigError) as e:
        load("{", "/data/config.json")
    assert e.value.problems[0].startswith("/data/config.json: not valid JSON")


def test_password_needs_users_and_users_are_checked():
    with pytest.raises(ConfigError) as e:
        load(json.dumps({"socks": {"auth": "password"}}))
    assert "socks.users" in str(e.value)
    cfg = load(json.dumps({"socks": {"auth": "password", "users": [{"user": "a", "pass": "b"}]}}))
    assert cfg.socks.users == [(b"a", b"b")]


def test_overrides_and_extend():
    cfg = load(json.dumps({"guard": {"allow": ["10.0.0.0/8"]}}), overrides={"socks.port": 1111},
               extend={"guard.allow": ["127.0.0.0/8"]})
    assert cfg.socks.port == 1111 and cfg.guard.allow == ["10.0.0.0/8", "127.0.0.0/8"]


def test_readme_documents_every_key():
    from pathlib import Path

    from relayctl.docs import render

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert render(readme) == readme, "README's config table is stale: run `make docs`"
    for key, *_ in SCHEMA:
        assert f"`{key}`" in readme, key

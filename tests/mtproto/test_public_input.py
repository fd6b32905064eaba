"""`relayctl public check` and `relayctl fleet` given what people mistype: each is one line saying what is
wrong, never a traceback. Loopback only: nothing listens on the ports named here."""

import json

import pytest

from tests.mtproto.test_relayctl_mtproto import relayctl

SECRET = "ee0123456789abcdef0123456789abcdef" + b"www.example.org".hex()


@pytest.fixture
def config(tmp_path):
    def make(mask="127.0.0.1:1", secret=SECRET):
        p = tmp_path / "config.json"
        p.write_text(json.dumps({"mtproto": {"enabled": True, "public": True, "secrets": [secret], "mask": mask}}))
        return str(p)
    return make


@pytest.mark.parametrize("extra,says", [
    (["--ca", "/nonexistent/ca.pem"], "--ca /nonexistent/ca.pem"),
    (["--address", "my.vps"], "--address my.vps"),
    (["--dns", "127.0.0.1:fiftythree"], "--dns 127.0.0.1:fiftythree"),
])
def test_public_check_names_the_bad_option(config, extra, says):
    r = relayctl("public", "check", "--config", config(), "--timeout", "1", *extra)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("relayctl: " + says) and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("mask,secret,says", [
    ("127.0.0.1:https", SECRET, "mtproto.mask"),
    ("127.0.0.1:1", "ee0123456789abcdef0123456789abcdefzz", "mtproto.secrets"),
])
def test_public_check_names_the_bad_config_value(config, mask, secret, says):
    r = relayctl("public", "check", "--config", config(mask, secret), "--timeout", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_fleet_with_a_missing_ca_file_is_one_line(tmp_path):
    r = relayctl("fleet", "--broker", "127.0.0.1:1", "--ca", str(tmp_path / "fleet-ca.pem"), "--once")
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "fleet-ca.pem" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_public_cards_are_private_like_every_card(config, tmp_path):
    """A card carries the relay's MTProto secret (whoever holds it can use the relay, or show a censor what it
    is): owner-only, as `relayctl cards` writes its cards."""
    import stat

    out = tmp_path / "cards"
    r = relayctl("public", "cards", "--config", config(), "--out", str(out), "--server", "relay.example.org")
    assert r.returncode == 0, r.stderr
    made = sorted(out.glob("card-*"))  # index.html only frames them
    assert made
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in made if stat.S_IMODE(p.stat().st_mode) & 0o077} == {}

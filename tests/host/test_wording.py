"""What relayctl says, where it said something untrue or odd (docs-trial): "1 cards in cards//" (T5), a
status URL without the port it tried (T7), a clock warning blaming a Date header it never read (T3)."""

import json

from tests.helpers.relayproc import free_port
from tests.mtproto.test_relayctl_public import DOMAIN, check, relayctl, site  # noqa: F401  (the fixture)


def test_one_card_in_a_directory_given_with_a_slash(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"mtproto": {"enabled": True, "port": 443, "server": "relay.example.org",
                                           "secrets": ["dd" + "ab" * 16]}}))
    r = relayctl("public", "cards", "--config", str(cfg), "--out", str(tmp_path / "cards") + "/")
    assert r.returncode == 0, r.stderr
    assert f"1 card in {tmp_path / 'cards'}/ (open index.html to print it)" in r.stdout, r.stdout


def test_mesh_status_names_the_url_it_tried(tmp_path):
    port = free_port()  # nothing listens there
    r = relayctl("mesh", "status", "--host", "127.0.0.1", "--timeout", "2")
    assert r.returncode == 1 and "cannot read http://127.0.0.1:8081/api/status" in r.stderr, r.stderr
    r = relayctl("mesh", "status", "--host", f"127.0.0.1:{port}", "--timeout", "2")
    assert f"cannot read http://127.0.0.1:{port}/api/status" in r.stderr, r.stderr


def test_a_failed_mask_check_does_not_blame_the_sites_date_header(site, tmp_path):  # noqa: F811
    r = check(site, tmp_path, {DOMAIN: ["127.0.0.1"]}, "--address", "127.0.0.1")  # the throwaway CA is not trusted
    assert "FAIL  mask:" in r.stdout
    assert "sent no Date" not in r.stdout, r.stdout
    assert "warn  clock: not compared with the mask site's: its check failed above" in r.stdout

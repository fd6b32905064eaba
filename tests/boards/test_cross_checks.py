"""Cross-key checks a relay would otherwise fail on at start, or worse, run with: two of its listeners on
one port (T20: "Address already in use" on the board), a public relay whose mask site is its own MTProto
port (T22: every probe passed back to itself). Driven through `relayctl boards check` / `site check`."""

import pytest

from tests.boards.test_profiles import relayctl, write

PUBLIC_SITE = '[mtproto]\ndomain = "relay.example.org"\nmask = "{mask}"\nserver = "relay.example.org"\n'


def test_mtproto_on_the_http_port_is_refused_at_its_line(tmp_path):
    p = write(tmp_path, "pi.toml", 'extends = "rpi-4"\n\n[relay]\nmtproto_port = 8080\n')
    r = relayctl("boards", "check", str(p))
    assert r.returncode != 0, r.stdout
    assert f"{p}:4: relay.mtproto_port: port 8080 is already relay.http_port" in r.stdout + r.stderr


def test_a_port_of_the_transparent_listener_is_refused(tmp_path):
    p = write(tmp_path, "pi.toml", 'extends = "rpi-4"\n\n[relay]\nhttp_port = 1081\n')
    r = relayctl("boards", "check", str(p))
    assert r.returncode != 0 and "relay.http_port: port 1081 is already the transparent listener's" in r.stdout


@pytest.mark.parametrize("mask", ["127.0.0.1:443", "localhost:443", "relay.example.org:443", "[::1]:443"])
def test_a_public_relay_masking_to_itself_is_refused(tmp_path, mask):
    site = write(tmp_path, "public.toml", PUBLIC_SITE.format(mask=mask))
    r = relayctl("site", "check", str(site), "--board", "public")
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{site}:3: mtproto.mask: {mask} is this relay's own MTProto port" in r.stdout


@pytest.mark.parametrize("mask", ["127.0.0.1:8443", "www.example.com:443"])
def test_a_mask_elsewhere_passes(tmp_path, mask):
    site = write(tmp_path, "public.toml", PUBLIC_SITE.format(mask=mask))
    r = relayctl("site", "check", str(site), "--board", "public")
    assert r.returncode == 0, r.stdout + r.stderr


def test_run_public_masking_to_itself_is_refused(tmp_path):
    r = relayctl("run", "--public", "--domain", "relay.example.org", "--mask", "127.0.0.1:28443", "--port", "28443",
                 "--state", str(tmp_path / "state"))
    assert r.returncode == 2 and "is this relay's own MTProto port 28443" in r.stderr, r.stdout + r.stderr
    assert not (tmp_path / "state" / "config.json").exists()


def test_an_unlisted_linux_chip_is_pointed_at_other_not_a_different_soc(tmp_path):
    p = write(tmp_path, "archer.toml", 'extends = "openwrt"\n\n[chip]\nname = "mt7621"\n')
    r = relayctl("boards", "check", str(p))
    assert r.returncode != 0
    line = next(ln for ln in r.stdout.splitlines() if "chip.name" in ln)
    assert line.startswith(f"{p}:4: chip.name: ") and '"other"' in line and "mt7628an\"?" not in line, line


def test_a_near_miss_of_a_micropython_chip_is_still_named(tmp_path):
    p = write(tmp_path, "s3.toml", 'extends = "esp32-s3"\n\n[chip]\nname = "esp32s"\n')
    r = relayctl("boards", "check", str(p))
    assert 'did you mean "esp32s3"?' in r.stdout, r.stdout


ENGINES = '''[uplink]
kind = "upstream"

[[uplink.engine]]
kind = "shadowsocks"
server = "203.0.113.7"
password = "a long shared password"

[[uplink.engine]]
kind = "trojan"
{second}
'''


@pytest.mark.parametrize("second,line,key", [('password = "pw"', 9, ""),  # each at its entry's header
                                              ('server = "x.example"\nport = 99999', 9, "port")])
def test_a_problem_in_the_second_engine_is_reported_at_its_own_lines(tmp_path, second, line, key):
    site = write(tmp_path, "site.toml", ENGINES.format(second=second))
    r = relayctl("site", "check", str(site), "--board", "rpi-4")
    assert r.returncode == 2, r.stdout + r.stderr
    (msg,) = [ln for ln in r.stdout.splitlines() if "engine 2" in ln]
    assert msg.startswith(f"{site}:{line}: uplink.engine: engine 2 (trojan): {key}"), msg


def test_the_public_profile_states_one_figure_for_phones(tmp_path):
    import re

    show = relayctl("boards", "show", "public").stdout
    head = re.search(r"carries\s+about \d+ tunnels, about (\d+) phones", show).group(1)
    public = re.search(r"public\s+about (\d+) phones as a public MTProto relay", show).group(1)
    assert head == public, show
    listed = relayctl("boards", "list").stdout
    assert f"about {head} phones" in next(ln for ln in listed.splitlines() if ln.startswith("public ")), listed


def test_a_closed_pipe_is_not_a_traceback():
    import subprocess

    from tests.boards.test_profiles import sys

    r = subprocess.run(f"{sys.executable} -m relayctl.cli boards show public | true", shell=True,
                       capture_output=True, text=True, timeout=60)
    assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr, r.stderr


@pytest.mark.parametrize("text,key", [
    ('[wifi]\nsecurity = "wpa2"\npassphrase = "change me please"\n', "wifi.passphrase"),
    ('[proxy]\nuser = "relay"\npassword = "choose a long one"\n', "proxy.password"),
])
def test_the_docs_placeholders_are_refused(tmp_path, text, key):
    site = write(tmp_path, "site.toml", text)
    r = relayctl("site", "check", str(site), "--board", "esp32-generic")
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{site}:3: {key}: " in r.stdout and "the example from the docs" in r.stdout, r.stdout


def test_mesh_mds_example_key_is_refused(tmp_path):
    from tests.mesh.test_mesh_render import SITE

    import re

    key = re.search(r'^key = "([^"]*)"', SITE, re.M).group(1)
    site = write(tmp_path, "site.toml", SITE.replace(key, "a long shared secret, 16-63 characters"))
    r = relayctl("build", "rpi-4", "--site", str(site), "--relay", "roof", "--out", str(tmp_path / "b"))
    assert r.returncode == 2 and "mesh.key" in r.stderr and "the example from the docs" in r.stderr, r.stderr
    assert not (tmp_path / "b").exists()

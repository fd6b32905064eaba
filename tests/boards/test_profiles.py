"""Board profiles and site files: every shipped profile checks clean, every class of mistake
gives its line-numbered message, capacity is stated as `boards show` states it."""

import json
import subprocess
import sys

import pytest

from relayctl import boards, cli, paths
from relayctl.boards import schema
from relayctl.boards.capacity import estimate
from relayctl.profile import run_config

SHIPPED = ["linux-host", "esp32-generic", "esp32-s3", "esp32-c3", "pico-w", "rpi-4", "rpi-zero-2w",
           "openwrt", "gl-mt300n-v2"]


def relayctl(*argv, cwd=None):
    return subprocess.run([sys.executable, "-m", "relayctl.cli", *argv], capture_output=True, text=True,
                          cwd=cwd, timeout=60)


def problems(board, site=None):
    return [str(p) for p in boards.load(str(board), str(site) if site else None).in_order]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_checks_clean(name):
    assert (paths.BOARDS / f"{name}.toml").exists()
    assert problems(name) == []


def test_boards_check_all_exits_0():
    res = relayctl("boards", "check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count(": ok: ") == len(list(paths.BOARDS.glob("*.toml")))


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_channel_not_allowed_for_country(tmp_path):
    p = write(tmp_path, "foo.toml", 'extends = "esp32-generic"\n\n[wifi]\ncountry = "KZ"\nchannel = 14\n')
    assert problems(p) == [f'{p}:5: wifi.channel: 14 is not allowed for country "KZ" (1-13)']


def test_5ghz_channel_on_a_24ghz_radio(tmp_path):
    p = write(tmp_path, "foo.toml", 'extends = "esp32-generic"\n[wifi]\nchannel = 36\n')
    assert problems(p) == [f"{p}:3: wifi.channel: 36 is a 5 GHz channel; this board's radio has only 2.4 GHz (1-11)"]


def test_unknown_key_did_you_mean(tmp_path):
    p = write(tmp_path, "foo.toml", 'extends = "esp32-generic"\n[wifi]\nchanel = 6\n[relay]\nsocks_prot = 1\n[wfi]\nx = 1\n')
    assert problems(p) == [
        f'{p}:3: wifi.chanel: unknown key (did you mean "channel"?)',
        f'{p}:5: relay.socks_prot: unknown key (did you mean "socks_port"?)',
        f'{p}:6: wfi: unknown table (did you mean "wifi"?)',
    ]


def test_key_in_the_wrong_table_is_named(tmp_path):
    p = write(tmp_path, "foo.toml", 'extends = "esp32-generic"\n[wifi]\nsocks_port = 1080\n')
    assert problems(p) == [f'{p}:3: wifi.socks_port: unknown key (did you mean "relay.socks_port"?)']


def test_toml_syntax_error_names_the_line(tmp_path):
    p = write(tmp_path, "foo.toml", 'extends = "esp32-generic"\n\ndescription = my board\n')
    (msg,) = problems(p)
    assert msg.startswith(f"{p}:3: TOML syntax: Invalid value")
    assert "text needs quotes" in msg


def test_missing_extends_target(tmp_path):
    p = write(tmp_path, "foo.toml", '# a board\nextends = "esp32-generneric"\n')
    (msg, *_) = problems(p)
    assert msg == f'{p}:2: extends: no profile "esp32-generneric" to extend (did you mean "esp32-generic"?)'


def test_inheritance_loop(tmp_path):
    a = write(tmp_path, "a.toml", 'extends = "b"\n')
    write(tmp_path, "b.toml", '\nextends = "a"\n')
    msgs = problems(a)
    assert f"{tmp_path / 'b.toml'}:2: extends: inheritance loop: a -> b -> a" in msgs


def test_values_types_and_slips(tmp_path):
    p = write(tmp_path, "foo.toml", "\n".join([
        'extends = "esp32-generic"',
        "[relay]",
        'socks_port = "1080"',
        "http_port = 70000",
        "[capacity]",
        'listeners_use_sockets = "true"',
        "[flash]",
        "fs_size = 0x300000",
        "[chip]",
        'mpy_arch = "armv6m"',
    ]) + "\n")
    # Every problem in one pass: the cross-key checks whose values parsed speak beside the per-key errors.
    assert problems(p) == [
        f'{p}:3: relay.socks_port: expected a number, got text "1080" (remove the quotes)',
        f'{p}:4: relay.http_port: 70000 is out of range 1..65535',
        f'{p}:6: capacity.listeners_use_sockets: expected true or false, got "true" (write true or false without quotes)',
        f"{p}:8: flash.fs_size: the filesystem ends at 0x500000, past the end of the 4 MiB flash (0x400000)",
        f"{p}:10: chip.mpy_arch: esp32 runs xtensawin code, not armv6m",
    ]


def test_site_errors_and_cross_checks_in_one_build(tmp_path):
    """`relayctl build` names a bad value and a channel the country forbids in the same run."""
    site = write(tmp_path, "site.toml", '[wifi]\nssid = 12\ncountry = "KZ"\nchannel = 14\n'
                                        'security = "wpa2"\n[proxy]\nuser = "relay"\n')
    res = relayctl("build", "esp32-generic", "--site", str(site), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    for want in (f"{site}:2: wifi.ssid:", f'{site}:4: wifi.channel: 14 is not allowed for country "KZ"',
                 'wifi.passphrase: security is "wpa2" but no passphrase',
                 "proxy.password: set both proxy.user and proxy.password"):
        assert any(want in line for line in lines), (want, res.stderr)
    assert not (tmp_path / "out").exists()


def test_every_problem_at_once_and_exit_2(tmp_path):
    p = write(tmp_path, "foo.toml", 'extends = "esp32-generic"\n[wifi]\nchanel = 6\n[relay]\nhttp_port = 0\n'
                                    '[uplink]\nkinds = ["satellite"]\n')
    res = relayctl("boards", "check", str(p))
    assert res.returncode == 2
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith(str(p))]
    assert len(lines) == 3, res.stdout
    assert 'did you mean "channel"' in lines[0]


def test_missing_required_key(tmp_path):
    p = write(tmp_path, "bare.toml", 'description = "nothing else"\n')
    msgs = problems(p)
    assert f"{p}: runtime: missing; set it in bare.toml or a profile it extends (which Python runs the relay on the board)" in msgs


def test_site_key_in_a_profile_is_refused(tmp_path):
    p = write(tmp_path, "foo.toml", 'extends = "esp32-generic"\n[wifi]\nssid = "x"\n')
    assert problems(p) == [f"{p}:3: wifi.ssid: belongs in a site file (site.toml), not here"]


def test_site_values_checked_precisely(tmp_path):
    s = write(tmp_path, "site.toml", "\n".join([
        "[wifi]",
        'ssid = "' + "я" * 17 + '"',
        'security = "wpa2"',
        'passphrase = "short"',
        'country = "kz"',
        "[uplink]",
        'kind = "cellular"',
    ]) + "\n")
    assert problems("esp32-generic", s) == [
        f'{s}:2: wifi.ssid: an SSID is 1-32 bytes, "{"я" * 17}" is 34 bytes',
        f"{s}:4: wifi.passphrase: a WPA2 passphrase is 8-63 characters, this one has 5",
        f'{s}:5: wifi.country: expected a two-letter country code in capitals, got "kz" (write "KZ")',
        f'{s}:7: uplink.kind: esp32-generic cannot use "cellular"; it offers wifi-sta, upstream',  # same pass
    ]
    s.write_text('[wifi]\nsecurity = "wpa2"\ncountry = "US"\nchannel = 13\n[uplink]\nkind = "cellular"\n')
    got = problems("esp32-generic", s)
    assert f'{s}:4: wifi.channel: 13 is not allowed for country "US" (1-11)' in got
    assert f"{s}: wifi.passphrase: security is \"wpa2\" but no passphrase is set (8-63 characters)" in got
    assert f'{s}:6: uplink.kind: esp32-generic cannot use "cellular"; it offers wifi-sta, upstream' in got


def test_passphrase_must_be_printable_ascii(tmp_path):
    s = write(tmp_path, "site.toml", '[wifi]\nsecurity = "wpa2"\npassphrase = "пароль12345"\n')
    assert problems("esp32-generic", s) == [
        f"{s}:3: wifi.passphrase: a WPA2 passphrase is printable ASCII only; 'п' is not"]


def test_capacity_warning_when_site_asks_more(tmp_path):
    s = write(tmp_path, "site.toml", "[expect]\nphones = 10\n[wifi]\nmax_clients = 20\n")
    r = boards.load("esp32-generic", str(s))
    assert not r.errors
    assert [str(p) for p in r.warnings] == [
        f"{s}:2: expect.phones: warning: 10 phones at once is more than esp32-generic can carry: "
        "about 3 tunnels, about 1 phone running Telegram",
        f"{s}:4: wifi.max_clients: warning: 20 is more than esp32-generic can associate (about 8)",
    ]
    res = relayctl("boards", "check", "boards/esp32-generic.toml", "--site", str(s), cwd=paths.ROOT)
    assert res.returncode == 0 and "warning: 10 phones" in res.stdout


@pytest.mark.parametrize("name,sentence", [
    ("esp32-generic", "about 3 tunnels, about 1 phone running Telegram"),
    ("esp32-s3", "about 3 tunnels, about 1 phone running Telegram"),
    ("esp32-c3", "about 3 tunnels, about 1 phone running Telegram"),
    ("pico-w", "about 2 tunnels, about 1 phone running Telegram"),
    ("rpi-4", "about 2048 tunnels, about 8 phones running Telegram"),
    ("gl-mt300n-v2", "about 256 tunnels, about 32 phones running Telegram"),
])
def test_boards_show_states_capacity(name, sentence):
    res = relayctl("boards", "show", name)
    assert res.returncode == 0, res.stderr
    assert f"carries   {sentence}" in res.stdout
    assert estimate(boards.load(name)).sentence() == sentence


def test_esp32_capacity_comes_from_lwip_sockets():
    est = estimate(boards.load("esp32-generic"))
    assert (est.tunnels, est.listeners, est.binding) == (3, 4, "sockets")
    assert est.reasons[0] == "10 sockets - 4 listeners = 6, two per tunnel"


def test_boards_list_names_every_profile():
    res = relayctl("boards", "list")
    assert res.returncode == 0
    for name in SHIPPED:
        assert any(line.startswith(name + " ") for line in res.stdout.splitlines()), name


def test_boards_new_extends_base(tmp_path):
    target = tmp_path / "my-esp.toml"
    res = relayctl("boards", "new", str(target), "--from", "esp32-generic")
    assert res.returncode == 0, res.stderr
    text = target.read_text()
    assert 'extends = "esp32-generic"' in text and "# fs_offset = 0x200000" in text
    # It is a valid profile as written, and a tinkerer uncommenting a line keeps it valid.
    assert problems(target) == []
    target.write_text(text.replace("# [capacity]", "[capacity]").replace("# sockets = 10", "sockets = 16"))
    assert estimate(boards.load(str(target))).tunnels == 6
    assert relayctl("boards", "new", str(target), "--from", "esp32-generic").returncode == 1


def test_site_init_writes_a_valid_commented_example(tmp_path):
    res = relayctl("site", "init", str(tmp_path / "site.toml"))
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "site.toml").read_text()
    for word in ("ssid", "security", "passphrase", "country", "channel", "user", "password", "preset",
                 "languages", "kind"):
        assert word in text
    for board in ("esp32-generic", "rpi-4", "gl-mt300n-v2"):
        assert problems(board, tmp_path / "site.toml") == []
    assert relayctl("site", "init", str(tmp_path / "site.toml")).returncode == 1  # no silent overwrite


def test_readme_schema_table_is_the_schema():
    readme = (paths.BOARDS / "README.md").read_text()
    assert schema.markdown() in readme
    res = relayctl("boards", "schema")
    assert res.stdout == schema.markdown()


def test_run_config_keeps_linux_host_values():
    cfg = run_config("linux-host")
    assert cfg["socks"] == {"host": "127.0.0.1", "port": 1080}
    assert cfg["http"] == {"host": "127.0.0.1", "port": 8080}
    assert cfg["limits"]["tunnels"] == 4096 and cfg["limits"]["buffer"] == 262144
    assert cfg["limits"]["tunnels_per_client"] == 256 and cfg["limits"]["sessions"] == 8192
    assert "wifi" not in cfg and "portal" not in cfg
    json.dumps(cfg)


def test_cli_main_returns_2_on_a_broken_board(tmp_path, capsys):
    p = write(tmp_path, "foo.toml", 'extends = "nope"\n')
    assert cli.main(["build", str(p), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
    assert 'extends: no profile "nope"' in capsys.readouterr().err


def test_boards_list_columns_line_up():
    """Each column starts at the same place on every line, however long a capacity sentence is."""
    lines = relayctl("boards", "list").stdout.splitlines()
    starts = {line.index(boards.load(line.split()[0])["description"]) for line in lines}
    assert len(starts) == 1, lines
    runtimes = {line.index("cpython") if "  cpython" in line else line.index("micropython") for line in lines}
    assert len(runtimes) == 1, lines


@pytest.mark.parametrize("verb,line", [
    ("site", "    relayctl site init [FILE] [--force]"),
    ("mtproto", "  relayctl mtproto secret --tls DOMAIN"),
    ("uplink", "  relayctl uplink scan  --port /dev/ttyUSB2"),
])
def test_verb_help_keeps_its_usage_lines_apart(verb, line):
    text = relayctl(verb, "--help").stdout
    assert any(x.startswith(line) for x in text.splitlines()), text


def test_boards_show_states_public_relay_capacity_beside_the_radio():
    """A Linux board: what its radio holds, and what the public-relay load model says it carries."""
    res = relayctl("boards", "show", "rpi-4")
    assert res.returncode == 0, res.stderr
    assert "carries   about 2048 tunnels, about 8 phones running Telegram" in res.stdout
    assert "the radio associates about 8 phones" in res.stdout
    lines = res.stdout.splitlines()
    (i,) = [n for n, ln in enumerate(lines) if ln.startswith("  public ")]
    # 8192 sockets (LimitNOFILE) at two per connection and 5.6 connections per phone: 730
    assert lines[i] == ("  public    about 730 phones as a public MTProto relay (an estimate from bench/phones.py's "
                        "load), limited by sockets")
    assert lines[i + 1].strip().startswith("CPU: about 1182 (")  # 13 % of the reference core's 9091
    assert "13 % of it" in lines[i + 1]
    assert lines[i + 2].strip().startswith("memory: about 22667 (")
    assert lines[i + 3].strip().startswith("sockets: about 730 (8192 sockets")


def test_public_capacity_scales_with_core_speed(tmp_path):
    from relayctl.boards.capacity import phones_per_reference_core, public_estimate

    ref = round(phones_per_reference_core())
    p = write(tmp_path, "vps.toml", 'extends = "linux-host"\n[chip]\ncore_speed = 50\n'
                                    "[capacity]\nsockets = 150000\nram_kib = 4194304\n")
    pub = public_estimate(boards.load(str(p)))
    assert (pub.phones, pub.binding) == (round(ref * 50 / 100), "cpu")
    p.write_text(p.read_text().replace("core_speed = 50", "core_speed = 200"))
    pub = public_estimate(boards.load(str(p)))
    assert pub.by_cpu == 2 * ref and pub.binding == "sockets"  # twice as fast: the descriptors bind first
    assert pub.phones == int((150000 - 2) / (2 * 5.6))  # SOCKS and HTTP listen


def test_public_capacity_without_a_rated_core_says_so():
    pub = estimate_public("openwrt")
    assert pub.by_cpu is None and pub.binding == "sockets"
    assert pub.reasons[0].startswith("CPU: not rated (set chip.core_speed")


def estimate_public(name):
    from relayctl.boards.capacity import public_estimate

    return public_estimate(boards.load(name))


@pytest.mark.parametrize("name", ["esp32-generic", "pico-w"])
def test_micropython_boards_state_no_public_relay_figure(name):
    assert estimate_public(name) is None
    assert "public " not in relayctl("boards", "show", name).stdout


def test_core_speed_is_checked(tmp_path):
    p = write(tmp_path, "foo.toml", 'extends = "rpi-4"\n[chip]\ncore_speed = "fast"\n')
    assert problems(p) == [f"{p}:3: chip.core_speed: expected a whole number 0..10000, got \"fast\""]


def test_a_1gib_linux_box_gets_limits_for_10000_phones(tmp_path):
    """The memory estimate per CPython tunnel follows bench/phones.py (about 4 KiB measured, 8 KiB
    allowed): a VPS-like profile with 1 GiB and enough descriptors renders limits that let 10,000
    phones of 5.6 connections in, where 32 KiB per tunnel capped it at 16,384 tunnels (~2,900 phones)."""
    from relayctl.boards.render import config_json

    p = write(tmp_path, "vps.toml", 'extends = "linux-host"\n[capacity]\nram_kib = 1048576\nsockets = 131072\n'
                                    "max_tunnels = 100000\nsessions = 100000\n")
    r = boards.load(str(p))
    est = estimate(r)
    assert est.by_ram == 1048576 * 1024 // 2 // 8192 == 65536
    assert est.tunnels == min(est.by_sockets, 65536) >= 10000 * 5.6
    assert config_json(r)["limits"]["tunnels"] == est.tunnels

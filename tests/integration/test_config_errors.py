"""A config.json the relay cannot read stops the start with one line naming the file (issue 13 "Also")."""

import subprocess

import pytest

from tests.helpers.relayproc import relay_command


@pytest.mark.parametrize("rt", ["cpython", "micropython"])
@pytest.mark.parametrize("raw,why", [(b'{"socks": {"port": 1080}, "x": "\xff\xfe"}', "not UTF-8"),
                                     (b"\xef\xbb\xbf{]", "not valid JSON")])
def test_unreadable_config_exits_2_with_a_line_naming_the_file(rt, tmp_path, raw, why):
    path = tmp_path / "config.json"
    path.write_bytes(raw)
    argv, env = relay_command(rt, str(path), [])
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}: {why}"), r.stderr

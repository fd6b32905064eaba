"""A site with [mesh.relays] built without --relay (T8): refused in one line naming the relays, never a relay
with no mesh built without a word. `relayctl build` and `relayctl flash --site` share the build."""

from tests.host.test_wifi_apply import relayctl
from tests.mesh.test_mesh_render import SITE


def test_build_of_a_mesh_site_without_relay_is_refused_naming_the_relays(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    r = relayctl("build", "rpi-4", "--site", str(site), "--out", str(tmp_path / "b"), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "give --relay NAME" in r.stderr and "roof" in r.stderr and "stairs" in r.stderr
    assert not (tmp_path / "b").exists()


def test_flash_from_a_mesh_site_without_relay_is_refused_before_connecting(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    r = relayctl("flash", "esp32-generic", "--port", "socket://127.0.0.1:9", "--site", str(site), "--out",
                 str(tmp_path / "b"), "--no-stub", cwd=tmp_path)
    assert r.returncode == 2 and "give --relay NAME" in r.stderr, r.stdout + r.stderr


def test_flash_takes_relay_for_a_mesh_satellite(tmp_path):
    """The refusal's advice works: flash (and deploy) take --relay like build and install."""
    for verb in ("flash", "deploy"):
        r = relayctl(verb, "--help", cwd=tmp_path)
        assert "--relay NAME" in r.stdout, verb

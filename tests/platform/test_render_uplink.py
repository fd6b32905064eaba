"""host_tools' render passes the site's uplink choice into a MicroPython board's config.json,
and the device's own checker accepts it."""

from relayctl import boards
from relayctl.boards.render import check_config, config_json


def _cfg(tmp_path, board_text, site_text):
    b = tmp_path / "board.toml"
    b.write_text(board_text)
    s = tmp_path / "site.toml"
    s.write_text(site_text)
    r = boards.load(str(b), str(s))
    assert not r.errors, [str(p) for p in r.errors]
    cfg = config_json(r)
    assert check_config(cfg) == []
    return cfg


def test_ethernet_pins_from_the_profile_port(tmp_path):
    cfg = _cfg(tmp_path, 'extends = "esp32-generic"\n[uplink]\nkinds = ["ethernet", "upstream"]\n'
                         'ports = { ethernet = "lan8720 mdc=23 mdio=18 power=16 addr=1 clock=gpio0-in" }\n',
               '[uplink]\nkind = "ethernet"\n')
    assert cfg["uplink"] == {"kind": "ethernet", "lan_phy": "lan8720", "lan_mdc": 23, "lan_mdio": 18,
                             "lan_power": 16, "lan_addr": 1, "lan_clock": "gpio0-in"}


def test_cellular_site_choice_and_uart(tmp_path):
    cfg = _cfg(tmp_path, 'extends = "esp32-generic"\n[uplink]\nkinds = ["cellular"]\n'
                         'ports = { cellular = "uart1 tx=27 rx=26 baud=115200" }\n',
               '[uplink]\nkind = "cellular"\napn = "internet"\npin = "1234"\nroaming = true\noperator = "25001"\n')
    assert cfg["uplink"] == {"kind": "cellular", "uart": 1, "tx": 27, "rx": 26, "baud": 115200, "apn": "internet",
                             "pin": "1234", "user": "", "password": "", "roaming": True, "operator": "25001",
                             "rat": "auto"}


def test_linux_boards_and_unchosen_uplinks_add_nothing():
    assert "uplink" not in config_json(boards.load("rpi-4"))
    assert "uplink" not in config_json(boards.load("esp32-generic"))  # wifi-sta with no network named yet


def test_a_linux_board_names_its_uplink_for_the_fleet_and_where_the_modem_reading_is(tmp_path):
    """NetworkManager or OpenWrt brings a Pi's LTE stick up, not the relay: config.json gets only the kind
    (the fleet report names it) and the watcher's file (its signal), never the SIM's PIN or APN."""
    s = tmp_path / "site.toml"
    s.write_text('[uplink]\nkind = "cellular"\napn = "internet"\npin = "1234"\n')
    cfg = config_json(boards.load("rpi-4", str(s)))
    assert cfg["uplink"] == {"kind": "cellular", "modem_status": "/run/relay-modem.json"}
    assert not [p for p in check_config(cfg) if "uplink" in p]  # the device's own checker takes the keys
    s.write_text('[uplink]\nkind = "ethernet"\n')
    assert config_json(boards.load("openwrt", str(s)))["uplink"] == {"kind": "ethernet"}

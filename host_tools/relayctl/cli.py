"""relayctl: one table maps each verb to the module that implements it.

Each verb module offers add_arguments(parser) and run(args) -> exit status.
Expected failures raise CliError; anything else is a bug and keeps its traceback.
"""

import argparse
import importlib
import sys

from relayctl import out
from relayctl.errors import CliError

# verb -> (module, one-line help). Modules load only when their verb runs.
VERBS = {
    "run": ("relayctl.cmd_run", "run the relay on this computer"),
    "status": ("relayctl.cmd_status", "a live view of a running relay: link, people, data left"),
    "fleet": ("relayctl.cmd_fleet", "many relays at a glance over MQTT; the broker's config; signed commands"),
    "mtproto": ("relayctl.cmd_mtproto", "make MTProto proxy secrets and their tg://proxy links; rotate them"),
    "public": ("relayctl.cmd_public", "a public relay: check its mask site, DNS and clock; print its link cards"),
    "boards": ("relayctl.cmd_boards", "list, show, check and start board profiles"),
    "site": ("relayctl.cmd_site", "write and check a site file (site.toml)"),
    "build": ("relayctl.cmd_build", "build a board's image or bundle from its profile and a site file"),
    "flash": ("relayctl.cmd_flash", "flash ESP32 boards: verified write, per-board values, inventory"),
    "deploy": ("relayctl.cmd_deploy", "update the relay files and config on a running MicroPython board"),
    "install": ("relayctl.cmd_install", "install on a Raspberry Pi or OpenWrt router over SSH, or into a rootfs"),
    "cards": ("relayctl.cmd_cards", "print one card per flashed board: Wi-Fi and Telegram QR codes"),
    "uplink": ("relayctl.cmd_uplink", "set up the uplink: LTE modem probe/setup/scan/watch, render configs"),
    "wifi": ("relayctl.cmd_wifi", "render the access point's configs for Linux boards and OpenWrt"),
    "engine": ("relayctl.cmd_engine", "uplink engines through a censor: the far end's configs, the site's engines"),
    "mesh": ("relayctl.cmd_mesh", "relays sharing uplinks: render a relay's babeld and link configs, show a mesh"),
}


def build_parser(verb=None):
    """Every verb is listed; only the chosen verb's module is imported (a broken verb breaks only itself)."""
    p = argparse.ArgumentParser(prog="relayctl", description="Build, flash, set up and run Relay.")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name, (modname, help_text) in VERBS.items():
        if name != verb:
            sub.add_parser(name, help=help_text, add_help=False)
            continue
        mod = importlib.import_module(modname)
        # Raw: the modules' docstrings are laid out by hand (one usage line each); argparse would run them together.
        sp = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip(),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(sp)
        sp.set_defaults(_run=mod.run)
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    verb = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(verb if verb in VERBS else None).parse_args(argv)
    try:
        status = args._run(args)
    except CliError as e:
        out.error(str(e))
        return e.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `relayctl boards show X | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())

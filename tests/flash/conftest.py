"""Fixtures for the flashing tests (see flashkit.py)."""

from tests.flash.flashkit import esp32_build, micropython_esp32  # noqa: F401

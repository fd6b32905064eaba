"""Relay: a proxy core that runs unchanged on MicroPython and CPython."""

VERSION = "0.1.0"

"""Flashing boards before shipping: esptool sessions, per-board values, the
boot check and the inventory. `relayctl flash` (cmd_flash.py) drives these.

Nothing here prints: progress and results go back to the caller, which
reports them through relayctl.out.
"""

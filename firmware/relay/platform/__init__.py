"""The board's own network hardware, on MicroPython boards: board.py brings up the access point and the
uplink (wifi.py, lan.py, cellular.py, each kept up by link.py's keeper); own.py keeps the device's own
addresses current for the guard (everywhere). The only code that touches MicroPython's `network` and
`machine`. This file imports nothing, so a driver importing its siblings makes no cycle.
"""

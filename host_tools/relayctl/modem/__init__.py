"""Cellular modems over AT commands (host side, CPython, pyserial).

transport.py  bytes <-> lines over pyserial, per-character and overall timeouts
at.py         one AT command at a time: echo, URCs, final result codes, +CME/+CMS sentences
families.py   the per-family differences (Quectel EC25/EG25, SIMCom SIM7600, Huawei AT mode)
signal.py     +CSQ/+CESQ/registration numbers into dBm and words
modem.py      identify, SIM and PIN, registration, operator, signal, clock, scan, settings
session.py    the probe and setup conversations (with restart recovery)
render.py     data-connection configs for Linux boards (NetworkManager, OpenWrt, networkd, wpa_supplicant)
"""

# A board's `time` module, for the MicroPython unix port (MICROPYPATH puts this file first).
#
# The ESP32 and RP2 ports count time.time() from 2000-01-01, not 1970 (time.gmtime(0) says 2000), and
# their RTC starts at 2000-01-01 00:00:00 at every power-up until something sets it (ntptime, a modem's
# network time). BOARD_CLOCK in the environment says what the RTC reads when the process starts:
#   "unset"          2000-01-01 00:00:00, as after a reboot with nobody to set the clock
#   <Unix seconds>   the clock was set to that time
# Everything else (ticks, sleeps) is the unix port's own `time` (its built-in is `utime`).
import os

from utime import *  # noqa: F401,F403
import utime as _u

_EPOCH_2000 = 946684800
_setting = os.getenv("BOARD_CLOCK") or "unset"
# RTC reading (seconds since 2000) = the unix port's clock + _offset
_offset = (0 if _setting == "unset" else int(_setting) - _EPOCH_2000) - int(_u.time())


def time():
    return int(_u.time()) + _offset


def gmtime(secs=None):
    return _u.gmtime((time() if secs is None else secs) + _EPOCH_2000)


localtime = gmtime


def mktime(t):
    return _u.mktime(t) - _EPOCH_2000

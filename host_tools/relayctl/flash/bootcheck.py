"""Read a board's serial console after reset until the relay says it is ready.

Input: an open pyserial port (the board's console at 115200 baud) and the
config hash the build expects. Output: (version, config hash) from the line
`relay ready version=V config=HASH ...`, or a CliError naming what the boot
log shows instead (still in download mode, empty flash, corrupted
filesystem, a Python traceback, a reset loop) and what to do.
Every read has a short timeout and the whole wait has an overall timeout.
"""

import re
import time

from relayctl.errors import CliError

READY = re.compile(rb"relay ready version=(\S+) config=([0-9a-f]{12}|default)")
# What a failed boot prints, and what to tell the person at the table.
SIGNS = (
    (b"waiting for download", "the board is still in download mode (BOOT held or IO0 strapped low); "
                              "release BOOT and press EN/RST"),
    (b"invalid header: 0xffffffff", "the flash is empty where the bootloader should be; "
                                    "the image went to the wrong offset; flash again"),
    (b"filesystem appears to be corrupted", "MicroPython cannot mount the filesystem: the image was built "
                                            "for another flash size or partition table; build for this board's "
                                            "profile and flash again"),
    (b"Traceback (most recent call last)", "the relay crashed at boot; the lines above show why "
                                           "(often config.json or a MicroPython too old for the firmware)"),
    (b"Brownout detector was triggered", "the board browns out: the USB port or hub gives too little power; "
                                         "use a powered hub or a shorter cable"),
)
TAIL = 600  # bytes of boot log quoted in an error


def wait_ready(ser, port, expect_hash=None, timeout=30.0, read_timeout=0.2, checking=False):
    """Returns (version, config_hash). Raises CliError on timeout, a bad sign, or a hash mismatch.
    checking: this already is `flash --check-only`, so the advice does not send the person back to it."""
    ser.timeout = read_timeout
    log = bytearray()
    deadline = time.monotonic() + timeout
    resets = 0
    while time.monotonic() < deadline:
        chunk = ser.read(256)
        if not chunk:
            continue
        log += chunk
        m = READY.search(log)
        if m:
            version, got = m.group(1).decode(), m.group(2).decode()
            if expect_hash and got != expect_hash[:12]:
                raise CliError(f"{port}: the relay booted with config {got}, but this build's config is "
                               f"{expect_hash[:12]}: the board runs an older or another build (the write did "
                               "not take, or the filesystem was not replaced); flash it again")
            return version, got
        resets = log.count(b"rst:0x")
        if resets >= 3:
            raise CliError(f"{port}: the board keeps resetting ({resets} resets in the boot log): "
                           f"{_sign(log) or 'a crash or brownout loop'}; boot log ends with:\n{_tail(log)}")
        if b"Traceback (most recent call last)" in log and b">>>" in log[log.rfind(b"Traceback"):]:
            break  # main.py ended in a traceback and MicroPython sits at the prompt
    hint = _sign(log)
    if not log:
        what = ("press EN/RST while this waits, or give it longer with --boot-timeout" if checking else
                "check with `relayctl flash ... --check-only`, or skip with --no-boot-check")
        raise CliError(f"{port}: no output from the board within {timeout:.0f} s after reset: the board did "
                       "not reset (press EN/RST), the port is the wrong one, or the cable carries power only; "
                       + what)
    raise CliError(f"{port}: the relay did not report ready within {timeout:.0f} s: "
                   f"{hint or 'it may still be starting (slow uplink?) or crashed'}; boot log ends with:\n"
                   f"{_tail(log)}")


def _sign(log):
    for needle, text in SIGNS:
        if needle in log:
            return text
    return None


def _tail(log):
    return bytes(log[-TAIL:]).decode("utf-8", "replace").replace("\r", "")

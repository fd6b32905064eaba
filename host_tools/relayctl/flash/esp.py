"""One esptool session with one ESP32-family board, through esptool's Python API.

Input: a port (a device path, or any pyserial URL such as socket://HOST:PORT).
Output: what the chip says it is (chip, MAC, flash size), a verified write, a
reset. esptool's own output is captured per thread so that boards flashed in
parallel do not interleave; its progress bar becomes a callback.
Failures come back as CliError with the likely cause and what to do.
"""

import struct
import threading

import serial
from esptool.cmds import detect_chip, detect_flash_size, reset_chip, run_stub, write_flash
from esptool.logger import TemplateLogger, log
from esptool.util import FatalError, NotImplementedInROMError, UnsupportedCommandError

from relayctl.errors import CliError

# esptool CHIP_NAME -> the profile's chip name
CHIP_KEYS = {"ESP32": "esp32", "ESP32-S2": "esp32s2", "ESP32-S3": "esp32s3", "ESP32-C3": "esp32c3",
             "ESP32-C6": "esp32c6", "ESP32-H2": "esp32h2", "ESP8266": "esp8266"}

_local = threading.local()


class _Router(TemplateLogger):
    """esptool's logger is one global; route each thread's lines to its own board."""

    def _sink(self):
        return getattr(_local, "sink", None)

    def print(self, *args, **kwargs):
        s = self._sink()
        if s is not None:
            s.lines.append(" ".join(str(a) for a in args))

    def note(self, message):
        self.print("note: " + str(message))

    def warning(self, message):
        self.print("warning: " + str(message))

    def error(self, message):
        self.print("error: " + str(message))

    def stage(self, finish=False):
        pass

    def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
        s = self._sink()
        if s is not None and s.on_progress:
            s.on_progress(cur_iter, total_iters)

    def set_verbosity(self, verbosity):
        pass


_router = _Router()
log.set_logger(_router)  # once: the installed adapter has no set_logger of its own


class Session:
    """A connected board. Use as a context manager; the port closes on exit."""

    def __init__(self, port, *, no_stub=False, baud=460800, connect_attempts=3, on_progress=None):
        self.port = port
        self.lines = []
        self.on_progress = on_progress
        self.no_stub = no_stub
        self.baud = baud
        self.connect_attempts = connect_attempts
        self.esp = None

    def __enter__(self):
        _local.sink = self
        try:
            self.esp = detect_chip(self.port, connect_mode=self._connect_mode(),
                                   connect_attempts=self.connect_attempts)
        except Exception as e:
            raise connect_error(self.port, e, self.lines)
        if not self.no_stub:
            try:
                self.esp = run_stub(self.esp)
            except Exception as e:
                self.close()
                raise CliError(f"{self.port}: cannot start esptool's flasher stub ({_short(e)}): some boards, "
                               "USB-serial bridges and simulators only talk to the ROM loader; "
                               "retry with --no-stub (slower but works everywhere)")
        if self.baud and self.baud != 115200 and not self.port.startswith("socket://"):
            try:
                self.esp.change_baud(self.baud)
            except Exception as e:
                self.close()
                raise CliError(f"{self.port}: cannot switch to {self.baud} baud ({_short(e)}): a long or thin "
                               "USB cable or a hub that drops data; retry with --baud 115200 or a shorter cable")
        return self

    def _connect_mode(self):
        return "no-reset" if self.port.startswith(("socket://", "rfc2217://")) else "default-reset"

    def __exit__(self, *exc):
        self.close()
        _local.sink = None

    def close(self):
        if self.esp is not None:
            try:
                self.esp._port.close()
            except Exception:
                pass

    def identity(self):
        """(chip key e.g. 'esp32', description, MAC bytes, flash size e.g. '4MB' or None)."""
        esp = self.esp
        try:
            desc = esp.get_chip_description()
            mac = bytes(esp.read_mac("BASE_MAC"))
            size = detect_flash_size(esp)
        except (FatalError, NotImplementedInROMError, UnsupportedCommandError, serial.SerialException, OSError) as e:
            raise link_error(self.port, e, "reading the chip's identity")
        return CHIP_KEYS.get(esp.CHIP_NAME, esp.CHIP_NAME.lower()), desc, mac, size

    def write(self, offset, data, force=False):
        """Write and verify (esptool checks the flash MD5 against the data after writing)."""
        try:
            write_flash(self.esp, [(offset, data)], flash_freq="keep", flash_mode="keep", flash_size="keep",
                        compress=True, force=force)
        except FatalError as e:
            text = str(e)
            if "MD5" in text or "does not match" in text:
                raise CliError(f"{self.port}: verification failed: the flash does not hold what was sent "
                               f"({text.strip()}); a failing flash chip, bad power from the USB hub or a "
                               "loose cable; flash this board again, then try another cable/port; "
                               "if it fails twice set the board aside")
            if "will not fit" in text:
                raise CliError(f"{self.port}: the image does not fit this board's flash ({text.strip()}): "
                               "the board has less flash than the profile says; pick the right board profile")
            if "Use --force" in text or "chip" in text.lower() and "image" in text.lower():
                raise CliError(f"{self.port}: esptool refused the image: {text.strip()}; the firmware was built "
                               "for another chip; build with the MicroPython firmware for this chip")
            raise link_error(self.port, e, "writing")
        except (serial.SerialException, OSError, struct.error) as e:
            raise link_error(self.port, e, "writing")

    def reset(self):
        try:
            reset_chip(self.esp, "hard-reset")
        except Exception:
            pass  # a socket or a board without auto-reset: the user presses EN/RST


def _short(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def connect_error(port, e, lines):
    text = str(e)
    low = text.lower()
    if isinstance(e, (serial.SerialException, OSError)) or "could not open port" in low:
        if "permission denied" in low or "errno 13" in low:
            return CliError(f"cannot open {port}: permission denied; add yourself to the serial group "
                            "(`sudo usermod -aG dialout $USER`, on Arch/Fedora `uucp`), log out and back in")
        if "no such file" in low or "errno 2" in low:
            return CliError(f"cannot open {port}: no such port; the board is not plugged in, the cable is "
                            "charge-only, or the USB driver (CP210x, CH340) is missing; check `ls /dev/ttyUSB* "
                            "/dev/ttyACM*` and try a data cable")
        if "connection refused" in low or "errno 111" in low:
            return CliError(f"cannot open {port}: connection refused; nothing listens at that address; "
                            "start the serial bridge or simulator first")
        if "busy" in low or "errno 16" in low or "exclusively lock" in low or "resource temporarily" in low:
            return CliError(f"cannot open {port}: port busy; another program holds it (a serial monitor, "
                            "Thonny, screen, ModemManager, another relayctl); close it and retry")
        return CliError(f"cannot open {port}: {_short(e)}; check the cable and that no other program uses the port")
    if "failed to connect" in low or "timed out" in low or "no serial data" in low or "wrong boot mode" in low:
        return CliError(f"{port}: the board does not answer esptool's SYNC: it is not in download mode; "
                        "hold BOOT (IO0), press and release EN/RST, release BOOT, then retry; "
                        "if it still fails, try another data cable or --baud 115200")
    if "autodetect" in low or "unexpected chip" in low:
        return CliError(f"{port}: unknown chip ({_short(e)}): not an ESP32-family board, or esptool is too old; "
                        "check the board and `pip install -U esptool`")
    return CliError(f"{port}: cannot connect: {_short(e)}; hold BOOT while pressing EN/RST and retry")


def link_error(port, e, doing):
    return CliError(f"{port}: the link to the board broke while {doing} ({_short(e)}): the USB cable moved, "
                    "the hub lost power or the board reset; nothing is recorded for this board; "
                    "replug it and flash it again (the write starts over)")

"""The byte pipe under the AT engine: open a serial port, write bytes, read one line.

Input: a port name or pyserial URL (/dev/ttyUSB2, /dev/pts/7, socket://127.0.0.1:5000).
Output: lines of text without their line ends.
Every read has two clocks: a per-character timeout (a line that stalls half-way is
handed over as it is, e.g. the "> " prompt) and an overall deadline (LineTimeout).
It never interprets AT syntax; that is at.py's job.
"""

import time

import serial

from relayctl.errors import CliError

CHAR_TIMEOUT = 0.5  # s without a byte before a half line counts as complete
MAX_LINE = 4096  # bytes; a COPS=? answer with 20 operators is ~1.5 KB


class LineTimeout(Exception):
    """No complete line before the overall deadline."""


class PortGone(Exception):
    """The port vanished (USB modems re-enumerate when they reset)."""


class Transport:
    """The small interface the engine needs; SerialTransport implements it over pyserial."""

    def write(self, data: bytes):
        raise NotImplementedError

    def read_line(self, deadline: float, char_timeout: float = CHAR_TIMEOUT) -> str:
        raise NotImplementedError

    def drain(self):
        raise NotImplementedError

    def close(self):
        pass


class SerialTransport(Transport):
    def __init__(self, port, baudrate=115200):
        self.port = port
        self.baudrate = baudrate
        self._buf = bytearray()
        self._ser = None
        self.open()

    def open(self):
        try:
            self._ser = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0.05,
                                              write_timeout=2, exclusive=True)
        except serial.SerialException as e:
            text = str(e)
            if "busy" in text.lower() or "lock" in text.lower():
                cause = "port busy; close other serial monitors (minicom, screen, ModemManager: `systemctl stop ModemManager`)"
            elif "No such file" in text or "could not open" in text:
                cause = "no such port; check `ls /dev/ttyUSB* /dev/ttyACM*` and that the modem is plugged in"
            elif "Permission" in text:
                cause = "permission denied; add yourself to the dialout group or run with sudo"
            else:
                cause = text
            raise CliError(f"cannot open {self.port}: {cause}", 2)
        except ValueError as e:
            raise CliError(f"cannot open {self.port}: {e}", 2)

    def reopen(self, wait=30.0):
        """After a reset the port may disappear for seconds; try until `wait` runs out."""
        self.close()
        end = time.monotonic() + wait
        while True:
            try:
                self.open()
                return
            except CliError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.5)

    def write(self, data):
        try:
            self._ser.write(data)
            self._ser.flush()
        except (serial.SerialException, OSError) as e:
            raise PortGone(str(e))

    def _read_some(self):
        try:
            return self._ser.read(max(1, self._ser.in_waiting))
        except (serial.SerialException, OSError) as e:
            raise PortGone(str(e))

    def read_line(self, deadline, char_timeout=CHAR_TIMEOUT):
        last_byte = time.monotonic()
        while True:
            line = self._take_line()
            if line is not None:
                return line
            now = time.monotonic()
            if self._buf and now - last_byte > char_timeout:
                text = self._buf.decode("utf-8", "replace")
                self._buf.clear()
                return text  # a stalled half line: a prompt, or a modem that lost the rest
            if now > deadline:
                raise LineTimeout()
            chunk = self._read_some()
            if chunk:
                last_byte = time.monotonic()
                self._buf += chunk
                if len(self._buf) > MAX_LINE:
                    text = self._buf.decode("utf-8", "replace")
                    self._buf.clear()
                    return text

    def _take_line(self):
        # Lines end in \r\n, but echo ends in \r alone and some sticks send bare \n.
        for i, b in enumerate(self._buf):
            if b in (10, 13):
                text = self._buf[:i].decode("utf-8", "replace")
                j = i + 1
                if b == 13 and j < len(self._buf) and self._buf[j] == 10:
                    j += 1
                del self._buf[:j]
                return text
        return None

    def drain(self):
        """Throw away whatever is waiting (boot banners, half answers)."""
        self._buf.clear()
        try:
            self._ser.reset_input_buffer()
        except (serial.SerialException, OSError):
            pass

    def close(self):
        if self._ser is not None:
            try:
                self._ser.close()
            except (serial.SerialException, OSError):
                pass
            self._ser = None

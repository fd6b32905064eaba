"""The far side of the stand-in machine.UART: tests/sim/modem.py's ModemSim on a loopback TCP port.

ModemSim answers the AT commands (families, PIN, roaming, registration) exactly as in the
uplink tests; this adds what a board's modem does after the AT part: ATD*99# answers CONNECT
and switches to data mode, where PPP frames (0x7E-delimited) get a frame back, "+++" returns
to command mode, and drop_carrier() hangs up the way a lost cell does ("NO CARRIER").
"""

import os
import select
import socket
import threading

from tests.sim.modem import ModemSim, PtyModem


class PPPModemSim(ModemSim):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.data_mode = False
        self.dials = 0

    def handle(self, line):
        up = line.upper()
        if up.startswith("ATD*99") or up.startswith("AT+CGDATA"):
            self.commands.append(line)
            if self.reg_stat() not in (1, 5):
                return ["NO CARRIER"]
            self.dials += 1
            self.data_mode = True
            return ["CONNECT 150000000"]
        if up in ("ATH", "ATH0"):
            self.commands.append(line)
            return ["OK"]
        return super().handle(line)


class TcpModem(PtyModem):
    """PtyModem's answering (echo, framing, resets, URCs) over one TCP connection at a time."""

    def __init__(self, sim):
        self.sim = sim
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.port = self.lsock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.master = self.slave = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.transcript = []
        self.frames = 0

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.lsock.close()

    def drop_carrier(self):
        self.sim.data_mode = False
        self._send(b"\r\nNO CARRIER\r\n")

    def _serve(self):
        self.lsock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                continue
            self.conn = conn
            self.master = conn.fileno()
            try:
                self._connection()
            finally:
                conn.close()

    def _connection(self):
        line = bytearray()
        data_buf = b""
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            data = os.read(self.master, 4096)
            if not data:
                return
            self.transcript.append((">", data))
            if self.sim.data_mode:
                data_buf += data
                if b"+++" in data_buf:
                    self.sim.data_mode = False
                    data_buf = b""
                    self._send(b"\r\nOK\r\n")
                elif data_buf.count(b"\x7e") >= 2:
                    self.frames += 1
                    data_buf = b""
                    self._send(b"\x7e\xff\x7d\x23\xc0\x21\x7d\x22\x7d\x21\x7d\x20\x7d\x24\x7e")  # Configure-Ack
                continue
            for b in data:
                if self.sim.echo:
                    self._send(bytes([b]))
                if b == 13:
                    text = line.decode(errors="replace").strip()
                    line.clear()
                    if text:
                        self._answer(text)
                elif b != 10:
                    line.append(b)

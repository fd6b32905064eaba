# Stand-in for MicroPython's machine.Pin and machine.UART (docs/library/machine.UART.rst),
# for the unix port, which has neither. The UART is a TCP connection to a modem simulator
# on 127.0.0.1 (tests/platform/modem_link.py); its address comes from NETSTUB_UART<id>.
import os
import select
import socket

CALLS = []


class Pin:
    IN = 1
    OUT = 3

    def __init__(self, id, mode=-1):
        if type(id) is not int or not 0 <= id <= 48:
            raise ValueError("invalid pin")
        self.id = id
        self.mode = mode

    def __repr__(self):
        return "Pin(%d)" % self.id


class UART:
    IRQ_RXIDLE = 4096

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, tx=None, rx=None, rxbuf=256, timeout=0):
        for p in (tx, rx):
            if p is not None and not isinstance(p, (Pin, int)):
                raise TypeError("tx/rx: expected a Pin")
        CALLS.append(["UART", id, baudrate, tx.id if isinstance(tx, Pin) else tx, rx.id if isinstance(rx, Pin) else rx])
        addr = os.getenv("NETSTUB_UART%d" % id)
        if not addr:
            raise ValueError("UART(%d) doesn't exist" % id)
        host, port = addr.split(":")
        self.s = socket.socket()
        self.s.connect(socket.getaddrinfo(host, int(port))[0][-1])
        self.poller = select.poll()
        self.poller.register(self.s, select.POLLIN)
        self.pending = b""
        self.handler = None

    def _fill(self):
        while self.poller.poll(0):
            data = self.s.recv(4096)
            if not data:
                break
            self.pending += data

    def any(self):
        self._fill()
        return len(self.pending)

    def read(self, n=-1):
        self._fill()
        if not self.pending:
            return None
        if n < 0:
            n = len(self.pending)
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def write(self, data):
        self.s.send(bytes(data))
        return len(data)

    def irq(self, handler=None, trigger=0, hard=False):
        if handler is not None and trigger != self.IRQ_RXIDLE:
            raise ValueError("trigger")
        self.handler = handler
        CALLS.append(["UART.irq", handler is not None, trigger])

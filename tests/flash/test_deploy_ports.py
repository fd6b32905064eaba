"""`relayctl deploy` against ports that do not behave: a board in a reset loop (it prints the ESP32 ROM's boot
lines every 0.3 s and never gives a REPL) and a USB port that disappears while deploy waits for the REPL.
Each gets one line within a bounded time, never a hang or a traceback.

The boards are ptys: the far end writes what an ESP32 in a brownout loop writes, or closes (unplugged)."""

import os
import threading
import time
import tty

from tests.flash.flashkit import relayctl

# What an ESP32 prints at each reset (its ROM, then a brownout before MicroPython starts).
BOOT = (b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
        b"configsip: 0, SPIWP:0xee\r\nclk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00\r\n"
        b"mode:DIO, clock div:2\r\nload:0x3fff0030,len:4540\r\nload:0x40078000,len:12788\r\nentry 0x4008667c\r\n"
        b"\r\nBrownout detector was triggered\r\n\r\n")


class PtyPort:
    """A pty whose far end runs `far(master, stop)` in a thread."""

    def __init__(self, far):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=far, args=(self, ), daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def reset_loop(port):
    while not port.stop.wait(0.3):
        try:
            os.write(port.master, BOOT)  # whatever the host sends (Ctrl-C, Ctrl-A) changes nothing
        except OSError:
            return


def unplugged_after(seconds):
    def far(port):
        if not port.stop.wait(seconds):
            os.close(port.master)  # the USB serial device goes away
            os.close(port.slave)
            port.master = port.slave = -1
    return far


def test_a_board_in_a_reset_loop_gets_one_line_in_bounded_time(esp32_build):
    port = PtyPort(reset_loop)
    try:
        t0 = time.monotonic()
        r = relayctl("deploy", "esp32-generic", "--port", port.path, "--image", str(esp32_build), timeout=60)
        took = time.monotonic() - t0
    finally:
        port.close()
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "keeps resetting" in r.stderr and "powered hub" in r.stderr and "nothing was sent" in r.stderr
    assert took < 40, took


def test_a_port_that_goes_away_before_the_repl_answers_gets_one_line(esp32_build):
    port = PtyPort(unplugged_after(2))
    try:
        r = relayctl("deploy", "esp32-generic", "--port", port.path, "--image", str(esp32_build), timeout=60)
    finally:
        port.close()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    assert "went away" in r.stderr and "run deploy again" in r.stderr

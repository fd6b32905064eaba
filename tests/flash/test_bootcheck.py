"""The boot-check reader against a serial link replaying a board's boot log
(socket:// and a pty), as the relay prints it on a real board's console."""

import os
import socket
import threading
import time
import tty

import pytest
import serial

from relayctl.errors import CliError
from relayctl.flash.bootcheck import wait_ready

HASH = "5246d49ab95f60b8dd9569a59727e2ed07147e94192386a55c30e1d7ea5eec58"
ROM = (b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
       b"configsip: 0, SPIWP:0xee\r\nmode:DIO, clock div:2\r\nload:0x3fff0030,len:4540\r\nentry 0x40080638\r\n"
       b"I (29) boot: ESP-IDF v4.2 2nd stage bootloader\r\n")
MP = b"MicroPython v1.22.2 on 2024-02-22; Generic ESP32 module with ESP32\r\n"


def ready(h):
    return b"relay ready version=0.1.0 config=" + h.encode() + b" runtime=micropython socks=0.0.0.0:1080\r\n"


def serve_socket(log):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def run():
        conn, _ = srv.accept()
        with conn:
            try:
                for k in range(0, len(log), 37):  # arrives in pieces, as from a UART
                    conn.sendall(log[k:k + 37])
                    time.sleep(0.002)
                conn.settimeout(5)
                conn.recv(1)  # hold the link open until the reader closes it
            except OSError:
                pass  # the reader had what it needed and hung up
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return "socket://127.0.0.1:%d" % srv.getsockname()[1]


def check(log, expect=HASH, timeout=5):
    url = serve_socket(log)
    ser = serial.serial_for_url(url)
    try:
        return wait_ready(ser, url, expect, timeout=timeout)
    finally:
        ser.close()


def test_ready_line_with_the_right_hash():
    assert check(ROM + MP + ready(HASH[:12])) == ("0.1.0", HASH[:12])


def test_ready_line_with_another_config_is_caught():
    with pytest.raises(CliError, match="booted with config 000000000000, but this build's config is 5246d49ab95f"):
        check(ROM + MP + ready("000000000000"))


def test_corrupted_filesystem_is_named():
    log = ROM + MP + b"The filesystem appears to be corrupted. If you had important data there, you\r\n"
    with pytest.raises(CliError, match="MicroPython cannot mount the filesystem"):
        check(log, timeout=1.5)


def test_traceback_is_reported_with_the_log():
    log = ROM + MP + (b"Traceback (most recent call last):\r\n  File \"main.py\", line 5, in <module>\r\n"
                      b"ImportError: no module named 'relay.server'\r\nMicroPython v1.22.2\r\n>>> ")
    with pytest.raises(CliError, match="(?s)the relay crashed at boot.*no module named 'relay.server'"):
        check(log, timeout=3)


def test_reset_loop_is_named():
    log = (b"Brownout detector was triggered\r\n\r\n" + ROM) * 3
    with pytest.raises(CliError, match="keeps resetting.*brown"):
        check(log)


def test_silence_says_what_to_do():
    with pytest.raises(CliError, match="no output from the board.*press EN/RST"):
        check(b"", timeout=0.6)


def test_ready_over_a_pty():
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    ser = serial.Serial(path, 115200)
    try:
        os.write(master, ROM + MP + ready(HASH[:12]))
        assert wait_ready(ser, path, HASH, timeout=5) == ("0.1.0", HASH[:12])
    finally:
        ser.close()
        os.close(master)
        os.close(slave)

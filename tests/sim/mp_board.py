"""A simulated MicroPython board on a pty: the real MicroPython unix port with a
littlefs image (a board's filesystem) mounted at /flash as its working directory.

  mpremote / relayctl deploy  <->  pty B (.path)  <->  bridge  <->  pty A  <->  micropython -i devboot.py

What a board does and the unix port does not, the bridge does:
- Ctrl-C (0x03) from the host interrupts a running program (a board's UART
  does this; a raw pty does not raise SIGINT), so the bridge sends SIGINT.
- A soft reset (Ctrl-D) ends the unix process; the bridge prints
  "MPY: soft reboot" and starts it again: from the friendly REPL the new
  process runs main.py from the image, from the raw REPL it goes back into
  the raw REPL without main.py, as a board does.
The process runs in its own network namespace (unshare -n), so the relay
started by main.py can listen on its configured ports without touching
the host's network.
"""

import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import tty
from pathlib import Path

DEVBOOT = r'''
import os, sys, vfs

sys.path.insert(0, SIM)
from fileblockdev import FileBlockDev

vfs.mount(FileBlockDev(IMAGE), "/flash")
os.chdir("/flash")
sys.path[:] = ["", "/flash", ".frozen"]
if RUN_MAIN:
    try:
        exec(open("main.py").read(), {"__name__": "__main__"})
    except (KeyboardInterrupt, SystemExit):
        pass
'''


SIM = str(Path(__file__).resolve().parent)  # fileblockdev.py


def netns_available():
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-n", "true"], capture_output=True).returncode == 0


class MPBoard:
    def __init__(self, image, micropython, run_main_first=False):
        self.image = str(image)
        self.micropython = micropython
        self.dir = Path(self.image).parent
        self.boots = 0
        self.run_main = run_main_first
        self.a_master, a_slave = os.openpty()
        self.b_master, self.b_slave = os.openpty()
        tty.setraw(a_slave)
        tty.setraw(self.b_slave)
        self.a_slave = a_slave
        self.path = os.ttyname(self.b_slave)
        self.proc = None
        self.tail = b""
        self.raw = False
        self._stop = False
        self._spawn()
        self.thread = threading.Thread(target=self._bridge, daemon=True)
        self.thread.start()

    def _spawn(self):
        boot = self.dir / f"devboot{self.boots}.py"
        boot.write_text(f"IMAGE = {self.image!r}\nRUN_MAIN = {self.run_main!r}\nSIM = {SIM!r}\n" + DEVBOOT)
        self.boots += 1
        argv = [self.micropython, "-X", "heapsize=16M", "-i", str(boot)]
        if netns_available():
            argv = ["unshare", "-n"] + argv
        env = dict(os.environ, MICROPYPATH=".frozen")
        self.proc = subprocess.Popen(argv, stdin=self.a_slave, stdout=self.a_slave, stderr=self.a_slave,
                                     env=env, cwd=self.dir, start_new_session=True)

    def _bridge(self):
        while not self._stop:
            r, _, _ = select.select([self.a_master, self.b_master], [], [], 0.05)
            if self.b_master in r:
                try:
                    data = os.read(self.b_master, 4096)
                except OSError:
                    return
                if b"\x02" in data:
                    self.raw = False
                if b"\x03" in data and self.proc.poll() is None and not self._idle():
                    os.killpg(self.proc.pid, signal.SIGINT)  # a program runs: interrupt it
                self._write(self.a_master, data)
            if self.a_master in r:
                try:
                    data = os.read(self.a_master, 4096)
                except OSError:
                    data = b""
                self.tail = (self.tail + data)[-64:]
                if b"raw REPL; CTRL-B to exit" in self.tail:
                    self.raw = True
                self._write(self.b_master, data)
            if self.proc.poll() is not None and not self._stop:
                # The interpreter ended (Ctrl-D): that is this board's soft reset.
                self._drain()
                self.tail = b""
                self._write(self.b_master, b"MPY: soft reboot\r\n")
                # A board runs main.py after a soft reset only from the friendly REPL;
                # from the raw REPL it comes back in the raw REPL.
                self.run_main = not self.raw
                self._spawn()
                if self.raw:
                    self._write(self.a_master, b"\x01")

    def _idle(self):
        """At a prompt, the REPL reads Ctrl-C itself; a signal there would end the process."""
        return self.tail.endswith((b">>> ", b"CTRL-B to exit\r\n>", b"\x04>"))

    def _drain(self):
        while select.select([self.a_master], [], [], 0.05)[0]:
            try:
                self._write(self.b_master, os.read(self.a_master, 4096))
            except OSError:
                return

    @staticmethod
    def _write(fd, data):
        while data:
            n = os.write(fd, data)
            data = data[n:]

    def close(self):
        self._stop = True
        self.thread.join(2)
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for fd in (self.a_master, self.a_slave, self.b_master, self.b_slave):
            try:
                os.close(fd)
            except OSError:
                pass


if __name__ == "__main__":
    b = MPBoard(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else shutil.which("micropython"))
    print(b.path, flush=True)
    try:
        signal.pause()
    finally:
        b.close()

"""A simulated ESP32-family ROM bootloader speaking esptool's serial protocol.

Input: SLIP frames from esptool (over socket://127.0.0.1:PORT or a pty).
Output: SLIP replies as the ROM loader sends them, and a flash array that the
test inspects afterwards. There is no CPU: nothing ever boots from the flash.

What it implements (esptool 5.x with --no-stub, see esptool/loader.py):
SYNC (8 replies), READ_REG / WRITE_REG (a small register file: chip magic,
eFuse MAC words, UART clock divider, the SPI0 user-command registers so that
RDID returns a JEDEC id and esptool can detect the flash size),
GET_SECURITY_INFO (S3 and C3 only, as their ROMs do), SPI_ATTACH,
SPI_SET_PARAMS, CHANGE_BAUDRATE, FLASH_BEGIN / FLASH_DATA / FLASH_END,
FLASH_DEFL_BEGIN / DATA / END (zlib), SPI_FLASH_MD5 (32 ASCII hex chars).
Anything else (MEM_BEGIN for uploading the stub included) gets the ROM's
"invalid message" status, so esptool must be run with --no-stub.

Flash writes behave like NOR flash: FLASH_BEGIN erases to 0xFF, a write can
only clear bits.

Fault injection (per chip): drop_after_blocks=N closes the link after N data
blocks; corrupt_md5=True answers SPI_FLASH_MD5 with a wrong digest;
chip="esp32c3" on a profile that wants "esp32" is the wrong-chip case.

Run standalone: `python tests/sim/esp_rom.py [--chip esp32] [--flash 4MB]`
prints the socket:// URL and serves until Ctrl-C.
"""

import hashlib
import os
import socket
import struct
import threading
import tty
import zlib

# Command opcodes (esptool loader.ESP_CMDS)
FLASH_BEGIN = 0x02
FLASH_DATA = 0x03
FLASH_END = 0x04
SYNC = 0x08
WRITE_REG = 0x09
READ_REG = 0x0A
SPI_SET_PARAMS = 0x0B
SPI_ATTACH = 0x0D
CHANGE_BAUDRATE = 0x0F
FLASH_DEFL_BEGIN = 0x10
FLASH_DEFL_DATA = 0x11
FLASH_DEFL_END = 0x12
SPI_FLASH_MD5 = 0x13
GET_SECURITY_INFO = 0x14

# ROM error codes (second status byte)
ERR_INVALID_MESSAGE = 0x05
ERR_FAILED = 0x06
ERR_BAD_CRC = 0x07
ERR_BAD_SEQ = 0x08

CHECKSUM_MAGIC = 0xEF
CHIP_MAGIC_REG = 0x40001000
SPI_CMD_USR = 1 << 18
JEDEC_SIZE_ID = {"2MB": 0x15, "4MB": 0x16, "8MB": 0x17, "16MB": 0x18}

# Per chip: detection, register map (esptool/targets/*.py).
CHIPS = {
    "esp32": dict(magic=0x00F01D83, chip_id=None, spi_base=0x3FF42000, usr2=0x24, w0=0x80,
                  uart_clkdiv=0x3FF40014, efuse_mac=None),
    "esp32s3": dict(magic=0x00000009, chip_id=9, spi_base=0x60002000, usr2=0x20, w0=0x58,
                    uart_clkdiv=0x60000014, efuse_mac=0x60007044),
    "esp32c3": dict(magic=0x1B31506F, chip_id=5, spi_base=0x60002000, usr2=0x20, w0=0x58,
                    uart_clkdiv=0x60000014, efuse_mac=0x60008844),
}
ESP32_EFUSE_BASE = 0x3FF5A000


def slip_encode(packet):
    return b"\xc0" + packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class SlipDecoder:
    """Bytes in (any split), whole frames out."""

    def __init__(self):
        self.buf = bytearray()
        self.in_frame = False

    def feed(self, data):
        frames = []
        for b in data:
            if b == 0xC0:
                if self.in_frame and self.buf:
                    frames.append(bytes(self.buf).replace(b"\xdb\xdc", b"\xc0").replace(b"\xdb\xdd", b"\xdb"))
                    self.buf = bytearray()
                    self.in_frame = True
                else:
                    self.in_frame = True
            elif self.in_frame:
                self.buf.append(b)
        return frames


class LinkDropped(Exception):
    pass


class SimChip:
    """One chip: its identity, its flash and the state of the download in progress."""

    def __init__(self, chip="esp32", flash_size="4MB", mac=b"\x24\x0a\xc4\x12\x34\x56",
                 drop_after_blocks=None, corrupt_md5=False, manufacturer=0xEF):
        if chip not in CHIPS:
            raise ValueError("chip must be one of " + ", ".join(CHIPS))
        self.chip = chip
        self.info = CHIPS[chip]
        self.flash_size = flash_size
        self.flash = bytearray(b"\xff" * (int(flash_size[:-2]) << 20))
        self.mac = bytes(mac)
        self.flash_id = manufacturer | (0x40 << 8) | (JEDEC_SIZE_ID[flash_size] << 16)
        self.drop_after_blocks = drop_after_blocks
        self.corrupt_md5 = corrupt_md5
        self.regs = {}
        self.blocks_written = 0
        self.commands = []  # opcode log, for tests that check the sequence
        self.lock = threading.Lock()
        self._begin = None  # (offset, erase_size, blocksize, next_seq, inflater or None, write_pos)

    # -- register file -------------------------------------------------------
    def read_reg(self, addr):
        i = self.info
        if addr == CHIP_MAGIC_REG:
            return i["magic"]
        if addr == i["uart_clkdiv"]:
            return 347  # 40 MHz crystal at 115200 baud
        if i["efuse_mac"] is None:  # ESP32: MAC in eFuse BLK0 words 1 and 2
            if addr == ESP32_EFUSE_BASE + 4:
                return int.from_bytes(self.mac[2:6], "big")
            if addr == ESP32_EFUSE_BASE + 8:
                return (self.mac[0] << 8) | self.mac[1]
        elif addr == i["efuse_mac"]:
            return int.from_bytes(self.mac[2:6], "big")
        elif addr == i["efuse_mac"] + 4:
            return (self.mac[0] << 8) | self.mac[1]
        if addr == i["spi_base"]:
            return 0  # SPI_CMD_REG: user command already done
        return self.regs.get(addr, 0)

    def write_reg(self, addr, value, mask):
        i = self.info
        old = self.regs.get(addr, 0)
        self.regs[addr] = (old & ~mask) | (value & mask)
        if addr == i["spi_base"] and value & SPI_CMD_USR:
            # A user SPI command: the opcode is the low byte of SPI_USR2.
            opcode = self.regs.get(i["spi_base"] + i["usr2"], 0) & 0xFF
            result = self.flash_id if opcode == 0x9F else 0  # RDID; status registers read 0
            self.regs[i["spi_base"] + i["w0"]] = result

    # -- one request ---------------------------------------------------------
    def handle(self, op, data, chk):
        """Returns (value, payload) or raises LinkDropped. payload excludes the status bytes."""
        self.commands.append(op)
        if op == SYNC:
            return 0x20120707, b""
        if op == READ_REG:
            (addr,) = struct.unpack("<I", data[:4])
            return self.read_reg(addr), b""
        if op == WRITE_REG:
            for k in range(0, len(data) - 15, 16):
                addr, value, mask, _delay = struct.unpack("<IIII", data[k:k + 16])
                self.write_reg(addr, value, mask)
            return 0, b""
        if op == GET_SECURITY_INFO:
            if self.info["chip_id"] is None:
                raise RomError(ERR_INVALID_MESSAGE)
            return 0, struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, self.info["chip_id"], 0)
        if op in (SPI_ATTACH, SPI_SET_PARAMS, CHANGE_BAUDRATE):
            return 0, b""
        if op in (FLASH_BEGIN, FLASH_DEFL_BEGIN):
            erase_size, _nblocks, blocksize, offset = struct.unpack("<IIII", data[:16])
            if offset + erase_size > len(self.flash):
                raise RomError(ERR_FAILED)
            self.flash[offset:offset + erase_size] = b"\xff" * erase_size
            inflater = zlib.decompressobj() if op == FLASH_DEFL_BEGIN else None
            self._begin = [offset, erase_size, blocksize, 0, inflater, offset]
            return 0, b""
        if op in (FLASH_DATA, FLASH_DEFL_DATA):
            return self._data(op, data, chk)
        if op in (FLASH_END, FLASH_DEFL_END):
            self._begin = None
            return 0, b""
        if op == SPI_FLASH_MD5:
            addr, size = struct.unpack("<II", data[:8])
            digest = hashlib.md5(self.flash[addr:addr + size]).hexdigest()
            if self.corrupt_md5:
                digest = hashlib.md5(b"not" + self.flash[addr:addr + size]).hexdigest()
            return 0, digest.encode()
        raise RomError(ERR_INVALID_MESSAGE)

    def _data(self, op, data, chk):
        if self._begin is None:
            raise RomError(ERR_FAILED)
        size, seq, _, _ = struct.unpack("<IIII", data[:16])
        payload = data[16:16 + size]
        state = 0xEF
        for b in payload:
            state ^= b
        if len(payload) != size or state != chk:
            raise RomError(ERR_BAD_CRC)
        offset, erase_size, blocksize, want_seq, inflater, pos = self._begin
        if seq != want_seq:
            raise RomError(ERR_BAD_SEQ)
        if self.drop_after_blocks is not None and self.blocks_written >= self.drop_after_blocks:
            raise LinkDropped()
        if inflater is not None:
            out = inflater.decompress(payload)
        else:
            out = payload
            pos = offset + seq * blocksize
        end = min(pos + len(out), len(self.flash))
        n = end - pos
        cur = self.flash[pos:end]
        if cur.count(0xFF) == n:  # erased: the write lands as is
            self.flash[pos:end] = out[:n]
        else:  # NOR flash: writing can only clear bits
            self.flash[pos:end] = (int.from_bytes(cur, "big") & int.from_bytes(out[:n], "big")).to_bytes(n, "big")
        self._begin[3] = want_seq + 1
        self._begin[5] = pos + len(out)
        self.blocks_written += 1
        return 0, b""


class RomError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


def serve_stream(chip, recv, send):
    """Answer esptool on one link until it closes or a fault drops it."""
    dec = SlipDecoder()
    while True:
        data = recv()
        if not data:
            return
        for frame in dec.feed(data):
            if len(frame) < 8 or frame[0] != 0x00:
                continue
            op, length, chk = struct.unpack("<BHI", frame[1:8])
            try:
                with chip.lock:
                    value, payload = chip.handle(op, frame[8:8 + length], chk)
                status = b"\x00\x00\x00\x00"
            except RomError as e:
                value, payload, status = 0, b"", bytes((1, e.code, 0, 0))
            except LinkDropped:
                return
            body = payload + status
            reply = slip_encode(struct.pack("<BBHI", 0x01, op, len(body), value) + body)
            send(reply * 8 if op == SYNC else reply)  # the ROM answers SYNC eight times


class ROMServer:
    """The simulated chip on socket://127.0.0.1:PORT. One link at a time; the flash survives reconnects."""

    def __init__(self, chip):
        self.chip = chip
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.url = "socket://127.0.0.1:%d" % self.port
        self._closed = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    serve_stream(self.chip, lambda c=conn: c.recv(65536), conn.sendall)
                except OSError:
                    pass

    def close(self):
        self._closed = True
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PtyROM:
    """The simulated chip on a pty: pass .path to esptool as the port."""

    def __init__(self, chip):
        self.chip = chip
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _recv(self):
        try:
            return os.read(self.master, 65536)
        except OSError:
            return b""

    def _send(self, data):
        while data:
            n = os.write(self.master, data)
            data = data[n:]

    def _loop(self):
        try:
            serve_stream(self.chip, self._recv, self._send)
        except OSError:
            pass

    def close(self):
        for fd in (self.slave, self.master):
            try:
                os.close(fd)
            except OSError:
                pass


if __name__ == "__main__":
    import argparse
    import time

    ap = argparse.ArgumentParser(description="simulated ESP32 ROM bootloader on 127.0.0.1")
    ap.add_argument("--chip", default="esp32", choices=sorted(CHIPS))
    ap.add_argument("--flash", default="4MB", choices=sorted(JEDEC_SIZE_ID))
    a = ap.parse_args()
    srv = ROMServer(SimChip(a.chip, a.flash))
    print(srv.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.close()

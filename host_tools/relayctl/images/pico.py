"""Pico W: the filesystem as a UF2 the BOOTSEL drive accepts (it writes only these blocks) and as raw bytes.

uf2(data, address, family) -> bytes: 256-byte payloads in 512-byte UF2
blocks (https://github.com/microsoft/uf2), flag 0x2000 (family id present).
"""

import struct

UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
FLAG_FAMILY_ID = 0x00002000
PAYLOAD = 256


def uf2(data, address, family):
    n = (len(data) + PAYLOAD - 1) // PAYLOAD
    out = bytearray()
    for i in range(n):
        chunk = data[i * PAYLOAD:(i + 1) * PAYLOAD].ljust(PAYLOAD, b"\0")
        head = struct.pack("<IIIIIIII", UF2_MAGIC_START0, UF2_MAGIC_START1, FLAG_FAMILY_ID,
                           address + i * PAYLOAD, PAYLOAD, i, n, family)
        out += head + chunk + b"\0" * (476 - PAYLOAD) + struct.pack("<I", UF2_MAGIC_END)
    return bytes(out)


def instructions(r, uf2_name, raw_name):
    base = r["flash.uf2_base"] + r["flash.fs_offset"]
    return f"""Putting Relay on a {r['description']}

1. Flash MicroPython for {r['micropython.board']} first (v{r['micropython.min_version']} or newer):
   hold BOOTSEL, plug in USB, copy the MicroPython .uf2 onto the RPI-RP2 drive.
2. Hold BOOTSEL again, plug in, and copy {uf2_name} onto the RPI-RP2 drive.
   It holds only the filesystem (flash offset 0x{r['flash.fs_offset']:X}, address 0x{base:X},
   {r['flash.fs_size']} bytes), so MicroPython itself stays as it is.
   The board restarts, mounts the filesystem and runs main.py: the relay.
   Without BOOTSEL: picotool load -o 0x{base:X} {raw_name}
"""

"""ESP32 family: inspect the user's MicroPython firmware file, remember it, merge it with the filesystem.

inspect_firmware(data, r) -> FirmwareInfo, or CliError naming what does not
fit (wrong chip, layout that puts the filesystem elsewhere, overlap).
merged_image(fw, fs, r) -> one full-flash image from 0x0 (esptool merge-bin),
remember()/cached() keep firmware files in a local cache by sha256. Nothing
here touches the network or a serial port.
"""

import hashlib
import json
import os
import re
import struct
from pathlib import Path

from relayctl.errors import CliError

CHIP_IDS = {"esp32": 0, "esp32s3": 9, "esp32c3": 5}  # esp_image_header_t.chip_id
CHIP_NAMES = {0: "ESP32", 2: "ESP32-S2", 5: "ESP32-C3", 9: "ESP32-S3", 12: "ESP32-C2", 13: "ESP32-C6", 16: "ESP32-H2"}
PT_MAGIC = 0x50AA


class FirmwareInfo:
    def __init__(self, sha256, size, version, partitions):
        self.sha256, self.size, self.version, self.partitions = sha256, size, version, partitions

    def as_dict(self, name):
        return {"file": name, "sha256": self.sha256, "size": self.size, "version": self.version}


def partitions(data, offset):
    """[(label, type, subtype, offset, size)] from an ESP-IDF partition table inside `data`."""
    out = []
    for i in range(offset, min(offset + 0xC00, len(data) - 31), 32):
        magic, ptype, sub, off, size = struct.unpack_from("<HBBII", data, i)
        if magic != PT_MAGIC:
            break
        label = data[i + 12:i + 28].split(b"\0")[0].decode("ascii", "replace")
        out.append((label, ptype, sub, off, size))
    return out


def firmware_version(data):
    m = re.search(rb"MicroPython v(\d+\.\d+(?:\.\d+)?)(-[0-9A-Za-z.-]+)? on \d{4}-\d\d-\d\d", data)
    return m.group(1).decode() if m else None


def _vt(v):
    return tuple(int(x) for x in v.split("."))


def inspect_firmware(data, r, name):
    """Check a firmware file against the board. Returns (FirmwareInfo, warnings)."""
    chip = r["chip.name"]
    boot = r["flash.bootloader_offset"]
    warnings = []
    if len(data) < 0x100 or data[0] != 0xE9:
        raise CliError(f"{name}: not an ESP32 firmware image (no 0xE9 header): pass MicroPython's .bin for "
                       f"{r['micropython.board'] or chip}, the one flashed at 0x{boot:x}", 2)
    chip_id = struct.unpack_from("<H", data, 12)[0]
    if chip_id != CHIP_IDS.get(chip):
        raise CliError(f"{name}: firmware is for {CHIP_NAMES.get(chip_id, f'chip id {chip_id}')}, but board "
                       f"{r.name} is {chip}; download MicroPython for {r['micropython.board'] or chip}", 2)
    fs_off, fs_size, flash = r["flash.fs_offset"], r["flash.fs_size"], r["flash.size"]
    if boot + len(data) > fs_off:
        raise CliError(f"{name}: {len(data)} bytes at 0x{boot:x} run into the filesystem at 0x{fs_off:x}; "
                       "is this a merged full-flash image? pass the plain firmware .bin", 2)
    pt_off = r["flash.partition_table_offset"]
    parts = partitions(data, pt_off - boot) if pt_off >= boot else []
    if not parts:
        raise CliError(f"{name}: no partition table at 0x{pt_off:x}; the profile's bootloader_offset "
                       f"0x{boot:x} may be wrong for this file", 2)
    vfs = [p for p in parts if p[0] in ("vfs", "ffat")]
    if vfs:
        where = (vfs[0][3], vfs[0][4])
    else:  # since v1.26 the firmware adds vfs from the end of the last partition to the end of flash
        end = max(p[3] + p[4] for p in parts)
        where = (end, flash - end)
    if where != (fs_off, fs_size):
        raise CliError(f"{name}: this firmware's partition table puts the filesystem at 0x{where[0]:x} + 0x{where[1]:x}, "
                       f"the profile at 0x{fs_off:x} + 0x{fs_size:x}; set flash.fs_offset and flash.fs_size "
                       "in a profile for this firmware (relayctl boards new)", 2)
    version = firmware_version(data)
    if version and _vt(version) < _vt(r["micropython.min_version"]):
        warnings.append(f"{name}: MicroPython {version} is older than {r['micropython.min_version']}, the oldest "
                        "the relay supports on this board; the image is built, but the relay may not start")
    return FirmwareInfo(hashlib.sha256(data).hexdigest(), len(data), version, parts), warnings


def merged_image(firmware, fs_image, r):
    """Firmware at the bootloader offset and the filesystem at its offset, as one image from 0x0."""
    import contextlib
    import io

    from esptool.cmds import merge_bin

    with contextlib.redirect_stdout(io.StringIO()):  # esptool reports progress on stdout
        data = merge_bin([(r["flash.bootloader_offset"], firmware), (r["flash.fs_offset"], fs_image)],
                         r["chip.name"], output=None)
    assert len(data) == r["flash.fs_offset"] + len(fs_image)
    return data


def cache_dir():
    base = os.environ.get("RELAY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "relay")
    return Path(base) / "micropython"


def remember(data, chip, info):
    """Keep the firmware under its sha256 and note it as this chip's latest."""
    d = cache_dir() / chip
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{info.sha256}.bin").write_bytes(data)
    (d / "latest.json").write_text(json.dumps({"sha256": info.sha256, "version": info.version}) + "\n")


def cached(chip):
    """(bytes, sha256) of the firmware last used for this chip, or None."""
    d = cache_dir() / chip
    try:
        meta = json.loads((d / "latest.json").read_text())
        data = (d / f"{meta['sha256']}.bin").read_bytes()
    except (OSError, ValueError, KeyError):
        return None
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        return None  # a damaged cache is ignored, not trusted
    return data

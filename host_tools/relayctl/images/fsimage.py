"""The littlefs2 filesystem image a MicroPython board mounts at boot, built with littlefs-python.

make_image(files, geometry) -> bytes of exactly block_size * block_count.
Files are written in sorted order into a fresh in-memory filesystem, so the
same files give the same bytes. read_image(data, geometry) lists it back (read_files(fs) a
mounted one).
"""

from littlefs import LittleFS

DISK_VERSIONS = {"2.0": 0x00020000, "2.1": 0x00020001}


class Geometry:
    def __init__(self, block_size, block_count, prog_size=32, read_size=32, lookahead=32, disk_version="2.0"):
        self.block_size, self.block_count = block_size, block_count
        self.prog_size, self.read_size, self.lookahead = prog_size, read_size, lookahead
        self.disk_version = disk_version

    @classmethod
    def of(cls, r):
        return cls(r["flash.block_size"], r["flash.fs_size"] // r["flash.block_size"], r["flash.prog_size"],
                   r["flash.read_size"], r["flash.lookahead"], r["flash.littlefs_disk_version"])

    def as_dict(self):
        return {"block_size": self.block_size, "block_count": self.block_count, "prog_size": self.prog_size,
                "read_size": self.read_size, "lookahead": self.lookahead, "disk_version": self.disk_version}

    def mount(self, data=None):
        # cache_size as MicroPython computes it: min(block_size, 4 * max(read, prog))
        fs = LittleFS(block_size=self.block_size, block_count=self.block_count, read_size=self.read_size,
                      prog_size=self.prog_size, lookahead_size=self.lookahead, name_max=255,
                      cache_size=min(self.block_size, 4 * max(self.read_size, self.prog_size)),
                      disk_version=DISK_VERSIONS[self.disk_version], mount=data is None)
        if data is not None:
            fs.context.buffer[:] = data
            fs.mount()
        return fs


def make_image(files, geometry):
    fs = geometry.mount()
    for name in sorted(files):
        if "/" in name:
            fs.makedirs(name.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(name, "wb") as f:
            f.write(files[name])
    fs.unmount()
    data = bytes(fs.context.buffer)
    assert len(data) == geometry.block_size * geometry.block_count
    return data


def read_image(data, geometry):
    """{path: bytes} of every file in the image."""
    fs = geometry.mount(bytearray(data))
    out = read_files(fs)
    fs.unmount()
    return out


def read_files(fs):
    """{path: bytes} of every file in a mounted LittleFS."""
    out = {}
    for root, _dirs, names in fs.walk("/"):
        for n in names:
            p = (root.rstrip("/") + "/" + n).lstrip("/")
            with fs.open(p, "rb") as f:
                out[p] = f.read()
    return out

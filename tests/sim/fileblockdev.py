# A block device backed by a file, for the MicroPython unix port: a board's flash partition holding a
# host-built littlefs image. The extended block protocol (offset argument) littlefs uses; ioctl ops as
# MicroPython's vfs asks them (3 sync, 4 block count, 5 block size, 6 erase).
# Used by tests/sim/mp_board.py (a board on a pty) and tests/build/mp_boot.py (the image boot test).


class FileBlockDev:
    def __init__(self, path, block_size=4096):
        self.f = open(path, "r+b")
        self.bs = block_size
        self.f.seek(0, 2)
        self.size = self.f.tell()

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.bs + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=0):
        self.f.seek(n * self.bs + off)
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == 3:  # sync
            self.f.flush()
            return 0
        if op == 4:  # block count
            return self.size // self.bs
        if op == 5:  # block size
            return self.bs
        if op == 6:  # erase
            self.f.seek(arg * self.bs)
            self.f.write(b"\xff" * self.bs)
            return 0
        return 0

# MicroPython (unix port) script: boot a host-built littlefs image as a board would.
# usage: micropython mp_boot.py IMAGE BLOCK_SIZE PROGSIZE
# Mounts IMAGE (a file) at /flash through a block device backed by the file,
# chdirs there, puts it first on sys.path and runs its main.py, as MicroPython's
# _boot.py + main.py do on the board.
import sys
import os
import vfs


class FileBlockDev:
    # The extended block protocol (offset argument) littlefs uses.
    def __init__(self, path, block_size):
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


path, bs, progsize = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bdev = FileBlockDev(path, bs)
if progsize == 32:
    vfs.mount(bdev, "/flash")  # ESP32: autodetect, VfsLfs2 with default arguments
else:
    vfs.mount(vfs.VfsLfs2(bdev, progsize=progsize), "/flash")  # rp2's _boot.py
os.chdir("/flash")
sys.path.insert(0, "/flash")
print("mounted", sorted(os.listdir("/flash")))
exec(open("main.py").read(), {"__name__": "__main__"})

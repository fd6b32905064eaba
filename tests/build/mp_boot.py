# MicroPython (unix port) script: boot a host-built littlefs image as a board would.
# usage: micropython mp_boot.py IMAGE BLOCK_SIZE PROGSIZE
# Mounts IMAGE (a file) at /flash through a block device backed by the file,
# chdirs there, puts it first on sys.path and runs its main.py, as MicroPython's
# _boot.py + main.py do on the board.
import sys
import os
import vfs

sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0] + "/../sim")
from fileblockdev import FileBlockDev  # noqa: E402


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

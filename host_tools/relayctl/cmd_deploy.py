"""Update the relay files and config.json on a running MicroPython board over its REPL.

Input: a build (`--image DIR`, or built now from the board profile and
`--site`) and a board on a serial port (or socket://). Through mpremote's
raw REPL the board hashes its own files (sha256); only files whose hash
differs are sent, relay files the build no longer has are removed (a stale
.py would shadow the new .mpy). By default the board keeps its own values
(SSID, proxy and admin passwords that `relayctl flash` stamped), so its
inventory row and printed card stay true. Then a soft reset, and the relay
must report ready with the config hash that was sent.
"""

import ast
import hashlib
import json

from relayctl import out
from relayctl.errors import CliError

# Per-board values `relayctl flash` stamped; kept unless --new-values.
BOARD_KEYS = ("wifi.ssid", "portal.admin_password", "socks.auth", "socks.users")

HASH_SCRIPT = """
import os, hashlib, binascii
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    d = hashlib.sha256()
    while True:
        b = f.read(512)
        if not b:
            break
        d.update(b)
    f.close()
    return binascii.hexlify(d.digest()).decode()
def _walk(p):
    r = []
    try:
        it = list(os.ilistdir(p))
    except OSError:
        return r
    for e in it:
        n = p + '/' + e[0]
        if e[1] == 0x4000:
            r += _walk(n)
        else:
            r.append(n)
    return r
_r = {}
for _p in ['main.py', 'config.json'] + _walk('relay'):
    _r[_p] = _h(_p)
print(repr(_r))
"""


def add_arguments(p):
    p.add_argument("board", help="board profile, e.g. esp32-generic")
    p.add_argument("--port", required=True, help="the board's serial port (or socket://HOST:PORT)")
    p.add_argument("--site", metavar="FILE", help="site.toml for the build")
    p.add_argument("--image", metavar="DIR", help="an existing `relayctl build` output instead of building")
    p.add_argument("--out", metavar="DIR", help="where the build goes (default build/BOARD)")
    p.add_argument("--new-values", action="store_true",
                   help="replace the board's own SSID and passwords with the build's (its card becomes wrong)")
    p.add_argument("--no-boot-check", action="store_true", help="do not soft-reset and wait for the ready line")
    p.add_argument("--boot-timeout", type=float, default=30.0, help="seconds to wait for the ready line")


def build_files(args):
    """name -> bytes of every file the build puts on the board's filesystem."""
    from littlefs import LittleFS

    from relayctl.flash.manifest import built

    out_dir, manifest = built(args)
    fs = manifest.get("filesystem")
    if not isinstance(fs, dict) or "image" not in fs:
        raise CliError(f"build of {manifest.get('board')} has no filesystem image: deploy is for MicroPython "
                       "boards (use `relayctl install` for Linux boards)")
    img = (out_dir / fs["image"]).read_bytes()
    lfs = LittleFS(block_size=fs.get("block_size", 4096), block_count=len(img) // fs.get("block_size", 4096),
                   read_size=fs.get("read_size", 32), prog_size=fs.get("prog_size", 32),
                   lookahead_size=fs.get("lookahead", 32), mount=False)
    lfs.context.buffer[:] = img
    lfs.mount()
    files = {}
    for root, _dirs, names in lfs.walk("/"):
        for n in names:
            path = (root.rstrip("/") + "/" + n).lstrip("/")
            with lfs.open(path, "rb") as f:
                files[path] = f.read()
    for name, digest in (fs.get("files") or {}).items():
        if name in files and hashlib.sha256(files[name]).hexdigest() != digest:
            raise CliError(f"{out_dir}: {name} in the filesystem image does not match manifest.json: the build "
                           "output is damaged; build again")
    return files


def keep_board_values(new_text, old_text):
    """The build's config with the board's own per-board values carried over."""
    try:
        old = json.loads(old_text)
    except ValueError:
        return new_text, []
    cfg = json.loads(new_text)
    kept = []
    for key in BOARD_KEYS:
        sect, name = key.split(".", 1)
        if name in old.get(sect, {}):
            cfg.setdefault(sect, {})[name] = old[sect][name]
            kept.append(key)
    if not kept:
        return new_text, []
    return (json.dumps(cfg, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"), kept


def _transport(port):
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    try:
        t = SerialTransport(port, baudrate=115200)
    except TransportError as e:
        raise CliError(f"cannot open {port}: {e}; check the cable, that the board is plugged in, that no serial "
                       "monitor (Thonny, screen) holds the port, and that you are in the dialout group")
    try:
        t.enter_raw_repl(soft_reset=False)
    except TransportError as e:
        t.close()
        raise CliError(f"{port}: the board's REPL does not answer ({e}): it is not running MicroPython, the relay "
                       "holds the console, or it is in download mode; press EN/RST and retry, or flash it with "
                       "`relayctl flash`")
    return t


def run(args):
    from mpremote.transport import TransportError

    from relayctl.flash.bootcheck import wait_ready

    files = build_files(args)
    t = _transport(args.port)
    try:
        try:
            remote = ast.literal_eval(t.exec(HASH_SCRIPT).decode().strip().splitlines()[-1])
        except TransportError as e:
            raise CliError(f"{args.port}: cannot list the board's files ({e}): the board's filesystem is not "
                           "mounted (MicroPython's 'filesystem appears to be corrupted'?); flash it with "
                           "`relayctl flash`")
        if "config.json" in files and remote.get("config.json") and not args.new_values:
            old = t.fs_readfile("config.json")
            files["config.json"], kept = keep_board_values(files["config.json"], old)
            if kept:
                out.info("keeping this board's own " + ", ".join(kept))
        changed = [n for n in sorted(files) if remote.get(n) != hashlib.sha256(files[n]).hexdigest()]
        stale = [n for n in sorted(remote) if n.startswith("relay/") and n not in files]
        for n in changed:
            parts = n.split("/")[:-1]
            for k in range(1, len(parts) + 1):
                d = "/".join(parts[:k])
                if not t.fs_exists(d):
                    t.fs_mkdir(d)
            out.info(f"sending {n} ({len(files[n])} bytes)")
            t.fs_writefile(n, files[n])
        for n in stale:
            out.info(f"removing {n} (not in this build)")
            t.fs_rmfile(n)
        after = ast.literal_eval(t.exec(HASH_SCRIPT).decode().strip().splitlines()[-1])
        bad = [n for n in files if after.get(n) != hashlib.sha256(files[n]).hexdigest()]
        if bad:
            raise CliError(f"{args.port}: after sending, {', '.join(bad)} differ on the board: the filesystem is "
                           "full or failing; flash the board with `relayctl flash`")
        out.info(f"{len(changed)} file(s) sent, {len(stale)} removed, {len(files) - len(changed)} unchanged")
        if args.no_boot_check:
            t.exit_raw_repl()
            return 0
        t.exit_raw_repl()
        t.serial.write(b"\x04")  # soft reset from the friendly REPL: the board runs main.py
        expect = hashlib.sha256(files["config.json"]).hexdigest()
        version, got = wait_ready(t.serial, args.port, expect, args.boot_timeout)
        out.info(f"relay ready version={version} config={got}")
        return 0
    except TransportError as e:
        raise CliError(f"{args.port}: the board stopped answering ({e}): the cable moved or the board reset; "
                       "run deploy again (it sends only what is still missing)")
    finally:
        t.close()

"""Update the relay files and config.json on a running MicroPython board over its REPL.

Input: a build (`--image DIR`, or built now from the board profile and
`--site`) and a board on a serial port (or socket://). Through mpremote's
raw REPL the board hashes its own files (sha256); only files whose hash
differs are sent, relay files the build no longer has are removed (a stale
.py would shadow the new .mpy). By default the board keeps every value its
printed card shows (network name, security and passphrase, proxy account,
admin password, MTProto secret and its QR code), so its inventory row and
card stay true; a build that would move what the card shows (the proxy's
address or ports) is refused unless --new-values. Files are sent under
NAME.new and put in place together once all arrived and verified, so a
board that vanishes mid-way keeps running what it had. Then a soft reset,
and the relay must report ready with the config hash that was sent.
"""

import ast
import hashlib
import json

from relayctl import out
from relayctl.errors import CliError

# Per-board values the card shows, kept unless --new-values (stamp.py wrote them at flash time).
BOARD_KEYS = ("wifi.ssid", "wifi.security", "wifi.passphrase", "portal.admin_password", "socks.auth", "socks.users",
              "mtproto.secrets")
# What the card shows that comes from the build: (card column, config key). A change here makes the card wrong.
CARD_FROM_BUILD = (("proxy_host", "wifi.address"), ("proxy_port", "socks.port"), ("mtproto_port", "mtproto.port"),
                   ("MTProto", "mtproto.enabled"))
QR_MTPROTO = "qr-mtproto.svg"  # the board's own tg://proxy QR code, stamped with its secret
STAGED = ".new"
SERIAL_TIMEOUT = 0.5  # seconds per read: a silent port must not block (pyserial's default waits forever)

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
_w = []
for _d in %r:
    _w += _walk(_d)
for _p in %r + [e[0] for e in os.ilistdir('') if e[0].endswith('.new')] + _w:
    _r[_p] = _h(_p)
print(repr(_r))
"""

# Put the staged files in place, config.json last (it names what the rest must be).
PLACE_SCRIPT = """
import os
for _n in %r:
    try:
        os.remove(_n)
    except OSError:
        pass
    os.rename(_n + '.new', _n)
print('placed')
"""


def add_arguments(p):
    p.add_argument("board", help="board profile, e.g. esp32-generic")
    p.add_argument("--port", required=True, help="the board's serial port (or socket://HOST:PORT)")
    p.add_argument("--site", metavar="FILE", help="site.toml for the build")
    p.add_argument("--image", metavar="DIR", help="an existing `relayctl build` output instead of building")
    p.add_argument("--relay", metavar="NAME", help="which relay of the site's [mesh] this board is (mesh.md)")
    p.add_argument("--out", metavar="DIR", help="where the build goes (default build/BOARD)")
    p.add_argument("--new-values", action="store_true",
                   help="replace the board's own SSID and passwords with the build's (its card becomes wrong)")
    p.add_argument("--no-boot-check", action="store_true", help="do not soft-reset and wait for the ready line")
    p.add_argument("--boot-timeout", type=float, default=30.0, help="seconds to wait for the ready line")


def build_files(args):
    """name -> bytes of every file the build puts on the board's filesystem."""
    from littlefs import LittleFS

    from relayctl.flash.manifest import built
    from relayctl.images.fsimage import read_files

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
    files = read_files(lfs)
    for name, digest in (fs.get("files") or {}).items():
        if name in files and hashlib.sha256(files[name]).hexdigest() != digest:
            raise CliError(f"{out_dir}: {name} in the filesystem image does not match manifest.json: the build "
                           "output is damaged; build again")
    return files


def _get(cfg, dotted):
    sect, name = dotted.split(".", 1)
    return (cfg.get(sect) or {}).get(name)


def keep_board_values(new_text, old_text):
    """(config bytes, keys kept, card values the build would move as [(column, board's, build's)]):
    the build's config with the board's own per-board values carried over."""
    try:
        old = json.loads(old_text)
    except ValueError:
        return new_text, [], []
    cfg = json.loads(new_text)
    kept = []
    for key in BOARD_KEYS:
        sect, name = key.split(".", 1)
        if name not in old.get(sect, {}):
            continue
        if sect == "mtproto" and not (cfg.get("mtproto") or {}).get("enabled"):
            continue  # the build has no MTProto to keep a secret for (reported as a card change below)
        if key == "portal.admin_password" and not old[sect][name]:
            continue  # flashed when its build served no admin page: the build's (the site's) password now
        cfg.setdefault(sect, {})[name] = old[sect][name]
        kept.append(key)
    if "wifi.passphrase" not in kept and "wifi.security" in kept:
        cfg["wifi"].pop("passphrase", None)  # the board's open network stays open
    moved = [(col, _get(old, key), _get(cfg, key)) for col, key in CARD_FROM_BUILD
             if _get(old, key) is not None and _get(old, key) != _get(cfg, key)]
    if not kept:
        return new_text, [], moved
    return (json.dumps(cfg, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"), kept, moved


RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n"
REPL_WAIT = 8  # seconds for the raw REPL to answer, whatever the board prints meanwhile
# What a board that keeps resetting prints: the ESP32 ROM's boot lines, its panic and brownout lines,
# MicroPython's soft reboot (a main.py or interpreter that dies at start, over and over).
RESET_SIGNS = (b"rst:0x", b"\nets ", b"Brownout detector", b"Guru Meditation", b"Rebooting...", b"soft reboot",
               b"ESP-ROM:")


def _close(t):
    """Close the port whatever state the board left it in (an unplugged USB port fails even on close)."""
    import serial

    try:
        t.close()
    except (OSError, serial.SerialException):
        pass


def _enter_raw_repl(t, port):
    """mpremote's enter_raw_repl without a soft reset, with a deadline that holds while the board keeps
    printing (mpremote's only runs out during a pause, so a board in a reset loop kept it waiting forever)."""
    import time

    ser = t.serial
    ser.write(b"\r\x03")  # ctrl-C: interrupt any running program
    time.sleep(0.1)
    ser.reset_input_buffer()
    ser.write(b"\r\x01")  # ctrl-A: raw REPL
    deadline = time.monotonic() + REPL_WAIT
    seen, resets, data = 0, 0, b""
    while time.monotonic() < deadline:
        b = ser.read(1)  # returns within SERIAL_TIMEOUT: the deadline is looked at while the board talks
        if not b:
            continue
        seen += 1
        data = (data + b)[-256:]
        if data.endswith(RAW_PROMPT):
            t.in_raw_repl = True
            return
        if any(data.endswith(sign) for sign in RESET_SIGNS):
            resets += 1
    if resets >= 2:
        raise CliError(f"{port}: the board keeps resetting ({resets} boot messages in {REPL_WAIT} s, no REPL): too "
                       "little power (use a powered hub or a shorter cable) or firmware that crashes at start; "
                       "nothing was sent: flash it again with `relayctl flash`")
    if seen:
        raise CliError(f"{port}: the board prints but its REPL does not answer: the relay or another program "
                       "holds the console; press EN/RST and retry, or flash it with `relayctl flash`")
    raise CliError(f"{port}: the board's REPL does not answer (no reply in {REPL_WAIT} s): it is not running "
                   "MicroPython, or it is in download mode; press EN/RST and retry, or flash it with `relayctl flash`")


def _transport(port):
    import serial
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    try:
        t = SerialTransport(port, baudrate=115200, timeout=SERIAL_TIMEOUT)
    except TransportError as e:
        raise CliError(f"cannot open {port}: {e}; check the cable, that the board is plugged in, that no serial "
                       "monitor (Thonny, screen) holds the port, and that you are in the dialout group")
    try:
        _enter_raw_repl(t, port)
    except (serial.SerialException, OSError) as e:
        _close(t)
        raise CliError(f"{port}: the board went away before anything was sent ({_short(e)}): unplugged or a loose "
                       "cable; nothing on it changed; plug it in and run deploy again")
    except CliError:
        _close(t)
        raise
    return t


def _shown(v):
    if v is None or v is False:
        return "off"
    return "on" if v is True else v


def _short(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _hashes(t, names, dirs=("relay",)):
    """sha256 of each file named, and of every file under dirs (the folders a build owns), or None."""
    return ast.literal_eval(t.exec(HASH_SCRIPT % (list(dirs), list(names))).decode().strip().splitlines()[-1])


def run(args):
    import serial
    from mpremote.transport import TransportError

    from relayctl.flash.bootcheck import wait_ready
    from relayctl.flash.stamp import check_config

    files = build_files(args)
    roots = sorted(n for n in files if "/" not in n)
    dirs = sorted({n.split("/")[0] for n in files if "/" in n} | {"relay"})  # the folders this build owns
    t = _transport(args.port)
    doing = "reading the board's files"
    try:
        try:
            remote = _hashes(t, roots, dirs)
        except TransportError as e:
            raise CliError(f"{args.port}: cannot list the board's files ({_short(e)}): the board's filesystem is not "
                           "mounted (MicroPython's 'filesystem appears to be corrupted'?); flash it with "
                           "`relayctl flash`")
        if "config.json" in files and remote.get("config.json") and not args.new_values:
            old = t.fs_readfile("config.json")
            files["config.json"], kept, moved = keep_board_values(files["config.json"], old)
            if moved:
                what = ", ".join(f"{col} {_shown(a)} -> {_shown(b)}" for col, a, b in moved)
                raise CliError(f"{args.port}: this build changes what the board's printed card shows ({what}): "
                               "nothing was sent; flash the board again (`relayctl flash`: new inventory row, then "
                               "`relayctl cards`), or deploy with --new-values and reprint its card")
            if "mtproto.secrets" in kept and remote.get(QR_MTPROTO):
                files.pop(QR_MTPROTO, None)  # the board's QR code carries its own secret: keep it too
            if kept:
                check_config(files["config.json"])
                out.info("keeping this board's own " + ", ".join(kept) + " (its card stays true)")
        changed = [n for n in sorted(files) if remote.get(n) != hashlib.sha256(files[n]).hexdigest()]
        stale = [n for n in sorted(remote)
                 if ("/" in n and n.split("/")[0] in dirs and n not in files) or n.endswith(STAGED)]
        for n in stale:
            if n.endswith(STAGED):
                t.fs_rmfile(n)  # left by a deploy that was cut off: never active, now gone
        stale = [n for n in stale if not n.endswith(STAGED)]
        for n in changed:
            parts = n.split("/")[:-1]
            for k in range(1, len(parts) + 1):
                d = "/".join(parts[:k])
                if not t.fs_exists(d):
                    t.fs_mkdir(d)
            doing = f"sending {n}"
            out.info(f"sending {n} ({len(files[n])} bytes)")
            t.fs_writefile(n + STAGED, files[n])
        doing = "checking what arrived"
        staged = _hashes(t, [n + STAGED for n in changed])
        bad = [n for n in changed if staged.get(n + STAGED) != hashlib.sha256(files[n]).hexdigest()]
        if bad:
            raise CliError(f"{args.port}: {', '.join(bad)} arrived damaged (the filesystem is full or failing): "
                           "nothing was put in place; flash the board with `relayctl flash`")
        doing = "putting the new files in place"
        order = [n for n in changed if n != "config.json"] + [n for n in changed if n == "config.json"]
        if order:
            t.exec(PLACE_SCRIPT % (order,))
        for n in stale:
            out.info(f"removing {n} (not in this build)")
            t.fs_rmfile(n)
        doing = "checking the board's files"
        after = _hashes(t, roots, dirs)
        bad = [n for n in files if after.get(n) != hashlib.sha256(files[n]).hexdigest()]
        if bad:
            raise CliError(f"{args.port}: after sending, {', '.join(bad)} differ on the board: the filesystem is "
                           "full or failing; flash the board with `relayctl flash`")
        out.info(f"{len(changed)} file(s) sent, {len(stale)} removed, {len(files) - len(changed)} unchanged")
        t.exit_raw_repl()
        if args.no_boot_check:
            return 0
        doing = "waiting for the relay to start"
        t.serial.write(b"\x04")  # soft reset from the friendly REPL: the board runs main.py
        expect = hashlib.sha256(files["config.json"]).hexdigest()
        version, got = wait_ready(t.serial, args.port, expect, args.boot_timeout)
        out.info(f"relay ready version={version} config={got}")
        return 0
    except (TransportError, serial.SerialException, OSError) as e:
        placed = doing.startswith(("checking the board", "waiting"))
        state = ("the new files were already in place" if placed else
                 "nothing half-written is active: files go under .new names and are put in place only once all "
                 "arrived, so the board still runs what it had")
        raise CliError(f"{args.port}: the board went away while {doing} ({_short(e)}): unplugged, reset or a loose "
                       f"cable; {state}; plug it in and run deploy again")
    finally:
        _close(t)

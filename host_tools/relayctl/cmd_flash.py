"""Flash ESP32-family boards with the relay: one verified write per board.

For each board: connect (esptool), check the chip and flash size against the
board profile, stamp this board's own values (SSID suffix from its MAC, proxy
and, where the build serves the admin page, admin passwords) into the build's config.json, write the merged image,
verify its MD5, reset, and wait for the relay's ready line with the expected
config hash. Only then does inventory.csv get a row. Several boards
(--ports P1,P2 or --all) are flashed in parallel; one failing does not stop
the others, and the exit status is 1 if any failed.
"""

import concurrent.futures
import datetime
import os
import re
import sys
import threading
import traceback
from pathlib import Path

from relayctl import out
from relayctl.errors import CliError

# USB-serial bridges found on ESP32 boards: CP210x, CH340/CH9102, FTDI, Espressif's own USB.
USB_VIDS = {0x10C4, 0x1A86, 0x0403, 0x303A}


def add_arguments(p):
    p.add_argument("board", help="board profile, e.g. esp32-generic")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial port: /dev/ttyUSB0, COM3, or socket://HOST:PORT")
    where.add_argument("--ports", help="several ports, comma-separated, flashed in parallel")
    where.add_argument("--all", action="store_true", help="every attached USB-serial board, in parallel")
    p.add_argument("--site", metavar="FILE", help="site.toml: build the image for this board and site first")
    p.add_argument("--micropython", metavar="FILE", help="MicroPython firmware .bin for the build")
    p.add_argument("--relay", metavar="NAME", help="which relay of the site's [mesh] this board is (mesh.md)")
    p.add_argument("--image", metavar="DIR", help="flash an existing `relayctl build` output instead of building")
    p.add_argument("--out", metavar="DIR", help="where the build goes (default build/BOARD)")
    p.add_argument("--inventory", metavar="FILE", default="inventory.csv",
                   help="CSV that gets one row per flashed board (default inventory.csv)")
    p.add_argument("--no-stub", action="store_true",
                   help="talk to the ROM loader directly (slower; works where esptool's stub cannot be uploaded)")
    p.add_argument("--no-boot-check", action="store_true",
                   help="stop after the verified write; do not wait for the relay to report ready")
    p.add_argument("--check-only", action="store_true",
                   help="write nothing: reset and wait for the ready line, check its config hash")
    p.add_argument("--same-values", action="store_true",
                   help="do not stamp per-board SSID and passwords; flash the build as it is")
    p.add_argument("--force", action="store_true", help="flash even if the chip or flash size differ from the profile")
    p.add_argument("--baud", type=int, default=460800, help="baud rate while writing (default 460800)")
    p.add_argument("--boot-timeout", type=float, default=45.0, help="seconds to wait for the ready line (default 45)")


def _flash_bytes(v):
    """'4MB', '4MiB', 4194304 -> bytes; None if unknown."""
    if v is None:
        return None
    if isinstance(v, int):
        return v
    m = re.fullmatch(r"\s*(\d+)\s*(k|m)i?b?\s*", str(v), re.I)
    if not m:
        return None
    return int(m.group(1)) << (10 if m.group(2).lower() == "k" else 20)


def _expected(board, image):
    """(chip, flash bytes) the board profile asks for (the manifest's, else the profile's)."""
    chip = image.chip if image else None
    size = _flash_bytes(image.flash_size) if image else None
    if chip is None or size is None:
        from relayctl import boards

        r = boards.load_or_fail(board)
        chip = chip or r.values.get("chip.name")
        size = size or _flash_bytes(r.values.get("flash.size"))
    if isinstance(chip, str):
        chip = chip.lower().replace("-", "")
    return chip, size


def _ports(args):
    if args.port:
        return [args.port]
    if args.ports:
        ports = [p.strip() for p in args.ports.split(",") if p.strip()]
        if len(set(ports)) != len(ports):
            raise CliError("--ports lists a port twice: each board needs its own port")
        return ports
    from serial.tools import list_ports

    found = sorted(p.device for p in list_ports.comports() if p.vid in USB_VIDS)
    if not found:
        raise CliError("--all found no USB-serial board: none plugged in, a charge-only cable, or the CP210x/CH340 "
                       "driver is missing; check `ls /dev/ttyUSB* /dev/ttyACM*`")
    return found


def _image(args):
    from relayctl.flash import manifest

    if args.image:
        image = manifest.load(args.image)
        manifest.check_board(args.board, image.manifest, args.image)
        return image
    out_dir, man = manifest.built(args, Path(args.micropython) if args.micropython else None)
    return manifest.load(out_dir, man)


class Progress:
    """One status per port; one redrawn line on a TTY, milestone lines otherwise."""

    def __init__(self, ports):
        self.state = {p: "waiting" for p in ports}
        self.lock = threading.Lock()
        self.single = len(ports) == 1

    def set(self, port, text, milestone=True):
        with self.lock:
            self.state[port] = text
            if sys.stdout.isatty():
                out.progress("  ".join(f"{os.path.basename(p)}: {s}" for p, s in self.state.items()))
            elif milestone:
                out.info(f"{port}: {text}")

    def done(self):
        out.progress_done()


def _boot_check(session, port, expect, timeout, checking=False):
    """Read the console after reset. Native-USB boards (S3/C3) drop off the bus when they reset:
    then the port is opened again by name for a few seconds."""
    import time

    import serial

    from relayctl.flash.bootcheck import wait_ready

    try:
        return wait_ready(session.esp._port, port, expect, timeout, checking=checking)
    except (serial.SerialException, OSError):
        session.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            ser = serial.serial_for_url(port, 115200)
            break
        except (serial.SerialException, OSError) as e:
            if time.monotonic() > deadline:
                again = "run this again" if checking else "check it with --check-only"
                raise CliError(f"{port}: the port did not come back after the reset ({e}): replug the board and "
                               + again)
            time.sleep(0.3)
    try:
        return wait_ready(ser, port, expect, timeout, checking=checking)
    finally:
        ser.close()


def _fleet_key(args, image):
    """The site's fleet key when the build logs in to a fleet broker (each board gets its own login), else None."""
    import json

    from relayctl.flash.stamp import read_config

    if args.check_only or args.same_values or image.fs_offset is None:
        return None
    fl = json.loads(read_config(image)).get("fleet") or {}
    if not fl.get("enabled") or not (fl.get("user") or fl.get("command_key")):
        return None
    if not args.site:
        raise CliError(f"{args.image}: this build reports to the fleet as {fl.get('name')!r}: every board needs its own "
                       "fleet name and broker login, derived from the fleet key; add --site SITE.toml (the site file "
                       "with [fleet] key), nothing was written", 2)
    from relayctl.cmd_fleet import _fleet_key as key_of, _site

    return key_of(_site(args.site)[0])


def flash_one(args, port, image, expect, progress, fleet_key=None):
    """Flash one board; returns its inventory row. Raises CliError."""
    from relayctl.flash import stamp
    from relayctl.flash.esp import Session

    def on_progress(cur, total):
        progress.set(port, f"writing {100 * cur // max(total, 1)}%", milestone=False)

    progress.set(port, "connecting")
    # --check-only writes nothing, so it needs no flasher stub (some bridges and boards cannot run it).
    with Session(port, no_stub=args.no_stub or args.check_only, baud=args.baud, on_progress=on_progress) as s:
        chip, desc, mac, size = s.identity()
        mac_text = ":".join("%02x" % b for b in mac)
        progress.set(port, f"{desc}, MAC {mac_text}, flash {size or 'unknown'}")
        want_chip, want_size = expect
        problems = []
        if want_chip and chip != want_chip:
            problems.append(f"the chip is {chip.upper()} but profile {args.board} is for {want_chip.upper()}")
        if want_size and _flash_bytes(size) and _flash_bytes(size) != want_size:
            problems.append(f"the flash is {size} but profile {args.board} expects {want_size >> 20}MB")
        if problems and not args.force:
            raise CliError(f"{port}: {'; '.join(problems)}: wrong board profile or a different board variant; "
                           "pick the profile that matches (`relayctl boards list`), or add --force to flash anyway")
        if args.check_only:
            s.reset()
            progress.set(port, "waiting for the relay (press EN/RST if nothing happens)")
            version, got = _boot_check(s, port, None, args.boot_timeout, checking=True)
            progress.set(port, f"relay ready version={version} config={got}")
            return None
        values = {}
        if not args.same_values:
            image, values, missing = stamp.stamp(image, mac, fleet_key)
            if missing:
                progress.set(port, "note: this firmware has no setting for " + ", ".join(missing)
                             + "; those values are not personalised")
        progress.set(port, f"writing {len(image.data)} bytes at {image.offset:#x}")
        s.write(image.offset, image.data, force=args.force)
        progress.set(port, "written and verified (flash MD5 matches)")
        s.reset()
        version = ""
        if not args.no_boot_check:
            progress.set(port, "waiting for the relay to report ready")
            version, _ = _boot_check(s, port, image.config_sha256, args.boot_timeout)
            progress.set(port, f"relay ready version={version}, config hash matches")
    return {
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mac": mac_text, "board": args.board, "chip": chip, "ssid": values.get("ssid", ""),
        "wifi_password": values.get("wifi_password", ""), "proxy_host": values.get("proxy_host", ""),
        "proxy_port": values.get("proxy_port", ""), "proxy_user": values.get("proxy_user", ""),
        "proxy_password": values.get("proxy_password", ""), "admin_password": values.get("admin_password", ""),
        "mtproto_port": values.get("mtproto_port", ""), "mtproto_secret": values.get("mtproto_secret", ""),
        "fleet_name": values.get("fleet_name", ""),
        "firmware_sha256": image.sha256, "config_sha256": image.config_sha256 or "",
        "relay_version": version, "boot_checked": "no" if args.no_boot_check else "yes", "port": port,
    }


def _admin_note(args, image):
    """Where the flashed build's admin page answers, or plainly that it has none (and how to have one)."""
    import json

    from relayctl.boards.admin_side import where
    from relayctl.flash.stamp import read_config

    at = where(json.loads(read_config(image)))
    if at is None:
        return (f"admin page: none on this build ({args.board} has no wired side), so no admin password was made; "
                'to open it over the Wi-Fi set [admin] side = "wifi" in site.toml and build again: its password then '
                "crosses the air in the clear for anyone nearby (flashing.md, \"The admin page\")")
    return f"admin page: {at}; its password is each board's admin_password in {args.inventory}"


def run(args):
    from relayctl.flash import inventory

    ports = _ports(args)
    image = None if args.check_only else _image(args)
    expect = _expected(args.board, image)
    fleet_key = None if image is None else _fleet_key(args, image)
    progress = Progress(ports)
    results, failures = {}, {}

    def task(port):
        try:
            row = flash_one(args, port, image, expect, progress, fleet_key)
            if row is not None:
                inventory.add(args.inventory, row)
            results[port] = row
            progress.set(port, "done")
        except CliError as e:
            failures[port] = str(e)
            progress.set(port, "FAILED")
        except Exception:  # a bug: keep its traceback, but let the other boards finish
            failures[port] = f"{port}: internal error (a bug in relayctl, please report it):\n" + traceback.format_exc()
            progress.set(port, "FAILED")

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(ports)) as pool:
        list(pool.map(task, ports))
    progress.done()
    if len(ports) == 1 and failures:
        raise CliError(failures[ports[0]])
    for port in ports:
        if port in failures:
            out.error(failures[port])
    ok = [p for p in ports if p in results]
    if not args.check_only:
        for p in ok:
            r = results[p]
            fleet = f" fleet={r['fleet_name']}" if r["fleet_name"] else ""
            out.info(f"{p}: flashed {r['mac']} ssid={r['ssid'] or '-'}{fleet} -> {args.inventory}")
        if ok:
            out.info(_admin_note(args, image))
    out.info(f"{len(ok)} of {len(ports)} boards {'checked' if args.check_only else 'flashed'}"
             + (f"; failed: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0

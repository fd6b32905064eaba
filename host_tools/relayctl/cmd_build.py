"""Build a board's image (MicroPython) or install bundle (Linux) from its profile and a site file.

    relayctl build BOARD --site site.toml --out DIR [--micropython FILE]

Writes config.json, the littlefs image (and for the ESP32 family one merged
full-flash image; for the Pico W a UF2), or a .tar.gz bundle, plus
manifest.json with every file's sha256. Offline; same inputs, same bytes.
"""

from pathlib import Path

from relayctl import out
from relayctl.images import build_board


def add_arguments(p):
    p.add_argument("board", help="profile name (boards/NAME.toml) or a profile file")
    p.add_argument("--site", metavar="FILE", help="site.toml (`relayctl site init` writes one); default: open network \"relay\"")
    p.add_argument("--out", metavar="DIR", help="where the outputs go (default build/BOARD under the current directory)")
    p.add_argument("--micropython", metavar="FILE",
                   help="MicroPython firmware .bin for ESP32 boards (remembered for next time)")
    p.add_argument("--relay", metavar="NAME", help="which relay of the site's [mesh] this board is (mesh.md)")


def run(args):
    from relayctl.flash.manifest import profile_name

    args.out = args.out or str(Path("build") / profile_name(args.board))
    manifest = build_board(args.board, Path(args.site) if args.site else None, Path(args.out),
                           Path(args.micropython) if args.micropython else None, args.relay)
    for note in manifest["notes"]:
        out.warn(note)
    cap = manifest["capacity"]
    phones = "phone" if cap["phones"] == 1 else "phones"
    out.info(f"built {manifest['board']} into {args.out}: about {cap['tunnels']} tunnels, "
             f"about {cap['phones']} {phones} running Telegram")
    for name, f in manifest["files"].items():
        off = manifest["flash_offsets"].get(name)
        where = f"  (flash at 0x{off:x})" if off is not None else ""
        out.info(f"  {name:<34} {f['size']:>9}  sha256 {f['sha256'][:16]}{where}")
    board = manifest["board"]
    if manifest.get("admin"):
        out.info(f"admin page: {manifest['admin']} (password: [admin] password in the site file; an ESP32 gets its "
                 "own from `relayctl flash`, in inventory.csv)")
    else:
        out.info("admin page: none (site [admin] side; ESP32 and Pico W have no wired side: flashing.md, "
                 '"The admin page")')
    if manifest["merged_image"]:
        # relayctl flash, not esptool: it checks the chip, stamps this board's SSID and passwords, verifies and
        # writes the inventory row the printed card comes from.
        out.info(f"flash it: relayctl flash {board} --port PORT --image {args.out}")
    elif manifest.get("bundle"):
        out.info(f"install it: relayctl install {board} --host USER@HOST --image {args.out}  (or --root DIR)")
    elif manifest.get("uf2"):
        out.info(f"copy it: {Path(args.out) / 'FLASHING.txt'} says how (BOOTSEL drive)")
    elif manifest.get("filesystem"):  # the note above says why there is nothing to flash
        out.info(f"a board already running MicroPython takes it: relayctl deploy {board} --port PORT --image {args.out}")
    return 0

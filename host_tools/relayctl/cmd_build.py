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
    p.add_argument("--out", metavar="DIR", required=True, help="where the outputs go")
    p.add_argument("--micropython", metavar="FILE",
                   help="MicroPython firmware .bin for ESP32 boards (remembered for next time)")


def run(args):
    manifest = build_board(args.board, Path(args.site) if args.site else None, Path(args.out),
                           Path(args.micropython) if args.micropython else None)
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
    if manifest["merged_image"]:
        out.info(f"flash it: esptool --chip {manifest['chip']} write-flash 0x0 {Path(args.out) / manifest['merged_image']}")
    return 0

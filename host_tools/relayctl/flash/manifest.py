"""A build's manifest.json as flashing needs it: the merged image, where it
goes, where the filesystem sits inside it, and the hashes to check.

Input: the directory `relayctl build` wrote (relayctl.images.build_board's
manifest dict, also saved as manifest.json). Output: an Image. Every file is
checked against its sha256 before anything is written to a board, so a copy
damaged on the way to an offline laptop is caught on the table, not in the field.
"""

import hashlib
import json
from pathlib import Path

from relayctl.errors import CliError


def _int(v):
    if isinstance(v, str):
        return int(v, 0)
    return int(v)


def _files(manifest):
    """name -> {"sha256": .., "size": ..} whatever shape the manifest lists them in."""
    files = manifest.get("files", {})
    if isinstance(files, list):
        files = {f.get("path") or f.get("name"): f for f in files}
    return {k: (v if isinstance(v, dict) else {"sha256": v}) for k, v in files.items()}


class Image:
    """One ESP32 merged image: bytes, flash offset, filesystem region, config hash."""

    def __init__(self, data, offset, fs_offset, fs_size, config_sha256, board, chip, flash_size, manifest):
        self.data = data
        self.offset = offset
        self.fs_offset = fs_offset
        self.fs_size = fs_size
        self.config_sha256 = config_sha256
        self.board = board
        self.chip = chip
        self.flash_size = flash_size
        self.manifest = manifest

    @property
    def sha256(self):
        return hashlib.sha256(self.data).hexdigest()


def load(build_dir, manifest=None):
    build_dir = Path(build_dir)
    if manifest is None:
        path = build_dir / "manifest.json"
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            raise CliError(f"no manifest.json in {build_dir}: not a `relayctl build` output; "
                           "run `relayctl build BOARD --site site.toml --out DIR` first, or pass --site to flash")
        except ValueError as e:
            raise CliError(f"{path}: not valid JSON ({e}): the build output is damaged; build again")
    files = _files(manifest)
    merged = manifest.get("merged_image")
    if isinstance(merged, dict):
        merged_name = merged.get("path") or merged.get("file")
    else:
        merged_name = merged
    if not merged_name:
        if manifest.get("filesystem") and str(manifest.get("chip", "")).startswith("esp32"):
            raise CliError(f"{build_dir} holds only the filesystem: it was built without MicroPython firmware, "
                           "so there is no full-flash image to write; build again with --micropython FILE "
                           "(the MicroPython .bin for this chip from micropython.org)")
        raise CliError(f"{build_dir}/manifest.json has no merged_image: board {manifest.get('board')!r} "
                       "is not an ESP32 build; flash takes ESP32 boards (use install for Linux boards)")
    offsets = {k: _int(v) for k, v in (manifest.get("flash_offsets") or {}).items()}
    if isinstance(merged, dict) and "offset" in merged:
        offset = _int(merged["offset"])
    else:  # relayctl build: flash_offsets is keyed by file name
        offset = offsets.get(merged_name, offsets.get("merged_image", 0))
    for name, entry in files.items():
        p = build_dir / name
        if not p.exists():
            raise CliError(f"{p}: listed in manifest.json but missing: the build output is incomplete; build again")
        want = entry.get("sha256")
        if want and hashlib.sha256(p.read_bytes()).hexdigest() != want:
            raise CliError(f"{p}: sha256 does not match manifest.json: the file was changed or damaged "
                           "since the build (copy from USB stick?); build again or copy it again")
    data = (build_dir / merged_name).read_bytes()
    fs = manifest.get("filesystem") if isinstance(manifest.get("filesystem"), dict) else {}
    fs_offset = _int(fs["offset"]) if "offset" in fs else offsets.get("filesystem")
    fs_size = _int(fs["size"]) if "size" in fs else None
    if fs_size is None and fs_offset is not None:
        fs_size = offset + len(data) - fs_offset
    cfg = files.get("config.json", {}).get("sha256") or manifest.get("config_sha256")
    flash_size = manifest.get("flash_size") or (manifest.get("flash") or {}).get("size")
    return Image(data, offset, fs_offset, fs_size, cfg, manifest.get("board"), manifest.get("chip"),
                 flash_size, manifest)


def profile_name(board):
    """The name a build records for a board given by name or as a profile file (boards/x.toml -> x)."""
    return Path(board).stem if str(board).endswith(".toml") else str(board)


def check_board(board, manifest, build_dir):
    """--image must be a build of the board named on the command line: its config, chip and service are that
    board's; another board's build would be written and recorded under the wrong name."""
    got, want = manifest.get("board"), profile_name(board)
    if got and got != want:
        raise CliError(f"{build_dir} is a build of {got}, not {want}: nothing was written; give that board's "
                       f"build (relayctl build {want} --site ... --out DIR), or name the board it was made for")


def built(args, micropython=None):
    """(build directory, manifest dict) from --image DIR, or from building args.board now (into
    --out, default build/BOARD under the current directory, with --site). The one way flash, deploy and
    install get a build."""
    from relayctl import out

    if args.image:
        out_dir = Path(args.image)
        try:
            manifest = json.loads((out_dir / "manifest.json").read_text())
        except (OSError, ValueError) as e:
            raise CliError(f"{out_dir}/manifest.json: cannot read ({e}): not a `relayctl build` output; build first")
        check_board(args.board, manifest, out_dir)
        return out_dir, manifest
    from relayctl.images import build_board

    out_dir = Path(args.out or Path("build") / profile_name(args.board))  # under the current directory
    out.info(f"building {args.board} into {out_dir} ...")
    return out_dir, build_board(args.board, Path(args.site) if args.site else None, out_dir, micropython,
                                getattr(args, "relay", None))

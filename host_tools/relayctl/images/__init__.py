"""Build one board: config.json, compiled firmware, filesystem image or Linux bundle, manifest.json.

    build_board(board, site_path, out_dir, micropython=None) -> manifest dict

Steps: load and check the profile and site (every problem at once, CliError
status 2, nothing written); render config.json and check it with the
device's own checker; then per runtime:
  MicroPython: mpy-cross the relay package, lay main.py + relay/ + config.json
    into a littlefs2 image of the exact partition size; ESP32 family: merge
    the user's MicroPython firmware (--micropython, else the one cached for
    this chip) with it into one full-flash image; Pico W: a UF2 of the
    filesystem region.
  CPython: a tar.gz bundle with a systemd unit or procd script.
manifest.json names every output with its sha256. Outputs are written only
after every step succeeded. Same inputs, same bytes: no timestamps anywhere,
except MTProto's clock floor (mtproto.clock_hint: the day of the build, or
SOURCE_DATE_EPOCH). A site file offering MTProto without a secret gets one made and written back into
it (the only file a build changes besides its outputs), so the next build gives the same bytes.
Never uses the network.
"""

import datetime
import hashlib
import json
import os
from pathlib import Path

from relayctl import boards, paths
from relayctl.boards.capacity import estimate
from relayctl.boards.render import check_config, config_json, dumps, skipped_keys
from relayctl.images import esp32, fsimage, linux, mpy, pico
from relayctl.errors import CliError
from relayctl.fleet import site as fleet_site
from relayctl.files import write_private

MANIFEST = "manifest.json"
QR_MTPROTO = "qr-mtproto.svg"  # the portal's tg://proxy QR code, beside config.json on the device


def clock_hint():
    """The floor for the device's clock (mtproto.clock_hint): SOURCE_DATE_EPOCH when set, else the
    start of today (UTC). A day's precision is plenty for a floor, and builds of one day stay identical."""
    sde = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if sde.isdigit():
        return int(sde)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    return int(datetime.datetime(today.year, today.month, today.day, tzinfo=datetime.timezone.utc).timestamp())


def _mtproto(r, cfg, notes, site_path=None):
    """MTProto's build-time parts: a secret when the site lists none, the clock floor, the portal's QR.
    -> (QR svg bytes or None, secrets made here, the site file's new text or None).
    A secret made for a site file is written back into it ([mtproto] secrets), so the next build of the
    same inputs gives the same bytes; without a site file it is made afresh each build (and said so)."""
    from relayctl.cmd_mtproto import make_secret
    from relayctl.links import mtproto_link, qr_svg

    mt = cfg.get("mtproto")
    if not mt or not mt.get("enabled"):
        return None, [], None
    made, site_text = [], None
    if not mt["secrets"]:
        secret = make_secret("ee", r["mtproto.domain"]) if r["relay.public"] else make_secret("dd")
        mt["secrets"] = [secret]
        if site_path:
            from relayctl import sitefile

            site_text = sitefile.with_values(site_path, "mtproto", {"secrets": [secret]},
                                             comment="made by relayctl build; every build of this site uses it")
            notes.append(f"mtproto: {site_path} listed no secret: made {secret} and wrote it into {site_path} "
                         "([mtproto] secrets), so every build of this site gives the same bytes")
        else:
            made = [secret]
            notes.append(f"mtproto: no site file, so this build made a secret ({secret}) that the next build will "
                         "not repeat; every board flashed from it gets its own, but a Linux bundle keeps this one: "
                         "give --site FILE to keep one")
    mt["clock_hint"] = clock_hint()
    link = mtproto_link(cfg)
    if link is None:
        return None, made, site_text
    on_device = QR_MTPROTO if r["runtime"] == "micropython" else f"{r['linux.prefix']}/firmware/{QR_MTPROTO}"
    cfg["portal"]["qr_mtproto_svg"] = on_device
    return qr_svg(link), made, site_text


def _admin_password(r, cfg, notes, site_path, site_text):
    """A build that serves the admin page (boards/admin_side.py) carries the site's admin.password, one for all
    its relays; with none, one is made here and written into the site file ([admin] password), as an MTProto
    secret is, so the next build keeps it. `relayctl flash` then gives each ESP32 its own (a Pico W's UF2 and
    a Linux bundle keep the site's). -> the site file's new text (site_text when unchanged)."""
    from relayctl.boards.admin_side import where

    if where(cfg) is None or cfg.get("portal", {}).get("admin_password"):
        return site_text
    from relayctl.flash.stamp import password

    pw = password(12)
    cfg.setdefault("portal", {})["admin_password"] = pw
    if site_path:
        from relayctl import sitefile

        notes.append(f"admin: {site_path} had no admin password: made one and wrote it into {site_path} "
                     "([admin] password); every relay built from this site opens with it")
        return sitefile.with_values(site_path, "admin", {"password": pw}, text=site_text,
                                    comment="made by relayctl build; the admin page's password on every relay")
    notes.append(f"admin: no site file, so this build made an admin password ({pw}) that the next build will not "
                 "repeat: give --site FILE to keep one")
    return site_text


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _versions():
    from importlib.metadata import PackageNotFoundError, version

    out = {"mpy-cross": mpy.version()}
    for pkg in ("littlefs-python", "esptool", "relay-tools"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _relay_version():
    text = (paths.FIRMWARE / "relay" / "__init__.py").read_text()
    for line in text.splitlines():
        if line.startswith("VERSION"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return "unknown"


def build_board(board, site_path, out_dir, micropython=None, relay=None):
    """relay: which relay of the site's [mesh] this board is (else the site's mesh.relay)."""
    r = boards.load_or_fail(str(board), str(site_path) if site_path else None, relay)
    mesh = getattr(r, "mesh", None)
    if mesh is not None and mesh.this is None:  # else a relay with no mesh at all, built without a word
        raise CliError(f"{site_path} has [mesh.relays] ({', '.join(mesh.relays)}): give --relay NAME for the relay "
                       "this board is (or mesh.relay in the site file); nothing built", 2)
    notes = [str(p) for p in r.warnings]
    cfg = config_json(r)
    qr_mt, made, site_text = _mtproto(r, cfg, notes, site_path)
    site_text = _admin_password(r, cfg, notes, site_path, site_text)
    problems = check_config(cfg)
    if problems:
        raise CliError("the rendered config.json fails the device's own check (a bug in the renderer "
                       "or the profile):\n" + "\n".join(problems), 2)
    config = dumps(cfg)
    fleet_ca = fleet_site.ca_file(r, site_path)  # the broker's CA, beside config.json
    est = estimate(r)
    prefix = f"relay-{r.name}"
    outputs = {"config.json": config}  # name -> bytes, written at the end
    manifest = {
        "board": r.name,
        "description": r["description"],
        "runtime": r["runtime"],
        "chip": r["chip.name"],
        "relay_version": _relay_version(),
        "tools": _versions(),
        "inputs": {
            "profiles": [{"file": layer.path.name, "sha256": _sha(layer.path.read_bytes())} for layer in r.profile.chain],
            "site": {"file": Path(site_path).name,
                     "sha256": _sha(site_text.encode() if site_text else Path(site_path).read_bytes())}
            if site_path else None,
        },
        "capacity": est.as_dict(),
        "config_sha256": _sha(config),
        "config_keys_not_on_device": skipped_keys(r),
        "flash_offsets": {},
        "merged_image": None,
        "micropython": None,
        "mtproto": {"port": cfg["mtproto"]["port"], "secrets_made": made} if "mtproto" in cfg else None,
    }
    if r["runtime"] == "micropython":
        files = mpy.compile_tree(paths.FIRMWARE, r["chip.mpy_arch"])
        files["config.json"] = config
        if qr_mt:
            files[QR_MTPROTO] = qr_mt
        if fleet_ca:
            files[fleet_ca[0]] = fleet_ca[1]
        geo = fsimage.Geometry.of(r)
        image = fsimage.make_image(files, geo)
        fs_name = f"{prefix}-fs.img"
        outputs[fs_name] = image
        manifest["filesystem"] = dict(geo.as_dict(), offset=r["flash.fs_offset"], size=r["flash.fs_size"],
                                      image=fs_name, files={k: _sha(files[k]) for k in sorted(files)})
        manifest["flash_offsets"][fs_name] = r["flash.fs_offset"]
        manifest["flash_size"] = r["flash.size"]
        if r["chip.name"] in esp32.CHIP_IDS:
            _esp32(r, micropython, image, prefix, outputs, manifest, notes)
        elif r["flash.uf2_base"]:
            uf2_name = f"{prefix}-fs.uf2"
            outputs[uf2_name] = pico.uf2(image, r["flash.uf2_base"] + r["flash.fs_offset"], r["flash.uf2_family"])
            outputs["FLASHING.txt"] = pico.instructions(r, uf2_name, fs_name).encode()
            manifest["uf2"] = {"file": uf2_name, "address": r["flash.uf2_base"] + r["flash.fs_offset"],
                               "family": r["flash.uf2_family"]}
    else:
        files = {rel: (paths.FIRMWARE / rel).read_bytes() for rel in mpy.sources(paths.FIRMWARE)}
        files["config.json"] = config
        if qr_mt:
            files[QR_MTPROTO] = qr_mt
        if fleet_ca:
            files[fleet_ca[0]] = fleet_ca[1]
        outputs[f"{prefix}.tar.gz"] = linux.bundle(files, r)
        manifest["bundle"] = f"{prefix}.tar.gz"
        manifest["service"] = r["linux.service"]
    manifest["notes"] = notes
    from relayctl.boards.admin_side import where

    manifest["admin"] = where(cfg)  # where the admin page answers (None: nowhere); `relayctl build` says it
    manifest["files"] = {name: {"sha256": _sha(data), "size": len(data)} for name, data in sorted(outputs.items())}
    if site_text is not None:
        from relayctl import sitefile

        try:
            sitefile.write(site_path, site_text)  # only now: every step succeeded
        except OSError as e:
            what = []
            if cfg.get("mtproto", {}).get("enabled") and not r["mtproto.secrets"]:
                what.append(f'secrets = ["{cfg["mtproto"]["secrets"][0]}"] under [mtproto]')
            if cfg.get("portal", {}).get("admin_password") and not r["admin.password"]:
                what.append(f'password = "{cfg["portal"]["admin_password"]}" under [admin]')
            raise CliError(f"cannot write what the build made into {site_path} ({e.strerror}): nothing was "
                           f"built; add {' and '.join(what)} in it yourself, or make it writable", 2)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in outputs.items():
        write_private(out / name, data)  # config.json, and the images and bundles that carry it, hold secrets
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def _esp32(r, micropython, image, prefix, outputs, manifest, notes):
    if micropython:
        path = Path(micropython)
        try:
            fw = path.read_bytes()
        except OSError as e:
            raise CliError(f"cannot read {path}: {e.strerror}; pass the MicroPython .bin you downloaded", 2)
        name = path.name
    else:
        fw = esp32.cached(r["chip.name"])
        name = "cached"
        if fw is None:
            notes.append(f"no MicroPython firmware for {r['chip.name']}: built the filesystem only, which "
                         "`relayctl flash` cannot write (it writes one full-flash image); pass --micropython FILE "
                         f"(MicroPython {r['micropython.board']} .bin from micropython.org) to make one")
            return
    info, warnings = esp32.inspect_firmware(fw, r, name)
    notes.extend(warnings)
    if micropython:
        esp32.remember(fw, r["chip.name"], info)
    merged_name = f"{prefix}-flash.bin"
    outputs[merged_name] = esp32.merged_image(fw, image, r)
    manifest["merged_image"] = merged_name
    manifest["flash_offsets"][merged_name] = 0
    manifest["micropython"] = info.as_dict(name)
    manifest["micropython"]["offset"] = r["flash.bootloader_offset"]

"""Validators for board profiles and site files: tiny functions, combined.

Each validator takes a TOML value and returns the normalised value or raises
ProfileError(message). The loader adds the file, line and key path as the
error bubbles up, so a message here says only what is wrong with the value and
names the likely slip (missing quotes, a boolean written as text).
Nothing here reads files or knows about other keys; cross-key checks live in
checks.py.
"""

import ipaddress
import re


class ProfileError(Exception):
    """One problem with one value."""


def _show(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v + '"'
    return repr(v)


def text(v):
    if not isinstance(v, str):
        hint = " (put it in quotes)" if isinstance(v, (int, float, bool)) else ""
        raise ProfileError(f"expected text, got {_show(v)}{hint}")
    return v


def nonempty_text(v):
    if not text(v):
        raise ProfileError("expected text, got an empty string")
    return v


def boolean(v):
    if not isinstance(v, bool):
        hint = " (write true or false without quotes)" if v in ("true", "false", "yes", "no") else ""
        raise ProfileError(f"expected true or false, got {_show(v)}{hint}")
    return v


def integer(lo, hi):
    def check(v):
        if isinstance(v, str) and re.fullmatch(r"\s*(0x[0-9a-fA-F]+|\d+)\s*", v):
            raise ProfileError(f"expected a number, got text {_show(v)} (remove the quotes)")
        if isinstance(v, bool) or not isinstance(v, int):
            raise ProfileError(f"expected a whole number {lo}..{hi}, got {_show(v)}")
        if not lo <= v <= hi:
            raise ProfileError(f"{v} is out of range {lo}..{hi}")
        return v

    return check


port = integer(1, 65535)


def port_or_off(v):
    """A listen port, or 0 for a service the board does not run."""
    return 0 if v == 0 else port(v)


_MT_SECRET = re.compile(r"(dd)?[0-9a-f]{32}|ee[0-9a-f]{32}([0-9a-f]{2}){1,253}")


def mtproto_secret(v):
    """An MTProto proxy secret as tg://proxy links write it: 32 hex, dd + 32 hex, or ee + 32 hex + hex(domain)."""
    t = text(v).strip().lower()
    if not _MT_SECRET.fullmatch(t):
        hint = " (an ee secret needs the domain's hex after the 32 digits)" if t == "ee" + t[2:34] else ""
        raise ProfileError(f"expected an MTProto secret (`relayctl mtproto secret` makes one), got {_show(v)}{hint}")
    return t


_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def domain_or_empty(v):
    """A domain name like www.example.org, or "" for none."""
    t = text(v).strip().lower().rstrip(".")
    if t and not _DOMAIN.fullmatch(t):
        raise ProfileError(f"expected a domain name like www.example.org, got {_show(v)}")
    return t


def host_port_or_empty(v):
    """HOST[:PORT] (a name, an IPv4 address, or [IPv6]), or ""."""
    t = text(v).strip()
    if not t:
        return t
    m = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:(\d{1,5}))?", t)
    if not m or (m.group(3) and not 0 < int(m.group(3)) < 65536):
        raise ProfileError(f"expected HOST[:PORT] like 127.0.0.1:8443 or www.example.org, got {_show(v)}")
    return t


_SIZE = re.compile(r"\s*(\d+)\s*(KB|KiB|MB|MiB|K|M)?\s*", re.I)


def size(v):
    """Bytes as a number (0x200000) or text ("4MB", "848KiB"; K/M are powers of 1024 as in esptool)."""
    if isinstance(v, str):
        m = _SIZE.fullmatch(v)
        if not m:
            raise ProfileError(f'expected a size like 0x200000 or "4MB", got {_show(v)}')
        unit = (m.group(2) or "").upper().rstrip("IB").rstrip("B")
        return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024 * 1024}[unit]
    return integer(0, 1 << 40)(v)


def one_of(*choices):
    def check(v):
        if v not in choices:
            import difflib

            near = difflib.get_close_matches(str(v), choices, 1, 0.6)
            hint = f' (did you mean "{near[0]}"?)' if near else ""
            listed = ", ".join(c or '""' for c in choices)
            raise ProfileError(f"expected one of {listed}, got {_show(v)}{hint}")
        return v

    return check


def chip_name(micropython_chips, choices):
    """chip.name: one of choices. A chip not listed is "other" on a Linux board (relayctl only needs a MicroPython
    chip's name, to pick its firmware and code); a near miss of a MicroPython chip is named as one."""
    def check(v):
        if v in choices:
            return v
        import difflib

        near = difflib.get_close_matches(str(v), micropython_chips, 1, 0.75)
        hint = f'did you mean "{near[0]}"? ' if near else ""
        raise ProfileError(f"expected one of {', '.join(choices)}, got {_show(v)} ({hint}a Linux board's chip that "
                           'is not listed is "other", with its speed in chip.core_speed; a MicroPython board needs '
                           "one of " + ", ".join(micropython_chips) + ")")

    return check


def list_of(item, min_len=0):
    def check(v):
        if not isinstance(v, list):
            raise ProfileError(f"expected a list like [...], got {_show(v)}")
        if len(v) < min_len:
            raise ProfileError(f"expected at least {min_len} entries, got {len(v)}")
        out = []
        for i, x in enumerate(v):
            try:
                out.append(item(x))
            except ProfileError as e:
                raise ProfileError(f"entry {i + 1}: {e}")
        return out

    return check


def table_of(item):
    def check(v):
        if not isinstance(v, dict):
            raise ProfileError(f"expected a table like {{ name = ... }}, got {_show(v)}")
        out = {}
        for k in sorted(v):
            try:
                out[k] = item(v[k])
            except ProfileError as e:
                raise ProfileError(f"{k}: {e}")
        return out

    return check


def version(v):
    if not isinstance(v, str) or not re.fullmatch(r"\d+\.\d+(\.\d+)?", v):
        hint = " (write it as text: \"1.22\")" if isinstance(v, float) else ""
        raise ProfileError(f'expected a version like "1.22", got {_show(v)}{hint}')
    return v


def ipv4(v):
    try:
        return str(ipaddress.IPv4Address(text(v)))
    except ipaddress.AddressValueError:
        raise ProfileError(f"expected an IPv4 address like 192.168.4.1, got {_show(v)}")


def listen(v):
    """An address to listen on, or "" for the board's Wi-Fi address."""
    if v == "":
        return v
    try:
        return str(ipaddress.ip_address(text(v)))
    except ValueError:
        raise ProfileError(f'expected an IP address or "" (the Wi-Fi address), got {_show(v)}')


def ipv4_subnet(v):
    try:
        return str(ipaddress.IPv4Network(text(v), strict=True))
    except ValueError as e:
        raise ProfileError(f"expected a subnet like 192.168.4.0/24, got {_show(v)} ({e})")


def country(v):
    """ISO 3166-1 alpha-2, or "00" for the world regulatory domain."""
    if isinstance(v, str) and re.fullmatch(r"[a-z]{2}", v):
        raise ProfileError(f'expected a two-letter country code in capitals, got {_show(v)} (write "{v.upper()}")')
    if not isinstance(v, str) or not re.fullmatch(r"[A-Z]{2}|00", v):
        raise ProfileError(f'expected a two-letter country code like "KZ" (or "00" for world), got {_show(v)}')
    return v


def ssid(v):
    b = text(v).encode("utf-8")
    if not 1 <= len(b) <= 32:
        raise ProfileError(f"an SSID is 1-32 bytes, {_show(v)} is {len(b)} bytes")
    return v


def passphrase(v):
    """WPA2-PSK passphrase: 8-63 printable ASCII (IEEE 802.11i), or "" for an open network."""
    text(v)
    if v == "":
        return v
    bad = [c for c in v if not 32 <= ord(c) <= 126]
    if bad:
        raise ProfileError(f"a WPA2 passphrase is printable ASCII only; {bad[0]!r} is not")
    if not 8 <= len(v) <= 63:
        raise ProfileError(f"a WPA2 passphrase is 8-63 characters, this one has {len(v)}")
    return v


def language(v):
    if not isinstance(v, str) or not re.fullmatch(r"[a-z]{2,3}", v):
        raise ProfileError(f'expected a language code like "kk", "ru" or "en", got {_show(v)}')
    return v


# 2.4 GHz channels by regulatory domain. Most of the world (ETSI, Kazakhstan,
# Russia, China) allows 1-13; the Americas and Taiwan 1-11; Japan adds 14
# (802.11b only). "00" (world) is what a radio uses before it knows its country.
_CH24 = {"US": (1, 11), "CA": (1, 11), "MX": (1, 11), "TW": (1, 11), "00": (1, 11), "JP": (1, 14)}
# 5 GHz: the UNII-1 channels 36-48 are allowed almost everywhere without radar
# detection; 149-165 only where listed. DFS channels are left out on purpose.
_CH5_LOW = (36, 40, 44, 48)
_CH5_HIGH = (149, 153, 157, 161, 165)
_CH5_HIGH_OK = {"US", "CA", "AU", "NZ", "CN", "IN", "KZ", "RU", "SG", "TW", "KR", "BR"}


def channels_for(country_code, bands):
    """The channels a board with `bands` may use in `country_code`, as (label, set)."""
    allowed = set()
    parts = []
    if "2.4" in bands:
        lo, hi = _CH24.get(country_code, (1, 13))
        allowed.update(range(lo, hi + 1))
        parts.append(f"{lo}-{hi}")
    if "5" in bands:
        allowed.update(_CH5_LOW)
        parts.append("36-48")
        if country_code in _CH5_HIGH_OK:
            allowed.update(_CH5_HIGH)
            parts.append("149-165")
    return ", ".join(parts), allowed


def channel(v):
    return integer(1, 196)(v)

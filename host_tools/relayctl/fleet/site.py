"""A site file's [fleet] section: its checks, and the config.json keys it gives one relay.

pairs(r) -> [(dotted config key, value)]; check(r) adds problems to a Resolved profile; ca_bytes()
reads the broker's CA certificate for the image. The fleet key itself never reaches config.json.
"""

import re
from pathlib import Path

from relayctl.errors import CliError
from relayctl.fleet import keys

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
CA_PEM = "fleet-ca.pem"  # beside config.json on a Linux board
CA_DER = "fleet-ca.der"  # on a MicroPython board: its mbedtls reads DER only


def _port(r):
    return r["fleet.port"] or (8883 if r["fleet.tls"] else 1883)


def check(r):
    if not r["fleet.broker"]:
        return
    name = r["fleet.name"]
    if not name:
        r.problem("fleet.name", "fleet.broker is set: give this relay a name (e.g. almaty-01)")
    elif not NAME.fullmatch(name):
        r.problem("fleet.name", f'"{name}": use letters, digits, - and _ (it is an MQTT topic level and a login)')
    if r["fleet.tls"] and not r["fleet.ca_file"]:
        r.problem("fleet.ca_file", "fleet.tls is on: name the CA certificate (PEM) the broker's certificate chains to")
    if r["fleet.key"]:
        try:
            keys.parse_key(r["fleet.key"])
        except CliError as e:
            r.problem("fleet.key", str(e).split(": ", 1)[1])
    else:
        r.problem("fleet.key", "empty: the relay logs in without a password and takes no commands; "
                  "`relayctl fleet key` makes one", warning=True)
    p = r["fleet.prefix"]
    if "+" in p or "#" in p or p.startswith("/") or p.endswith("/"):
        r.problem("fleet.prefix", f'"{p}": a topic prefix like relay or city/relay (no + or #, no / at either end)')


def pairs(r):
    if not r["fleet.broker"]:
        return []
    name = r["fleet.name"]
    out = [("fleet.enabled", True), ("fleet.broker", r["fleet.broker"]), ("fleet.port", _port(r)),
           ("fleet.tls", r["fleet.tls"]), ("fleet.prefix", r["fleet.prefix"]), ("fleet.name", name),
           ("fleet.place", r["fleet.place"]), ("fleet.interval", r["fleet.interval"]),
           ("fleet.keepalive", r["fleet.keepalive"])]
    if r["fleet.tls"]:
        micro = r["runtime"] == "micropython"
        out.append(("fleet.ca_file", CA_DER if micro else f"{r['linux.prefix']}/firmware/{CA_PEM}"))
    if r["fleet.key"]:
        key = keys.parse_key(r["fleet.key"])
        out += [("fleet.user", name), ("fleet.password", keys.password(key, name)),
                ("fleet.command_key", keys.command_key(key, name))]
    return out


def ca_file(r, site_path):
    """(name, bytes) of the CA certificate to put beside config.json, or None without TLS."""
    if not r["fleet.broker"] or not r["fleet.tls"]:
        return None
    path = Path(r["fleet.ca_file"])
    if not path.is_absolute() and site_path:
        path = Path(site_path).parent / path
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CliError(f"cannot read fleet.ca_file {path}: {e.strerror}; the path is relative to the site file", 2)
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise CliError(f"fleet.ca_file {path}: not a PEM certificate; give the CA's .pem (or .crt) file", 2)
    if r["runtime"] == "micropython":
        return CA_DER, cert.public_bytes(Encoding.DER)
    return CA_PEM, cert.public_bytes(Encoding.PEM)

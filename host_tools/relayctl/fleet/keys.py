"""What the fleet key derives: each relay's broker password and command key, the volunteers' password,
and mosquitto's password-file hashes. Pure functions.

The fleet key stays on the volunteers' laptops. A relay gets only what belongs to it, so a relay taken
away can neither log in as another relay nor sign a command for one.
"""

import base64
import hashlib
import hmac
import os

from relayctl import paths
from relayctl.errors import CliError

_PASSWORD = b"relay-fleet-password|"
MOSQUITTO_ITERATIONS = 101  # mosquitto_passwd's default for $7$ (PBKDF2-SHA512)


def firmware_fleet():
    """firmware/relay/proto/fleet.py: commands are signed by the very code relays check them with."""
    return paths.firmware_module("relay.proto.fleet")


def new_key():
    return os.urandom(32).hex()


def parse_key(text, where="fleet key"):
    t = (text or "").strip().lower()
    try:
        key = bytes.fromhex(t)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise CliError(f"{where}: expected 64 hex digits; make one with `relayctl fleet key`", 2)
    return key


def password(key, account):
    """The broker password of one account (a relay's name, or the volunteers' account)."""
    return hmac.new(key, _PASSWORD + account.encode(), hashlib.sha256).hexdigest()[:32]


def command_key(key, name):
    return firmware_fleet().command_key(key, name).hex()


def mosquitto_hash(secret, salt=None):
    """One password_file entry's hash in mosquitto 2's format: $7$iterations$salt$pbkdf2-sha512."""
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, MOSQUITTO_ITERATIONS)
    return f"$7${MOSQUITTO_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"

"""mosquitto's configuration for a fleet: one account per relay, each allowed to write only its own
topics and read only its own command topic; one volunteers' account that reads every relay and writes
commands. render(...) -> {file name: text}; pure apart from the password salts.
"""

from relayctl.fleet import keys

MOSQUITTO_CONF = "mosquitto.conf"
PASSWD = "passwd"
ACL = "acl"


def acl(prefix, relays, volunteers):
    out = ["# Rendered by relayctl fleet broker-config. mosquitto denies whatever is not listed here.",
           "", f"user {volunteers}", f"topic read {prefix}/#", f"topic write {prefix}/+/command"]
    for name in relays:
        out += ["", f"user {name}", f"topic write {prefix}/{name}/status", f"topic write {prefix}/{name}/report",
                f"topic read {prefix}/{name}/command"]
    return "\n".join(out) + "\n"


def passwd(key, relays, volunteers, salt=None):
    return "".join(f"{a}:{keys.mosquitto_hash(keys.password(key, a), salt)}\n" for a in [volunteers] + list(relays))


def conf(directory, listen, port, tls=None):
    """tls: (certfile, keyfile) of the broker, or None for plain MQTT (a LAN or a WireGuard tunnel)."""
    d = str(directory).rstrip("/")
    lines = [
        "# Rendered by relayctl fleet broker-config: mosquitto -c " + f"{d}/{MOSQUITTO_CONF}",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {d}/{PASSWD}",
        f"acl_file {d}/{ACL}",
        "# Retained reports survive a broker restart; they hold counters only, never who or where.",
        "persistence true",
        f"persistence_location {d}/data/",
        "autosave_interval 300",
        "# Relays send at most one report a minute or so: small limits keep a flood from anyone else cheap.",
        "max_packet_size 8192",
        "max_queued_messages 100",
        "max_keepalive 3600",
        "connection_messages false",  # mosquitto would log each relay's address at every connect
        "log_type error",
        "log_type warning",
        "",
        f"listener {port} {listen}" if listen else f"listener {port}",
    ]
    if tls:
        lines += [f"certfile {tls[0]}", f"keyfile {tls[1]}", "tls_version tlsv1.2"]
    return "\n".join(lines) + "\n"


def render(directory, key, relays, volunteers, prefix, listen="", port=1883, tls=None, salt=None):
    return {MOSQUITTO_CONF: conf(directory, listen, port, tls), PASSWD: passwd(key, relays, volunteers, salt),
            ACL: acl(prefix, relays, volunteers)}

"""HOST[:PORT] from a command line or a config value, read as the relay reads it (firmware relay/addr.py).

split(text, default_port, what) -> (host, port), or CliError naming `what` (the option or key it came from).
"""

from relayctl import paths
from relayctl.errors import CliError


def split(text, default_port, what):
    try:
        return paths.firmware_module("relay.proto.addr").split_host_port(str(text).strip(), default_port)
    except ValueError:
        raise CliError(f"{what} {text}: expected HOST[:PORT] with a port 1..65535", 2)

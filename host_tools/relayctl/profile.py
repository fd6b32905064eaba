"""Board profiles (boards/*.toml) as far as `relayctl run` needs them.

run_config(name) -> the config.json content for running board `name` on this
computer: the same renderer `relayctl build` uses (relayctl.boards.render),
without a site file. A broken profile raises CliError (status 2) listing
every problem.
"""

from relayctl import boards
from relayctl.boards.render import config_json


def load_profile(name):
    """The checked profile (relayctl.boards.Resolved); raises CliError on any error."""
    return boards.load_or_fail(name)


def run_config(name):
    """config.json content for running board `name` on this computer."""
    return config_json(load_profile(name))

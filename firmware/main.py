"""Boot entry on a MicroPython board: read /config.json, bring up the platform, run the relay."""

import sys

from relay.__main__ import main

sys.exit(main(["--config", "config.json"]))

"""flashing.md says what the tools do: the inventory's columns as relayctl writes them."""

import re

from relayctl import paths
from relayctl.flash import inventory


def test_inventory_columns_in_flashing_md_are_the_ones_written():
    text = (paths.ROOT / "flashing.md").read_text()
    m = re.search(r"`inventory\.csv` gets one row per board that verified: `([^`]*)`", text)
    assert m, "flashing.md no longer lists the inventory's columns"
    listed = [c.strip() for c in m.group(1).replace("\n", " ").split(",")]
    assert listed == list(inventory.COLUMNS)

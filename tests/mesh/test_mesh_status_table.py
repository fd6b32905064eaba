"""`relayctl mesh status`'s table from the relays' /api/status answers (the netns test walks a live mesh)."""

from relayctl.cmd_mesh import render


def _st(name, addr, neighbours, service=""):
    return {"mesh": {"name": name, "address": addr, "neighbours": neighbours, "service": service, "carrier": None,
                     "relays": [], "phones": 0}, "uplink": None}


def test_a_neighbour_not_yet_named_by_babeld_shows_as_unknown_not_none():
    """A link seconds old: babeld knows the neighbour but no route from it names its relay address yet."""
    found = {"10.77.0.2": _st("r2", "10.77.0.2", [{"address": "10.77.0.5", "if": "w25", "cost": 311}]),
             "10.77.0.5": _st("r5", "10.77.0.5", [{"address": None, "if": "w52", "cost": 389}], service="10.77.1.5")}
    lines = {ln.split()[0]: ln for ln in render("10.77.0.2", found).splitlines()}
    assert "r5 (311)" in lines["r2"]
    assert "? on w52 (389)" in lines["r5"] and "None" not in lines["r5"]

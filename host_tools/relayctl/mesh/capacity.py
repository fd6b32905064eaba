"""How many phones one uplink carries in a mesh: arithmetic on the boards' capacity estimates.

Every tunnel of every phone in the mesh ends at an uplink relay (two sockets there: the one
from the phone's relay and the one to the destination), so an uplink relay carries at most
its own tunnel estimate's worth of phones, whoever's radio they joined. Relays in between
only route (the kernel forwards; no socket). The radio side sets the rest: each relay
brings about as many phones as its own radio associates. Air time on the mesh radio and
the uplink's bandwidth are not in these numbers; the uplink's rate is shared fairly per phone.
"""

from relayctl.boards.capacity import TUNNELS_PER_TELEGRAM_PHONE


class MeshCapacity:
    def __init__(self, relays):
        """relays: [(name, Capacity, has_uplink)]."""
        self.relays = relays
        self.phones = sum(c.phones for _, c, _ in relays)
        ups = [c for _, c, u in relays if u]
        self.uplinks = len(ups)
        self.carry = sum(c.tunnels // TUNNELS_PER_TELEGRAM_PHONE for c in ups)
        self.total = min(self.phones, self.carry)
        self.per_uplink = self.total // self.uplinks if self.uplinks else 0

    def sentence(self):
        n = len(self.relays)
        up = "one uplink" if self.uplinks == 1 else f"{self.uplinks} uplinks"
        why = (f"the radios of the {n} relays hold about {self.phones}" if self.phones <= self.carry else
               f"the uplink relays' tunnels carry about {self.carry}, though the radios hold {self.phones}")
        return f"a mesh of {n} relays with {up}: about {self.per_uplink} phones per uplink ({why})"


def uniform(name, cap, n):
    """n relays like this board, one of them with the uplink."""
    return MeshCapacity([(f"{name}-{i}", cap, i == 0) for i in range(n)])

"""Board profiles (boards/*.toml) and site files: schema, loader, checks, capacity, config.json.

    load(board, site_path=None) -> Resolved  (every problem in .problems, nothing raised)
    load_or_fail(board, site_path=None) -> Resolved, or CliError(status 2) listing every error
"""

from relayctl.boards.checks import Resolved, resolve
from relayctl.boards.loader import Problem, board_names, load_board, load_site, show_path
from relayctl.errors import CliError

__all__ = ["Problem", "Resolved", "board_names", "load", "load_or_fail", "show_path"]


def load(board, site_path=None, relay=None):
    """relay: which relay of the site's [mesh] this is (else the site's mesh.relay)."""
    prof = load_board(board)
    site = load_site(site_path) if site_path else None
    if not prof.chain or not prof.complete or (site and site.broken):
        return Resolved(prof, site)  # values are partial: checking them would only add noise
    r = resolve(prof, site)
    if site is not None:
        from relayctl.mesh.plan import apply, locate

        locate(r)  # a [mesh.relays.NAME] problem at its own line
        if not r.errors:
            apply(r, relay)  # a mesh: this relay's own addresses from the site's plan
    return r


def load_or_fail(board, site_path=None, relay=None):
    r = load(board, site_path, relay)
    if r.errors:
        raise CliError("\n".join(str(p) for p in r.errors) + f"\n{len(r.errors)} problem(s); nothing built", 2)
    return r

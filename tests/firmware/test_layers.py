"""The firmware's layers, read from its source: no import cycles, sans-I/O modules that load no I/O,
no reaching into another module's privates, runtime matters asked of the runtime.

Issue 14 restructures the I/O layer in two stages; the checks that its second stage makes pass are
marked xfail(strict=True), so they turn into failures (to be unmarked) the day they pass.
mpy-cross compiling every firmware file is tests/firmware/test_on_micropython.py's.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import layers

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
STAGE2 = pytest.mark.xfail(strict=True, reason="issue 14 stage 2")

# Protocol and data modules: bytes, text or numbers in, decisions and bytes out, no I/O of their own.
SANS_IO = ["relay.config", "relay.proto.addr", "relay.proto.const", "relay.proto.crypto", "relay.proto.dns",
           "relay.proto.dnsserver", "relay.proto.fleet", "relay.proto.guard", "relay.proto.httpproxy",
           "relay.proto.mtproto", "relay.proto.ntp", "relay.proto.policy", "relay.proto.portal",
           "relay.proto.portal_text", "relay.proto.share", "relay.proto.socks", "relay.proto.stats", "relay.proto.at"]
IO_MODULES = ("asyncio", "socket", "_socket", "select", "selectors", "relay.runtime")

# Library internals the runtime leans on, on purpose: they are the runtime's business, not another relay module's.
LIBRARY_PRIVATES = {
    "relay/runtime/cpython.py": ("._accept",),  # socket.socket's C accept, without the wrapper's extra object
    "relay/runtime/micropython.py": ("._io_queue",),  # MicroPython asyncio's poller, to wait on raw sockets
}


def _cycles_text(cyc):
    return "\n".join("  " + " -> ".join(c + [c[0]]) for c in cyc)


# -- the checks themselves, on a small tree whose answers are known ------------------------------


def _tree(tmp_path, files):
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return tmp_path


def test_the_walker_finds_every_kind_of_cycle(tmp_path):
    root = _tree(tmp_path, {
        "pkg/__init__.py": "def late():\n    from pkg import sub\n",  # a package importing its submodule
        "pkg/sub.py": "from pkg.deep import x\n",  # ... which runs pkg/__init__ again: pkg <-> pkg.sub
        "pkg/deep.py": "x = 1\n",
        "a.py": "import b\n",
        "b.py": "from pkg import deep\nimport c\n",
        "c.py": "def f():\n    import a\n",  # lazy: still a cycle a -> b -> c -> a
        "rel/__init__.py": "",
        "rel/m.py": "from . import n\n",  # relative, `from pkg import mod`
        "rel/n.py": "from .m import thing\n",
        "ok.py": "import os, json\nfrom pkg import deep\n",
    })
    cyc = layers.cycles(layers.imports(root))
    assert ["pkg", "pkg.sub"] in cyc
    assert ["rel.m", "rel.n"] in cyc
    assert ["a", "b", "c"] in cyc
    assert not [c for c in cyc if "ok" in c or "pkg.deep" in c]


def test_the_walker_finds_private_uses_and_leaks(tmp_path):
    root = _tree(tmp_path, {
        "one.py": """
            class Relay:
                __slots__ = ("_slot",)
                def _end(self, s):
                    self._helper = 1
                    other = Relay()
                    other._slot = 2  # its own class: fine
            """,
        "two.py": """
            import os
            from one import _end
            def go(relay):
                relay._end(None)
                self_like = relay
                return os.urandom(2)
            """,
    })
    uses = layers.private_uses(root)
    assert uses == ["two.py:3: from one import _end", "two.py:5: relay._end"], uses
    assert layers.calls(root, ("os.urandom",)) == ["two.py:7: os.urandom"]


# -- the firmware --------------------------------------------------------------------------------


@STAGE2
def test_no_import_cycles():
    cyc = layers.cycles(layers.imports(FIRMWARE))
    assert not cyc, "import cycles among firmware/ modules:\n" + _cycles_text(cyc)


@STAGE2
def test_only_the_entry_point_imports_the_server():
    """Sessions ask a public API (admit, route, connect, pump); server.py only listens, sweeps and stops."""
    graph = layers.imports(FIRMWARE)
    importers = sorted(m for m, deps in graph.items() if "relay.server" in deps and m != "relay.__main__")
    assert not importers, "import relay.server: " + ", ".join(importers)


@STAGE2
def test_no_module_uses_another_modules_privates():
    uses = [u for u in layers.private_uses(FIRMWARE, skip=("umqtt",))
            if not u.endswith(LIBRARY_PRIVATES.get(u.split(":")[0], ()) or ("\0",))]
    assert not uses, "another module's _private names:\n  " + "\n  ".join(uses)


def test_randomness_and_the_wall_clock_come_from_the_runtime():
    """runtime.random_bytes and runtime.wall_time: the latter knows the ESP32's 2000 epoch and an unset clock."""
    leaks = layers.calls(FIRMWARE, ("os.urandom", "time.time", "time.localtime", "time.gmtime"),
                         skip=("relay.runtime", "umqtt"))
    assert not leaks, "\n".join(leaks)


def _loaded_by_import(module):
    code = ("import sys, json; sys.path.insert(0, %r); before = set(sys.modules); import %s; "
            "print(json.dumps(sorted(set(sys.modules) - before)))" % (str(FIRMWARE), module))
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _check_sans_io(module):
    loaded = _loaded_by_import(module)
    bad = [m for m in loaded if m in IO_MODULES or m.startswith("relay.runtime.")]
    assert not bad, "import %s loads %s" % (module, ", ".join(bad))


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_module_loads_no_io(module):
    _check_sans_io(module)


def test_the_sans_io_check_can_fail():
    assert "relay.runtime" in _loaded_by_import("relay.services.resolve")

"""The firmware's layers, read from its source: no import cycles, every import pointing down the layers,
sans-I/O modules that load no I/O, no reaching into another module's privates, runtime matters asked of
the runtime (issue 14). mpy-cross compiling every firmware file is tests/firmware/test_on_micropython.py's.

The walker (tests/helpers/layers.py) is at least as strict as the project's pre-stop hook: it also counts
`from a.b import c` as an import of the packages a and a.b (Python runs their __init__ first).
"""

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import layers

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"

# The layers, lowest first (README, "How it is built"): a module imports modules of its own layer or below.
# A name ending in "." is a package and everything in it; others are one module.
LAYERS = [
    ("relay", "relay.proto.", "relay.config", "umqtt."),  # sans-I/O: protocols, the config check, VERSION
    ("relay.runtime.",),  # the one place that knows which Python runs us
    ("relay.platform.", "relay.log"),  # the board's own hardware; the logger
    ("relay.core.",),  # the seam: sessions, routes and the dial loop, tunnels
    ("relay.services.",),  # long-lived I/O: resolver, upstreams, mesh, sharing, clock ...
    ("relay.sessions.",),  # one driver per protocol
    ("relay.server",),  # listeners, the sweeper, start and stop
    ("relay.__main__", "main"),  # the entry points
]

# Protocol and data modules: bytes, text or numbers in, decisions and bytes out, no I/O of their own.
SANS_IO = ["relay.config"] + sorted(m for m in layers.modules(FIRMWARE) if m.startswith("relay.proto."))
# Where capabilities of the runtime are read (runtime.caps and the functions only some runtimes have).
CAPABILITY_READERS = ("relay.core.", "relay.server")
CAPABILITIES = ("caps", "start_fast_pump", "connect_start", "pipe")
IO_MODULES = ("asyncio", "socket", "_socket", "select", "selectors", "relay.runtime")

# Library internals the runtime leans on, on purpose: they are the runtime's business, not another relay module's.
LIBRARY_PRIVATES = {
    # socket.socket's C accept, without the wrapper's extra object; and this backend's own C half (the native
    # MTProto pump, as _ssl is ssl's), which no module outside runtime/ imports (epoll.py takes its Table
    # once a native way exists)
    "relay/runtime/cpython.py": ("._accept", "import _mtpump"),
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


def test_no_import_cycles():
    cyc = layers.cycles(layers.imports(FIRMWARE))
    assert not cyc, "import cycles among firmware/ modules:\n" + _cycles_text(cyc)


def test_only_the_entry_point_imports_the_server():
    """Sessions ask a public API (admit, route, connect, pump); server.py only listens, sweeps and stops."""
    graph = layers.imports(FIRMWARE)
    importers = sorted(m for m, deps in graph.items() if "relay.server" in deps and m != "relay.__main__")
    assert not importers, "import relay.server: " + ", ".join(importers)


def test_no_module_uses_another_modules_privates():
    uses = [u for u in layers.private_uses(FIRMWARE, skip=("umqtt",))
            if not u.endswith(LIBRARY_PRIVATES.get(u.split(":")[0], ()) or ("\0",))]
    assert not uses, "another module's _private names:\n  " + "\n  ".join(uses)


def _layer(module):
    for i, names in enumerate(LAYERS):
        for n in names:
            if module == n or (n.endswith(".") and (module + ".").startswith(n)):
                return i
    raise AssertionError("%s is in no layer: add it to LAYERS (and to README's layout)" % module)


def test_every_import_points_down_the_layers():
    graph = layers.imports(FIRMWARE)
    up = ["%s (layer %d) imports %s (layer %d)" % (m, _layer(m), d, _layer(d))
          for m in sorted(graph) for d in sorted(graph[m]) if _layer(d) > _layer(m)]
    assert not up, "imports that point up the layers:\n  " + "\n  ".join(up)


def test_capabilities_are_read_by_the_seam_only():
    """runtime.caps (and what only some runtimes have) is asked in relay/core and the server's wiring:
    sessions and services never branch on which runtime runs them."""
    found = []
    for mod, path in layers.modules(FIRMWARE).items():
        if mod.startswith("relay.runtime") or any(mod == r or (r.endswith(".") and (mod + ".").startswith(r))
                                                   for r in CAPABILITY_READERS):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "runtime" \
                    and (node.attr in CAPABILITIES or node.attr.startswith("HAS_")):
                found.append("%s:%d: runtime.%s" % (path.relative_to(FIRMWARE), node.lineno, node.attr))
    assert not found, "\n".join(found)


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
    assert "relay.runtime" in _loaded_by_import("relay.services.dns_resolver")


def test_the_layer_check_can_fail(tmp_path):
    root = _tree(tmp_path, {"relay/__init__.py": "", "relay/proto/__init__.py": "", "relay/core/__init__.py": "",
                            "relay/proto/x.py": "from relay.core import y\n", "relay/core/y.py": ""})
    graph = layers.imports(root)
    assert _layer("relay.proto.x") < _layer("relay.core.y") and "relay.core.y" in graph["relay.proto.x"]

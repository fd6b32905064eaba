"""const() for the protocol modules: MicroPython's compile-time constants, the value itself on CPython.

`X = const(5)` is folded into the bytecode by MicroPython's compiler (which goes by the name, wherever
const comes from), and a private `_X = const(5)` takes no room in the module's globals. Here, not in
the runtime, so that a protocol module loads no I/O when imported (tests/firmware/test_layers.py).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x

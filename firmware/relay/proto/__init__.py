"""The protocols, sans-I/O: bytes, text or numbers in, decisions and bytes out.

Nothing here opens a socket, reads a clock or a file, or imports relay.runtime: a module here imports
only its siblings (and pure parts of the standard library), so it loads the same on a board, in CPython
and in a host tool. Tests feed it bytes in any split.
"""

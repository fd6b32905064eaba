"""What firmware/ modules import and reach into, read from their source with `ast` (nothing is imported).

imports(root) -> {module: {module it imports, ...}} over every .py file under root (firmware/):
  - every import counts, also one inside a function (a lazy import still ties the two modules);
  - `import a.b.c` and `from a.b import c` also run a/__init__ and a/b/__init__: those count as imports
    of `a` and `a.b`, so a submodule that imports its own package is a cycle (relay.runtime <->
    relay.runtime.cpython); `from a.b import c` counts `a.b.c` when c is a module;
  - relative imports (`from . import x`, `from ..y import z`) are resolved against the importer;
  - only modules under root count (the standard library and PyPI packages are not ours).
cycles(graph) -> the shortest cycle through each edge that lies on one, each as a list of modules,
  deduplicated, shortest first.
private_uses(root) -> ["file:line: what", ...]: another module's `_private` names used, by attribute
  (`x._name` where x is not self/cls and the module defines no `_name` itself) or by import.
calls(root, names) -> ["file:line: name", ...] for calls of dotted names such as "os.urandom".

`python -m tests.helpers.layers [firmware]` prints the graph's cycles, the private uses and the
runtime leaks: the figures issue 14 asks for before and after its restructuring.
"""

import ast
import sys
from collections import deque
from pathlib import Path


def module_name(root, path):
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root):
    """{module name: path} for every .py under root."""
    root = Path(root)
    return {module_name(root, p): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def _parents(name):
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _resolve_from(mod, is_pkg, node):
    """The absolute module a `from X import ...` names."""
    if not node.level:
        return node.module
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(root):
    mods = modules(root)
    graph = {}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        out = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                for a in node.names:
                    names += _parents(a.name)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve_from(mod, is_pkg, node)
                names += _parents(target)
                names += [target + "." + a.name for a in node.names]
            out.update(n for n in names if n in mods and n != mod)
        graph[mod] = out
    return graph


def _shortest_path(graph, start, goal, within):
    prev = {start: None}
    todo = deque([start])
    while todo:
        n = todo.popleft()
        if n == goal:
            path = []
            while n is not None:
                path.append(n)
                n = prev[n]
            return path[::-1]
        for m in sorted(graph[n]):
            if m in within and m not in prev:
                prev[m] = n
                todo.append(m)
    return None


def components(graph):
    """Strongly connected components with more than one module (Tarjan's algorithm, iteratively)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            n, it = work[-1]
            for m in it:
                if m not in index:
                    index[m] = low[m] = counter[0]
                    counter[0] += 1
                    stack.append(m)
                    on.add(m)
                    work.append((m, iter(sorted(graph[m]))))
                    break
                if m in on:
                    low[n] = min(low[n], index[m])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[n])
                if low[n] == index[n]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on.discard(m)
                        comp.append(m)
                        if m == n:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def cycles(graph):
    found = set()
    for comp in components(graph):
        within = set(comp)
        for u in comp:
            for v in graph[u]:
                if v in within:
                    back = _shortest_path(graph, v, u, within)
                    cyc = [u] + back[:-1]
                    i = cyc.index(min(cyc))
                    found.add(tuple(cyc[i:] + cyc[:i]))
    return sorted((list(c) for c in found), key=lambda c: (len(c), c))


def _defined(tree):
    """Names a module defines: functions, classes, globals, self.attributes and __slots__ entries."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__"
                                                  for t in node.targets):
            for elt in ast.walk(node.value):
                if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                    names.add(elt.value)
    return names


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")) and name != "_"


def private_uses(root, skip=()):
    root = Path(root)
    out = []
    for mod, path in modules(root).items():
        if any(mod == s or mod.startswith(s + ".") for s in skip):
            continue
        tree = ast.parse(path.read_text(), str(path))
        own = _defined(tree)
        is_pkg = path.name == "__init__.py"
        rel = path.relative_to(root)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in own:
                base = node.value
                if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                    continue
                out.append("%s:%d: %s.%s" % (rel, node.lineno, ast.unparse(base), node.attr))
            elif isinstance(node, ast.ImportFrom):
                target = _resolve_from(mod, is_pkg, node)
                for a in node.names:
                    if _private(a.name):
                        out.append("%s:%d: from %s import %s" % (rel, node.lineno, target, a.name))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if any(_private(p) for p in a.name.split(".")[1:]):
                        out.append("%s:%d: import %s" % (rel, node.lineno, a.name))
    return out


def calls(root, names, skip=()):
    """Calls of dotted names (e.g. "os.urandom", "time.time") in modules outside skip."""
    root = Path(root)
    out = []
    for mod, path in modules(root).items():
        if any(mod == s or mod.startswith(s + ".") for s in skip):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                try:
                    name = ast.unparse(node.func)
                except Exception:
                    continue
                if name in names:
                    out.append("%s:%d: %s" % (path.relative_to(root), node.lineno, name))
    return out


def main(argv):
    root = Path(argv[0] if argv else Path(__file__).resolve().parents[2] / "firmware")
    graph = imports(root)
    cyc = cycles(graph)
    comps = components(graph)
    print("%d modules, %d import edges" % (len(graph), sum(len(v) for v in graph.values())))
    print("%d strongly connected groups, %d cycles (shortest through each edge):" % (len(comps), len(cyc)))
    for comp in comps:
        print("  group of %d: %s" % (len(comp), ", ".join(comp)))
    for c in cyc:
        print("  " + " -> ".join(c + [c[0]]))
    uses = private_uses(root, skip=("umqtt",))
    print("%d uses of another module's _private names:" % len(uses))
    for u in uses:
        print("  " + u)
    leaks = calls(root, ("os.urandom", "time.time"), skip=("relay.runtime",))
    print("%d runtime leaks (os.urandom, time.time outside runtime/):" % len(leaks))
    for u in leaks:
        print("  " + u)


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""Check that a Rust crate has no module cycles.

Usage: module-cycles.py [--graph] CRATE_ROOT.rs [MORE_ROOTS.rs ...]

The module tree is found the way rustc finds it: starting at the crate root,
every `mod name;` (any visibility) loads `name.rs` or `name/mod.rs`, honouring
`#[path = "..."]`.  Inline `mod name { ... }` blocks belong to the file module
that encloses them.  Test modules (`#[cfg(test)] mod ...`, inline or in a file)
are not modules of the graph at all and their references are skipped, because
test code may legitimately reach anywhere.

A reference is any path that starts with `crate::`, `super::` or `self::`, in
a `use` (grouped forms such as `use crate::{a::X, b::{Y, Z}}` included) or
anywhere in code.  Comments and string literals are ignored.  A path is
charged to the longest prefix that names a module: `crate::store::Store` is a
reference to `store`, `crate::store::records::JobSpec` one to `store::records`.

The rule: a module may use its ancestors and descendants freely (a submodule
is part of its parent).  Any other reference A -> B is lifted to the two
siblings under the lowest common ancestor of A and B, e.g. `a::x -> b::y`
becomes `a -> b`.  At every level of the tree the graph among siblings must be
acyclic.  Each cycle found is printed with one `file:line` per edge, and the
exit status is 1.  With --graph, the lifted edges among the crate root's
children are also printed as sorted `a -> b` lines.
"""
import os
import re
import sys
from collections import deque

STARTS = ("crate", "super", "self")  # path starts that stay in the crate
TOKEN = re.compile(r"""
    (?P<ws>\s+) | (?P<comment>//[^\n]*) | (?P<block>/\*)
  | (?P<raw>[bc]?r(?P<hashes>\#*)") | (?P<str>[bc]?"(?:\\.|[^"\\])*")
  | (?P<char>b?'(?:\\(?:u\{[0-9a-fA-F]*\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])')
  | (?P<lifetime>'\w+) | (?P<id>[A-Za-z_]\w*) | (?P<num>\d\w*)
  | (?P<p>::|.)""", re.X | re.S)


def lex(text):
    """Tokens as (kind, text, line); comments and whitespace are dropped."""
    toks, pos, line = [], 0, 1
    while pos < len(text):
        m = TOKEN.match(text, pos)
        kind, end = m.lastgroup, m.end()
        if kind == "block":  # block comments nest in Rust
            depth = 1
            while depth and end < len(text):
                if text.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif text.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
        elif kind == "raw":
            close = text.find('"' + m.group("hashes"), end)
            end = len(text) if close < 0 else close + 1 + len(m.group("hashes"))
        chunk = text[pos:end]
        if kind in ("str", "raw"):
            toks.append(("str", chunk[chunk.index('"') + 1:-1], line))
        elif kind in ("id", "p"):
            toks.append((kind, chunk, line))
        elif kind in ("char", "num", "lifetime"):
            toks.append(("lit", chunk, line))
        line += chunk.count("\n")
        pos = end
    return toks + [("eof", "", line)] * 3


def skip_group(toks, i):
    """Index just past the bracket group opening at toks[i]."""
    opens, closes, depth = "([{", ")]}", 0
    while toks[i][0] != "eof":
        t = toks[i][1] if toks[i][0] == "p" else ""
        depth += (t in opens) - (t in closes)
        i += 1
        if depth == 0:
            break
    return i


def parse_tree(toks, i, prefix, out):
    """Parse a path or use tree at toks[i]; append each leaf path to out."""
    segs = list(prefix)
    while True:
        kind, text, _ = toks[i]
        if text == "{" and kind == "p":  # group: `{a::X, b::{Y, Z}, self}`
            i += 1
            while toks[i][1] != "}" and toks[i][0] != "eof":
                j = parse_tree(toks, i, segs, out)
                i = j + (toks[j][1] == ",") if j > i else i + 1
            return i + 1
        if text == "*":
            out.append(segs)
            return i + 1
        if kind != "id":
            out.append(segs)
            return i
        segs.append(text)
        i += 1
        if toks[i][1] == "::":
            i += 1
            continue
        if toks[i][1] == "as":  # `X as Y`
            i += 2
        out.append(segs)
        return i


class Crate:
    def __init__(self, root):
        self.nodes = {(): root}   # module path -> file
        self.refs = []            # (from module, absolute path, file, line)
        self.parse(root, (), os.path.dirname(root))

    def parse(self, path, modpath, child_dir):
        """Walk one file; child_dir is where its own `mod x;` files live."""
        with open(path, encoding="utf-8") as f:
            toks = lex(f.read())
        attrs, inline, braces, i = [], [], [], 0
        while toks[i][0] != "eof":
            kind, text, line = toks[i]
            nxt = toks[i + 1][1]
            if kind == "p" and text == "#" and nxt in ("[", "!"):
                inner = nxt == "!"
                end = skip_group(toks, i + 1 + inner)
                if not inner:
                    attrs.append([t[1] for t in toks[i + 2:end - 1]])
                i = end
                continue
            if kind == "id" and text == "pub":  # keeps attrs; `pub(in crate::a)` is no reference
                i = skip_group(toks, i + 1) if nxt == "(" else i + 1
                continue
            if text == "mod" and kind == "id" and toks[i + 1][0] == "id":
                test = ["cfg", "(", "test", ")"] in attrs
                opener = toks[i + 2][1]
                if opener == "{" and test:
                    i = skip_group(toks, i + 2)  # test code may reach anywhere
                    attrs = []
                    continue
                if opener == "{":
                    inline.append(nxt)
                    braces.append(True)
                elif opener == ";" and not test:
                    lookup = os.path.join(child_dir, *inline)
                    path_base = lookup if inline else os.path.dirname(path)
                    self.load(nxt, attrs, modpath + tuple(inline), lookup, path_base)
                i += 3
                attrs = []
                continue
            attrs = []
            if kind == "p" and text == "{":
                braces.append(False)
            elif kind == "p" and text == "}" and braces and braces.pop():
                inline.pop()
            elif kind == "id" and text in STARTS and nxt == "::" and toks[i - 1][1] != "::":
                # `$crate::` in a macro_rules body names this crate too.
                leaves = []
                i = parse_tree(toks, i, [], leaves)
                for segs in leaves:
                    target = self.absolute(modpath + tuple(inline), segs)
                    if target is not None:
                        self.refs.append((modpath, target, path, line))
                continue
            i += 1

    def load(self, name, attrs, modpath, lookup, path_base):
        explicit = [a[2] for a in attrs if a[:2] == ["path", "="] and len(a) == 3]
        if explicit:
            candidates = [os.path.join(path_base, explicit[0])]
        else:
            candidates = [os.path.join(lookup, name + ".rs"),
                          os.path.join(lookup, name, "mod.rs")]
        found = [os.path.normpath(p) for p in candidates if os.path.isfile(p)]
        if not found:
            print(f"module-cycles: warning: no file for `mod {name};` "
                  f"(tried {', '.join(candidates)})", file=sys.stderr)
            return
        child = modpath + (name,)
        self.nodes[child] = found[0]
        # mod.rs and #[path] files own their directory; foo.rs owns foo/.
        own_dir = os.path.dirname(found[0])
        if not explicit and os.path.basename(found[0]) != "mod.rs":
            own_dir = os.path.join(own_dir, name)
        self.parse(found[0], child, own_dir)

    @staticmethod
    def absolute(here, segs):
        cur = list(here)
        for n, seg in enumerate(segs):
            if seg == "crate" and n == 0:
                cur = []
            elif seg == "super":
                if not cur:
                    return None
                cur.pop()
            elif seg != "self":
                cur.append(seg)
        return tuple(cur)

    def chain(self, mod):
        """The modules from the root down to mod, inclusive."""
        return [mod[:k] for k in range(len(mod) + 1) if mod[:k] in self.nodes]

    def lifted_edges(self):
        """{parent: {(child_a, child_b): (file, line)}} among siblings."""
        levels = {}
        for src, path, file, line in self.refs:
            dst = self.chain(path)[-1]
            if dst[:len(src)] == src or src[:len(dst)] == dst:
                continue  # ancestor or descendant: part of the same module
            ca, cb = self.chain(src), self.chain(dst)
            k = max(n for n in range(min(len(ca), len(cb))) if ca[n] == cb[n])
            edges = levels.setdefault(ca[k], {})
            key = (ca[k + 1], cb[k + 1])
            edges[key] = min(edges.get(key, (file, line)), (file, line))
        return levels


def successors(edges):
    succ = {}
    for a, b in sorted(edges):
        succ.setdefault(a, []).append(b)
        succ.setdefault(b, [])
    return succ


def sccs(edges):
    """Tarjan's strongly connected components of size > 1."""
    succ = successors(edges)
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = {stack.pop()}
            while v not in comp:
                comp.add(stack.pop())
            on.difference_update(comp)
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return out


def cycles(edges, comp):
    """Shortest simple cycles that together use every edge inside comp."""
    succ, covered, found = successors(edges), set(), []
    for a, b in sorted(e for e in edges if e[0] in comp and e[1] in comp):
        if (a, b) in covered:
            continue
        prev, queue = {b: None}, deque([b])  # breadth-first path b ~> a
        while a not in prev:
            v = queue.popleft()
            for w in succ[v]:
                if w in comp and w not in prev:
                    prev[w] = v
                    queue.append(w)
        path, v = [], a
        while v is not None:
            path.append(v)
            v = prev[v]
        cyc = [a] + path[::-1]
        covered.update(zip(cyc, cyc[1:]))
        found.append(cyc)
    return found


def name(mod):
    return "::".join(mod) or "crate"


def main(argv):
    graph = "--graph" in argv
    roots = [a for a in argv if a != "--graph"]
    if {"-h", "--help"} & set(roots):
        print(__doc__)
        return 0
    if not roots or not all(os.path.isfile(r) for r in roots):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    status = 0
    for root in roots:
        crate = Crate(root)
        levels = crate.lifted_edges()
        found = [(level, comp) for level in sorted(levels) for comp in sccs(levels[level])]
        summary = f"{len(found)} cycle group(s):" if found else "no cycles"
        print(f"module-cycles: {root}: {len(crate.nodes)} modules, {summary}")
        for level, comp in found:
            edges = levels[level]
            print(f"  under {name(level)}: {', '.join(sorted(map(name, comp)))}")
            for cyc in cycles(edges, comp):
                print("    " + " -> ".join(map(name, cyc)))
            print("  where:")
            for (a, b), (file, line) in sorted(edges.items()):
                if a in comp and b in comp:
                    print(f"    {name(a)} -> {name(b)}  {file}:{line}")
        status |= bool(found)
        if graph:
            for a, b in sorted(levels.get((), {})):
                print(f"{name(a)} -> {name(b)}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Lists functions longer than a limit, test code left out.

    hack/long_functions.py [limit] [dir...]    (default: 80 crates/planner/src crates/runtime/src)

A function's length runs from its `fn` line to the closing brace at the same
indentation (rustfmt's layout), so it is a line count, not a parse: good
enough to find the functions to split. Files named tests.rs, directories
named tests and items under `#[cfg(test)]` are skipped.
"""

import pathlib
import re
import sys

FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def indent(line):
    return len(line) - len(line.lstrip())


def item_end(lines, start, ind):
    """Index of the line closing the item that starts at `start`."""
    for j in range(start, len(lines)):
        line = lines[j]
        if j == start and line.rstrip().endswith((";", "{}")):
            return j
        if j > start and line.startswith(" " * ind + "}") and indent(line) == ind:
            return j
    return len(lines) - 1


def long_functions(path, limit):
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "#[cfg(test)]":
            i = item_end(lines, i + 1, indent(line)) + 1
            continue
        m = FN.match(line)
        if m:
            end = item_end(lines, i, len(m.group(1)))
            if end - i + 1 > limit:
                yield end - i + 1, i + 1, m.group(7)
        i += 1


def main():
    args = sys.argv[1:]
    limit = int(args.pop(0)) if args and args[0].isdigit() else 80
    roots = args or ["crates/planner/src", "crates/runtime/src"]
    found = []
    for root in roots:
        for path in sorted(pathlib.Path(root).rglob("*.rs")):
            if path.name == "tests.rs" or "tests" in path.parts:
                continue
            found += [(n, f"{path}:{line}", name) for n, line, name in long_functions(path, limit)]
    for n, where, name in sorted(found, reverse=True):
        print(f"{n:5} {where} {name}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

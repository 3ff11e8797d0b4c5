#!/usr/bin/env python3
"""The module walls of ARCHITECTURE.md, checked rather than hoped for.

    scripts/check_walls.py [ROOT]

Rules (a module is a folder src/modules/<name>/; its public header is
include/tenantflow/<name>.h; every other header there is a platform header):
  1. A module's files include only system headers (<...>), their own
     "internal.h", and headers from include/tenantflow/ (platform headers and
     other modules' public headers) -- never another module's files.
  2. Platform files (src/platform/) include no module's public header: the
     platform knows no business words.
  3. SQL in a module's C strings names only its own schema and platform.*.
     A schema is any `CREATE SCHEMA x` in migrations/; a module's own schema
     is its folder name, or the one listed in OWN_SCHEMA.
Prints one line per violation and exits 1 if there is any.
"""
import os
import re
import sys

OWN_SCHEMA = {"workflows": "workflow"}  # module folder -> schema it owns, when they differ
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def c_files(folder):
    for dirpath, _, names in os.walk(folder):
        for n in sorted(names):
            if n.endswith((".c", ".h")):
                yield os.path.join(dirpath, n)


def check(root):
    errors = []
    modules = sorted(d for d in os.listdir(os.path.join(root, "src", "modules"))
                     if os.path.isdir(os.path.join(root, "src", "modules", d)))
    public = set(os.listdir(os.path.join(root, "include", "tenantflow")))
    module_headers = {m + ".h" for m in modules}
    schemas = set()
    for dirpath, _, names in os.walk(os.path.join(root, "migrations")):
        for n in names:
            if n.endswith(".sql"):
                with open(os.path.join(dirpath, n), encoding="utf-8") as f:
                    schemas |= set(re.findall(r"(?i)\bCREATE\s+SCHEMA\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)",
                                              f.read()))
    schemas.discard("platform")

    def rel(path):
        return os.path.relpath(path, root)

    for m in modules:
        own = OWN_SCHEMA.get(m, m)
        foreign = sorted(schemas - {own})
        sql_ref = re.compile(r"\b(" + "|".join(map(re.escape, foreign)) + r")\.\w") if foreign else None
        for path in c_files(os.path.join(root, "src", "modules", m)):
            with open(path, encoding="utf-8") as f:
                lines = f.read().split("\n")
            for no, line in enumerate(lines, 1):
                inc = INCLUDE.match(line)
                if inc:
                    kind, name = inc.groups()
                    ok = kind == "<" or name == "internal.h" or (
                        name.startswith("tenantflow/") and name[len("tenantflow/"):] in public)
                    if not ok:
                        errors.append(f"{rel(path)}:{no}: module {m} includes \"{name}\"; only "
                                      "its own internal.h and include/tenantflow/ headers are allowed")
                    continue
                if sql_ref is None:
                    continue
                for s in STRING.findall(line):
                    # A whole string like "workflow.published" is an event or
                    # audit action name, not SQL.
                    if re.fullmatch(r"[a-z_]+\.[a-z_]+", s.strip()):
                        continue
                    for hit in sql_ref.finditer(s):
                        errors.append(f"{rel(path)}:{no}: module {m} (schema {own}) names schema "
                                      f"{hit.group(1)} in SQL: {s.strip()[:80]}")
    for path in c_files(os.path.join(root, "src", "platform")):
        with open(path, encoding="utf-8") as f:
            for no, line in enumerate(f, 1):
                inc = INCLUDE.match(line)
                if not inc or inc.group(1) == "<":
                    continue
                name = inc.group(2)
                base = name[len("tenantflow/"):] if name.startswith("tenantflow/") else name
                if base in module_headers or "modules/" in name:
                    errors.append(f"{rel(path)}:{no}: platform file includes module header \"{name}\"")
    return errors


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    errors = check(os.path.abspath(root))
    for e in errors:
        print(e)
    print(f"module walls: {len(errors)} violation(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

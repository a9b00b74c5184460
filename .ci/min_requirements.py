"""Print pyproject.toml's dependencies (and the test extras) pinned to their floors, one per line.

``name>=X`` becomes ``name==X``; a requirement without a floor stays as written; torch is left out
(the machine's build is installed separately, see scripts/torch_spec.sh). Self-references such as
``trice-tools[dense,bench]`` are expanded into those extras' requirements.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(.*)$")


def pinned(spec: str) -> str:
    """``bm25s[core]>=0.2.6`` -> ``bm25s[core]==0.2.6``; ``==``-pinned and bare names unchanged."""
    name, extras, rest = REQUIREMENT.match(spec).groups()
    floor = re.search(r">=\s*([^,;\s]+)", rest)
    return f"{name}{extras or ''}=={floor.group(1)}" if floor else spec


def requirements(project: dict, extras: list[str]) -> list[str]:
    out, todo, seen = list(project["dependencies"]), list(extras), set()
    optional = project.get("optional-dependencies", {})
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for spec in optional[extra]:
            name, own, _ = REQUIREMENT.match(spec).groups()
            if name == project["name"]:
                todo.extend(own.strip("[]").split(","))
            else:
                out.append(spec)
    return out


def main(argv: list[str]) -> int:
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    for spec in dict.fromkeys(requirements(project, argv or ["test"])):
        if REQUIREMENT.match(spec).group(1) != "torch":
            print(pinned(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

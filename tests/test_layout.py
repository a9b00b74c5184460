"""The layout rules of scripts/check_layout.py: on the real package, and on small fixture packages
that break each rule once, so a checker that stopped seeing a violation fails here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_layout.py"


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layout", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


layout = load_checker()


def package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package ``pkg`` under ``tmp_path`` with ``files`` (paths relative to it), ``__init__.py`` everywhere."""
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return root


def kinds(root: Path) -> list[tuple[str, str]]:
    return [(v.kind, v.message) for v in layout.check(root)]


def cycles(root: Path) -> list[str]:
    return [message for kind, message in kinds(root) if kind == "import-cycle"]


def test_the_trice_package_keeps_the_layout_rules() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "check_layout: 0 violation(s) in trice"


def test_a_clean_package_passes(tmp_path: Path) -> None:
    root = package(
        tmp_path,
        {
            "a.py": "from pkg.sub import helper\nfrom pkg.sub.b import public\nimport pkg.sub.c\n",
            "sub/__init__.py": "from pkg.sub.b import public as helper\n",
            "sub/b.py": "from pkg.sub import _impl  # its own package's private module\nfrom . import c\npublic = 1\n",
            "sub/_impl.py": "def late():\n    from pkg.sub.c import __doc__\n",
            "sub/c.py": "",
        },
    )
    assert kinds(root) == []


def test_a_cycle_made_only_by_an_import_inside_a_function_is_reported(tmp_path: Path) -> None:
    root = package(
        tmp_path,
        {
            "a.py": "from pkg import b\n",
            "b.py": "def late():\n    from pkg.c import x  # inside a function: still a circle\n    return x\n",
            "c.py": "import pkg.a\nx = 1\n",
            "d.py": "from pkg import a\n",  # imports into the circle, is not on it
        },
    )
    (message,) = cycles(root)
    assert "3 modules import each other: pkg.a, pkg.b, pkg.c;" in message
    assert "pkg.a -> pkg.b (line 1) -> pkg.c (line 2) -> pkg.a (line 1)" in message


def test_importing_a_submodule_runs_its_parent_package(tmp_path: Path) -> None:
    """x imports sub.y, which runs sub/__init__, which imports x: a circle no import names whole."""
    root = package(tmp_path, {"x.py": "from pkg.sub.y import z\n", "sub/__init__.py": "from pkg import x\n", "sub/y.py": "z = 1\n"})
    (message,) = cycles(root)
    assert "pkg.sub, pkg.x" in message


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    root = package(tmp_path, {"sub/a.py": "from . import b\n", "sub/b.py": "from ..sub.a import name\n"})
    (message,) = cycles(root)
    assert "pkg.sub.a, pkg.sub.b" in message


FLOORS = ("low", "mid", "top")


def test_an_import_up_a_floor_is_reported_once_per_statement_also_inside_a_function(tmp_path: Path) -> None:
    root = package(
        tmp_path,
        {
            "low/a.py": "def late():\n    from pkg.top.c import x  # inside a function: still runs\n    return x\n",
            "mid/b.py": "from pkg.low.a import late\nimport pkg.low\n",  # down: allowed
            "top/c.py": "from pkg.mid.b import late\nx = 1\n",
            "mid/d.py": "from pkg.top import c\n",  # names the module through its package: one statement, one report
        },
    )
    found = layout.check(root, order=FLOORS)
    assert sorted((v.path.relative_to(root).as_posix(), v.line, v.message) for v in found if v.kind == "upward-import") == [
        ("low/a.py", 2, "pkg.low.a (low) imports pkg.top.c (top), a floor above it"),
        ("mid/d.py", 1, "pkg.mid.d (mid) imports pkg.top.c (top), a floor above it"),
    ]
    circles = [v for v in found if v.kind == "import-cycle"]
    assert len(circles) == 1 and len(found) == 3
    assert layout.check(root) == circles  # no order: no floors


def test_a_package_off_the_order_is_reported(tmp_path: Path) -> None:
    root = package(tmp_path, {"low/a.py": "", "stray/b.py": "from pkg.low import a\n"})
    assert kinds(root) == []
    assert [(v.kind, v.message) for v in layout.check(root, order=FLOORS)] == [
        ("unplaced-package", "stray is not in the package order ['low', 'mid', 'top']; place it on its floor")
    ]


def test_the_command_checks_trices_order_unless_told_another(tmp_path: Path) -> None:
    root = package(tmp_path, {"low/a.py": "from pkg.top import b\n", "top/b.py": ""})
    told = subprocess.run([sys.executable, str(SCRIPT), str(root), "--order", "low,top"], capture_output=True, text=True)
    assert told.returncode == 1 and "upward-import" in told.stdout
    assert subprocess.run([sys.executable, str(SCRIPT), str(root), "--order", "top,low"], capture_output=True, text=True).returncode == 0
    default = subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True)
    assert default.returncode == 1 and "low is not in the package order" in default.stdout


def test_a_function_over_the_limit_is_reported_without_its_decorators(tmp_path: Path) -> None:
    body = "    x = 1\n" * 58 + "    return x\n"  # with its def line: 60 lines
    root = package(
        tmp_path,
        {
            "fits.py": "import functools\n\n\n@functools.cache\n@functools.wraps(print)\ndef fits():\n" + body,
            "long.py": "class Holder:\n    def method(self):\n" + textwrap.indent(body, "    ") + "        return x\n",
        },
    )
    assert kinds(root) == [("long-function", "Holder.method is 61 lines (max 60)")]


def test_a_module_over_the_limit_is_reported(tmp_path: Path) -> None:
    root = package(tmp_path, {"fits.py": "x = 1\n" * 400, "long.py": "x = 1\n" * 401})
    assert kinds(root) == [("long-module", "pkg.long is 401 lines (max 400)")]


def test_importing_another_modules_private_name_is_reported(tmp_path: Path) -> None:
    root = package(
        tmp_path,
        {
            "m.py": "_secret = 1\n__version__ = '1'\n",
            "user.py": "from pkg.m import __version__\nfrom pkg.m import (\n    _secret,\n)\n",
            "sub/_impl.py": "",
            "outsider.py": "import pkg.sub._impl\n",
        },
    )
    assert sorted(kinds(root)) == [("private-import", "imports private module pkg.sub._impl"), ("private-import", "imports private name '_secret' of pkg.m")]


def test_the_command_prints_one_line_per_violation_and_fails(tmp_path: Path) -> None:
    root = package(tmp_path, {"a.py": "from pkg import b\n", "b.py": "from pkg.a import _x\n"})
    done = subprocess.run([sys.executable, str(SCRIPT), str(root), "--order", ""], capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 1
    assert lines[0].startswith(f"{root / 'b.py'}:1: private-import: ") and lines[1].startswith(f"{root / 'a.py'}:1: import-cycle: ")
    assert lines[2] == f"check_layout: 2 violation(s) in {root} (1 import-cycle, 1 private-import)"


@pytest.mark.parametrize("where", ["missing", "not-a-package"])
def test_the_command_refuses_a_directory_that_is_no_package(tmp_path: Path, where: str) -> None:
    (tmp_path / "not-a-package").mkdir()
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / where)], capture_output=True, text=True)
    assert done.returncode == 2 and "is not a package directory" in done.stderr


def test_the_docs_module_map_is_the_package_order() -> None:
    """docs/layout.md's table of packages is the checker's floors, bottom first, and the listing of
    trice/: a package added, renamed, removed or moved to another floor without the map following
    fails here."""
    page = (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")
    section = page.split("# How the code is laid out", 1)[1].split("\n## ", 1)[0]
    mapped = [line.split("`")[1].strip("/") for line in section.splitlines() if line.startswith("| `trice/")]
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "trice").glob("*/__init__.py")}
    assert mapped == [f"trice/{name}" for name in layout.PACKAGE_ORDER]
    assert set(mapped) == packages
    tested = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert {p.split("/")[1] for p in packages} <= tested  # tests/ mirrors every package


def test_every_test_path_ci_names_exists() -> None:
    """The fast tests `make test-min` runs on the lowest dependency versions, named by path in
    .ci/min_versions.sh: a test file moved or renamed without it stops CI with 'file not found'."""
    script = (ROOT / ".ci" / "min_versions.sh").read_text(encoding="utf-8")
    listed = script.split("TESTS=(", 1)[1].split(")", 1)[0].split()
    assert listed and [p for p in listed if not (ROOT / p).exists()] == []

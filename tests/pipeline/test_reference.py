"""docs/recipe-keys.md is generated from the config dataclasses: it fails here when stale, and it
names every key a recipe is checked against."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from trice.pipeline.recipe import recipe_class
from trice.pipeline.reference import main, recipe_reference
from trice.pipeline.settings import SECTIONS, TRAINERS
from trice.stage2.candidate_sources import SOURCE_KINDS

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "recipe-keys.md"


def test_the_reference_in_docs_is_current() -> None:
    assert PAGE.read_text() == recipe_reference(), "docs/recipe-keys.md is stale: run `python -m trice.pipeline.reference docs/recipe-keys.md`"


def test_every_recipe_key_is_in_the_reference(tmp_path: Path) -> None:
    text = recipe_reference()
    for f in dataclasses.fields(recipe_class()):
        assert f"`{f.name}`" in text or f"## `{f.name}:`" in text, f.name
    for section, (trainer, _) in SECTIONS.items():
        assert f"## `{section}:` ({TRAINERS[trainer].config_class.__name__})" in text
    assert all(f"### `kind: {kind}`" in text for kind in SOURCE_KINDS)
    assert "| `learning_rate` | `float` | `0.0001` |" in text and "| `max_steps` | `int` | `-1` |" in text
    assert "`str \\| None`" in text  # a union's bar escaped: the table keeps its columns
    assert main([str(tmp_path / "keys.md")]) == 0 and (tmp_path / "keys.md").read_text() == text
    assert "docs/recipe-keys.md" in (ROOT / "README.md").read_text()

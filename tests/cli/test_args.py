"""Commands that only judge or score text start without torch or transformers, and the flags built
without transformers are the ones HfArgumentParser built: same --help text, same parsed values."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trice.cli import commands
from trice.cli.args import dataclass_parser
from trice.utils.io import write_jsonl

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers")


def config_class(command: str) -> type:
    module, name = commands()[command][0].split(":")
    return getattr(importlib.import_module(module), name)


def heavy_modules_after(argv: list[str], cwd: Path) -> tuple[dict, list[str]]:
    """Run ``trice ARGV`` in a fresh interpreter; its summary and which of torch/transformers it imported."""
    code = (
        "import json, sys\nfrom trice.cli import main\n"
        f"rc = main({argv!r})\n"
        f"print(json.dumps({{'rc': rc, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["rc"] == 0, done.stderr
    return json.loads(lines[-2]), result["heavy"]


def test_evaluate_and_score_on_math_import_neither_torch_nor_transformers(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "dataset": "svamp", "answers": ["3"], "response": "calculator(1+2)"}])
    summary, heavy = heavy_modules_after(["evaluate", "--task", "math", "--input", "r.jsonl", "--output", "j.jsonl"], tmp_path)
    assert summary["accuracy"]["total"] == 1.0 and heavy == []
    write_jsonl(tmp_path / "c.jsonl", [{"id": "q", "answers": ["72"], "responses": ["calculator(48+48/2)", "It is 70."], "sources": ["gold", "b"]}])
    summary, heavy = heavy_modules_after(["score", "--task", "math", "--input", "c.jsonl", "--output", "s.jsonl"], tmp_path)
    assert summary["n"] == 1 and heavy == []


def test_evaluate_on_direct_qa_answers_loads_no_reader(tmp_path: Path, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRICE_DATA_DIR", str(data_dir))  # WikiSearch is built, though no call needs it
    write_jsonl(tmp_path / "r.jsonl", [{"id": "a", "dataset": "webq", "task": "qa", "question": "who?", "answers": ["Bob"], "response": "Bob did"}])
    summary, heavy = heavy_modules_after(["evaluate", "--task", "qa", "--input", "r.jsonl", "--output", "j.jsonl"], tmp_path)
    assert summary["accuracy"]["total"] == 1.0 and heavy == []


@pytest.mark.parametrize("command", sorted(commands()))
def test_flags_and_help_are_hf_argument_parsers(command: str) -> None:
    from transformers import HfArgumentParser

    cls, about = config_class(command), commands()[command][2]
    ours, theirs = dataclass_parser(cls, prog=f"trice {command}", description=about), HfArgumentParser(cls, prog=f"trice {command}", description=about)
    assert ours.format_help() == theirs.format_help()
    keys = ("option_strings", "dest", "default", "nargs", "const", "required", "help")
    assert [[getattr(a, k) for k in keys] for a in ours._actions] == [[getattr(a, k) for k in keys] for a in theirs._actions]


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("generate", ["--do_sample", "--batch_size", "3", "--temperature", "0.5", "--adapter", "a", "--endpoint-workers", "2"]),
        ("generate", ["--do_sample", "false", "--stop_after_call", "yes"]),
        ("data", ["--datasets", "svamp", "gsm8k", "--n_train", "4", "--test_fraction", "0.2"]),
        ("train-rlef", ["--no_resume", "--no-select-start", "--target_modules", "q_proj", "k_proj"]),
        ("train-sft", ["--resume", "false", "--learning_rate", "1e-4"]),
    ],
)
def test_parsed_values_are_hf_argument_parsers(command: str, argv: list[str]) -> None:
    from transformers import HfArgumentParser

    cls = config_class(command)
    assert vars(dataclass_parser(cls).parse_args(argv)) == vars(HfArgumentParser(cls).parse_args(argv))


def test_mapping_flags_take_a_yaml_mapping(capsys) -> None:
    """A dict field takes a YAML mapping (HfArgumentParser's own parsing would call dict() on the string)."""
    parser = dataclass_parser(config_class("evaluate"))
    assert parser.parse_args(["--tools", "{QA: {k: 3}}"]).tools == {"QA": {"k": 3}}
    with pytest.raises(SystemExit):
        parser.parse_args(["--tools", "[1, 2]"])
    assert "expected a YAML mapping" in capsys.readouterr().err

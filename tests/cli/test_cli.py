"""Every subcommand has --help from its config dataclass; YAML configs feed the same keys."""

from __future__ import annotations

import pytest

from trice.cli import commands, main


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_command_has_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: trice {command}" in out and "--config" in out


def test_top_level_help_lists_commands(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ["run", *commands()])
    assert main(["nonsense"]) == 2


def test_yaml_config_feeds_flags_and_flags_win(tmp_path, capsys) -> None:
    from trice.utils.io import write_jsonl

    src = tmp_path / "r.jsonl"
    write_jsonl(src, [{"id": "a", "dataset": "svamp", "answers": ["3"], "response": "calculator(1+2)"}])
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(f"task: math\ninput: {src}\noutput: {tmp_path / 'wrong.jsonl'}\n")
    assert main(["evaluate", "--config", str(cfg), "--output", str(tmp_path / "j.jsonl")]) == 0
    assert (tmp_path / "j.jsonl").is_file() and not (tmp_path / "wrong.jsonl").exists()
    cfg.write_text("task: math\ninptu: x\n")
    assert main(["evaluate", "--config", str(cfg)]) == 2
    assert f"{cfg}: unknown key 'inptu'" in capsys.readouterr().err


def test_run_stages_flag_takes_a_comma_list_and_names_a_wrong_stage(tmp_path, capsys) -> None:
    code = main(["run", "math_bench", "--run-dir", str(tmp_path / "r"), "--stages", "data, nope"])
    assert code != 0
    assert "--stages: no stage 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before the run directory was claimed

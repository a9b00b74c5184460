"""What once ended in a traceback ends in one line: Ctrl-C (exit 130), a file that cannot be written
for want of room (exit 2, and a rerun resumes), a run directory whose name is not UTF-8, a truncated
adapter; and ``--status`` reads a run without writing to it (so it works on a read-only run directory)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from trice.cli import main

ROOT = Path(__file__).resolve().parents[2]
ENV = os.environ | {"PYTHONPATH": str(ROOT)}
# Runs ``trice`` under a file-size limit (argv[1] bytes), SIGXFSZ ignored: a write past the limit fails
# with EFBIG as one past a full disk fails with ENOSPC.
LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from trice.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _examples(path: Path, n: int) -> Path:
    rows = [{"id": f"e{i}", "dataset": "svamp", "task": "math", "question": f"What is {i} + 1?", "answers": [str(i + 1)]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _no_traceback(err: str, line: str) -> None:
    assert "Traceback" not in err, err[-3000:]
    assert line in err, err[-3000:]


def test_ctrl_c_during_generate_is_one_line_and_exit_130(tmp_path, tiny_model_dir) -> None:
    src, out = _examples(tmp_path / "in.jsonl", 400), tmp_path / "out.jsonl"
    argv = ["generate", "--input", str(src), "--output", str(out), "--model", str(tiny_model_dir), "--batch_size", "1", "--max_new_tokens", "16"]
    # Ctrl-C as a terminal delivers it, whatever this test inherited: a shell's background job starts
    # with SIGINT ignored, and Python then installs no handler of its own.
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen([sys.executable, "-m", "trice.cli", *argv], env=ENV, stderr=subprocess.PIPE, text=True, preexec_fn=restore)
    for _ in range(2400):
        if (out.is_file() and out.read_text().count("\n") >= 2) or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "generation ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    _no_traceback(err, "trice generate: interrupted; what finished is kept, and the same command resumes it")
    assert out.read_bytes().endswith(b"\n") and all(json.loads(line)["response"] is not None for line in out.read_text().splitlines())


def test_a_full_disk_during_a_checkpoint_save_is_one_line_and_a_rerun_resumes(tmp_path, tiny_model_dir) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"id": f"r{i}", "task": "math", "question": f"{i}+{i}?", "output": f"calculator({i}+{i})"}) + "\n" for i in range(4)))
    argv = ["train-sft", "--model", str(tiny_model_dir), "--data", str(data), "--output_dir", str(tmp_path / "out"), "--max_steps", "2", "--save_steps", "1"]
    limited = subprocess.run([sys.executable, "-c", LIMITED, "20000", *argv], env=ENV, capture_output=True, text=True, timeout=600)
    assert limited.returncode == 2
    _no_traceback(limited.stderr, "trice train-sft: error: a file could not be written (")
    assert "is the disk full or a file-size limit reached?" in limited.stderr
    again = subprocess.run([sys.executable, "-m", "trice.cli", *argv], env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()


def _data_recipe(tmp_path: Path, data_dir: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"settings": ["zero-shot"], "data": {"data_dir": str(data_dir), "datasets": ["svamp"], "n_train": 2, "n_test": 2}}))
    return path


def test_a_run_directory_whose_name_is_not_utf8_runs_and_reads_back(tmp_path, data_dir, capsys) -> None:
    run = os.fsdecode(os.fsencode(tmp_path) + b"/run-\xff")  # as Python reads such a name from argv
    recipe = _data_recipe(tmp_path, data_dir)
    assert main(["run", str(recipe), "--run-dir", run, "--only", "data"]) == 0
    assert (tmp_path / os.fsdecode(b"run-\xff") / "data" / "train.jsonl").is_file()
    capsys.readouterr()
    assert main(["run", str(recipe), "--run-dir", run, "--status"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["data"] == "up to date"


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode) for p in root.rglob("*")} | {
        ".": (0, root.stat().st_mtime_ns, root.stat().st_mode)
    }


def test_status_reads_a_read_only_run_and_writes_nothing(tmp_path, data_dir, capsys, monkeypatch) -> None:
    recipe, run = _data_recipe(tmp_path, data_dir), tmp_path / "run"
    assert main(["run", str(recipe), "--run-dir", str(run), "--only", "data"]) == 0
    assert (run / ".data.lock").is_file() and (run / ".trice-run.lock").is_file()  # lock files a status must only read
    before = _snapshot(run)
    time.sleep(0.05)  # a write now would move a modification time
    capsys.readouterr()
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):  # the run directory as a read-only file system shows it (root ignores modes)
        if os.fspath(path).startswith(str(run)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
            raise PermissionError(errno.EROFS, "Read-only file system", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["run", str(recipe), "--run-dir", str(run), "--status"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["data"] == "up to date"
    assert _snapshot(run) == before


def test_a_truncated_adapter_is_one_located_line(tmp_path, tiny_model_dir, capsys) -> None:
    import torch
    from safetensors.torch import save_file

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "target_modules": ["q_proj"]}))
    save_file({"base_model.model.layers.0.q_proj.lora_A.weight": torch.zeros(2, 32)}, str(adapter / "adapter_model.safetensors"))
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    (adapter / "adapter_model.safetensors").write_bytes(weights[: len(weights) // 2])
    argv = ["generate", "--input", str(_examples(tmp_path / "in.jsonl", 1)), "--output", str(tmp_path / "out.jsonl"),
            "--model", str(tiny_model_dir), "--adapter", str(adapter)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    _no_traceback(err, f"trice generate: error: adapter {adapter}: cannot read adapter_model.safetensors: ")

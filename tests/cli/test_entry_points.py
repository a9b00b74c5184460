"""How the command starts and stops: ``trice --version``, ``python -m trice``, and a reader that
closes the pipe early (``trice -h | head -2``) ending it quietly, with no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import trice
from trice.cli import EXIT_BROKEN_PIPE, main

ROOT = Path(__file__).resolve().parents[2]
ENV = os.environ | {"PYTHONPATH": str(ROOT)}


def test_version_is_the_package_version(capsys) -> None:
    assert main(["--version"]) == 0 and capsys.readouterr().out == f"trice {trice.__version__}\n"
    assert main(["-V"]) == 0 and trice.__version__ in capsys.readouterr().out
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]  # the wheel's version is trice.__version__, one source
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "trice.__version__"}


def test_python_dash_m_trice_is_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "trice", "--version"], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout == f"trice {trice.__version__}\n"
    done = subprocess.run([sys.executable, "-m", "trice", "evaluate", "--help"], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and "usage: trice evaluate" in done.stdout


@pytest.mark.parametrize("argv", [["--help"], ["evaluate", "--help"]], ids=["own-help", "argparse-help"])
def test_a_closed_pipe_ends_the_command_quietly(argv: list[str], monkeypatch) -> None:
    """In process: a stdout whose reader went away (a real file descriptor: the command points it at /dev/null)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as pipe:
        monkeypatch.setattr(sys, "stdout", pipe)
        assert main(argv) == EXIT_BROKEN_PIPE


@pytest.mark.parametrize("argv", [["-h"], ["--version"], ["run", "-h"], ["generate", "--help"]])
def test_trice_help_piped_into_head_prints_no_traceback(argv: list[str]) -> None:
    """`trice -h | head -2`, made deterministic: the reader closes its end before the command writes.
    (argparse's own help printing drops a write error and exits 0; the command's own output ends with 141.)"""
    child = subprocess.Popen([sys.executable, "-m", "trice", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    child.stdout.close()  # like head after its lines: every later write meets a closed pipe
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) in (0, EXIT_BROKEN_PIPE)
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    shell = subprocess.run(f"{sys.executable} -m trice {' '.join(argv)} | head -2", shell=True, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)
    assert 1 <= len(shell.stdout.splitlines()) <= 2 and "Traceback" not in shell.stderr

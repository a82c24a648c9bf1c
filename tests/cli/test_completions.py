"""The committed completion scripts are what the CLI generates; completion itself answers.

Refresh them after a CLI change with ``UPDATE_COMPLETIONS=1 pytest tests/cli/test_completions.py``, or
by hand: ``_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION=1 outboxctl --show-completion bash``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli.conftest import ROOT

SHELLS = ["bash", "zsh", "fish"]


def outboxctl(*args: str, **env: str) -> str:
    child_env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", **env}
    child_env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "outboxctl", *args], env=child_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_script_is_current(shell: str) -> None:
    generated = outboxctl("--show-completion", shell, _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    path = ROOT / "completions" / f"outboxctl.{shell}"
    if os.environ.get("UPDATE_COMPLETIONS"):
        path.write_text(generated, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == generated, (
        f"{path} is stale: run UPDATE_COMPLETIONS=1 pytest tests/cli/test_completions.py"
    )
    assert "_OUTBOXCTL_COMPLETE" in generated


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("outboxctl ins", {"inspect"}),
        ("outboxctl dead-letter req", {"requeue"}),
        ("outboxctl purge --status ", {"published", "failed", "pending"}),
        ("outboxctl replay --dry", {"--dry-run"}),
    ],
)
def test_bash_completion_answers(words: str, expected: set[str]) -> None:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    answer = outboxctl(_OUTBOXCTL_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword))
    assert set(answer.split()) == expected

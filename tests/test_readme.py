"""README's two commands are what CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [
        line.strip() for line in readme.splitlines() if line.startswith("    python3 -m venv")
    ]
    assert len(commands) == 2, commands
    peer, tests = commands
    assert peer.endswith("whisper -nick phil")
    assert tests.endswith("python -m pytest")
    assert ci.strip().splitlines()[-1].strip() == tests

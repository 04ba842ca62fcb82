"""whisper-conformance, run as a command against our own peer: every case passes.

This is the CI check that our peer conforms (``.ci/run`` runs the whole test suite).  It also
covers ``--target`` (cases that need a fresh process are skipped, and discovery cases
unless ``--discovery-port`` is given), ``--json`` and exit codes.  Our peer's discovery port
is ``{udp}``, a free UDP port per case, so that no two peers share one.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from whisper.conformance import all_cases, select
from whisper.conformance.harness import free_port

PYTHON = shlex.quote(sys.executable)
OUR_PEER = f"{PYTHON} -m whisper -host 127.0.0.1 -port {{port}} -discovery-port {{udp}} -headless"
RUN_TIMEOUT = 150


def conformance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whisper.conformance", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, dict]:
    report = tmp_path_factory.mktemp("conformance") / "report.json"
    done = conformance("--cmd", OUR_PEER, "--timeout", "30", "--json", str(report))
    return done, json.loads(report.read_text()) if report.exists() else {}


def test_our_peer_passes_every_level(full_run: tuple) -> None:
    done, _ = full_run
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == f"{len(select())} passed, 0 failed, 0 skipped", done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines[1].split() == ["case", "level", "section", "result", "detail"]
    for case in select():  # each row shows the PROTOCOL.md section the case checks
        (row,) = [line for line in lines if line.startswith(case.name + " ")]
        assert row.split()[2] == case.section.replace(", ", ",")


@pytest.mark.parametrize("name", [c.name for c in select()])
def test_our_peer_passes(full_run: tuple, name: str) -> None:
    _, report = full_run
    (result,) = [r for r in report["results"] if r["case"] == name]
    assert result["result"] == "PASS", result
    assert result["detail"] and result["section"].startswith("§")


@pytest.fixture
def running_peer() -> Iterator[tuple[int, int]]:
    """A peer we started ourselves: (its TCP port, its UDP discovery port)."""
    port, udp = free_port(), free_port(socket.SOCK_DGRAM)
    argv = [sys.executable, "-m", "whisper", "-host", "127.0.0.1", "-port", str(port)]
    proc = subprocess.Popen(
        [*argv, "-discovery-port", str(udp), "-headless"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "peer did not start"
                time.sleep(0.05)  # polling the port: nothing to wait on from another process
        yield port, udp
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdin is not None
        proc.stdin.close()


def test_target_mode_skips_cases_that_need_a_fresh_process(running_peer: tuple) -> None:
    chosen = select(["core", "limits"])
    fresh = [c for c in chosen if c.fresh]
    done = conformance("--target", f"127.0.0.1:{running_peer[0]}", "--level", "core,limits")
    lines = done.stdout.strip().splitlines()
    summary = f"{len(chosen) - len(fresh)} passed, 0 failed, {len(fresh)} skipped"
    assert lines[-1] == summary, done.stdout + done.stderr
    assert done.returncode == 3
    for case in fresh:
        (row,) = [line for line in lines if line.startswith(case.name + " ")]
        assert row.split()[3] == "SKIP" and "--cmd" in row


def test_target_mode_runs_discovery_given_the_port(running_peer: tuple) -> None:
    port, udp = running_peer
    target = ["--target", f"127.0.0.1:{port}", "--level", "discovery"]
    done = conformance(*target, "--discovery-port", str(udp))
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[2:-1]}
    assert rows["discovery-dial"].split()[3] == "PASS", done.stdout + done.stderr
    assert "--cmd" in rows["discovery-garbage"] and "--cmd" in rows["discovery-not-self"]
    assert done.stdout.splitlines()[-1] == "1 passed, 0 failed, 2 skipped"
    done = conformance(*target)
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[2:-1]}
    assert "give --discovery-port N" in rows["discovery-dial"], done.stdout
    assert done.returncode == 3


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--cmd", "whisper -port 1"],
        ["--cmd", OUR_PEER, "--discovery-port", "0"],
        ["--cmd", OUR_PEER, "--level", "core,nonsense"],
        ["--cmd", OUR_PEER, "--target", "127.0.0.1:1"],
        ["--target", "nowhere"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    done = conformance(*args)
    assert done.returncode == 2
    assert done.stderr.startswith("whisper-conformance: ")


@pytest.mark.parametrize(
    ("cmd", "words"),
    [
        ("no-such-peer-here -port {port}", "cannot run 'no-such-peer-here': No such file"),
        (f"{PYTHON} -m whisper -bogus -port {{port}}", "exited with status 2"),
        (f"{PYTHON} -c 'import time; time.sleep(60)' {{port}}", "nothing listened on"),
    ],
)
def test_a_peer_that_cannot_start_is_one_error_not_a_fail_per_case(cmd: str, words: str) -> None:
    done = conformance("--cmd", cmd, "--startup-timeout", "2")
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert done.stderr.startswith("whisper-conformance: the peer does not start: ")
    assert words in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr


def test_a_peer_that_found_its_port_taken_is_started_again_on_new_ports(tmp_path: Path) -> None:
    """A free port can be taken between the suite's check and the peer's bind: the suite
    starts the peer again (on new ports) rather than failing a case for it."""
    once = tmp_path / "failed-once"
    script = (
        f"if [ -e {once} ]; then exec {OUR_PEER}; fi; touch {once}; "
        "echo 'OSError: [Errno 98] Address already in use' >&2; exit 1"
    )
    done = conformance("--cmd", f"sh -c {shlex.quote(script)}", "--case", "relay")
    assert once.exists()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout and "FAIL" not in done.stdout, done.stdout


def test_a_peer_whose_port_is_always_taken_is_one_error() -> None:
    script = "echo 'listen tcp :1: bind: address already in use' >&2; exit 1 # {port}"
    done = conformance("--cmd", f"sh -c {shlex.quote(script)}", "--startup-timeout", "2")
    assert done.returncode == 2 and "address already in use" in done.stderr, done.stderr


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    """``.venv/bin/whisper-conformance --cmd 'whisper ...'``, venv not activated: the
    suite finds the ``whisper`` of its own venv, not whatever ``PATH`` holds."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    (example,) = [
        x.strip() for x in readme.splitlines() if x.strip().startswith(".venv/bin/whisper-c")
    ]
    argv = shlex.split(example)
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "whisper").exists():
        pytest.skip("whisper is not installed in this venv (pip install -e .)")
    decoy = tmp_path / "whisper"  # another program called whisper, earlier on PATH
    decoy.write_text("#!/bin/sh\nexit 7\n")
    decoy.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "whisper.conformance", *argv[1:], "--case", "relay"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"(whisper: {bin_dir / 'whisper'})" in done.stdout.splitlines()[0]
    assert done.stdout.splitlines()[-1] == "1 passed, 0 failed, 0 skipped"


def test_list_and_console_script() -> None:
    done = conformance("--list")
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == [c.name for c in select()]
    done = conformance("--list", "--level", "identity")
    assert [line.split()[0] for line in done.stdout.splitlines()] == [
        c.name for c in all_cases() if c.level == "identity"
    ]
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert 'whisper-conformance = "whisper.conformance.cli:main"' in pyproject

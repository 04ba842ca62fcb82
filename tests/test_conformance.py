"""The conformance suite can fail: every case FAILS against a peer with the matching bug.

Each case runs against ``conformance_fakes/fakepeer.py --bug X`` (a small peer that is
correct except for X) and must FAIL for the reason the case is about; the same fake without
a bug must PASS every case, so each failure is the bug's doing.  With ``--go`` the fake has
the documented traits of the Go reference peer, and the report must be the one PROTOCOL.md's
worked example predicts.  All runs happen at once in one trio run (a fresh fake process per
case), to keep this file quick on a small machine.
"""

from __future__ import annotations

import shlex
import socket
import sys
from pathlib import Path

import pytest
import trio

from whisper.conformance import FAIL, PASS, SKIP, Result, Target, all_cases, run_case, select
from whisper.conformance.harness import fill_template, free_port
from whisper.conformance.runner import parallel_jobs

FAKE = Path(__file__).parent / "conformance_fakes" / "fakepeer.py"
JOBS = 4
FAIL_TIMEOUT = 8.0  # generous for the loopback steps before the failure; a timeout is a FAIL too
PASS_TIMEOUT = 30.0
DEAF_TIMEOUT = 3.0  # a peer that never hears a datagram fails by timing out: keep it short

# (case, bug, a phrase the FAIL detail must contain: it failed for the right reason)
FAILING = [
    ("relay", "relay-first-only", "waiting for a probe message relayed to every dialled-back"),
    ("dedupe", "no-dedupe", "received the message 3 times"),
    ("unframed", "newline-framed", "relayed 0 of 3 back-to-back objects"),
    ("chunking", "chunk-parse", "closed the connection after two objects written in pieces"),
    ("whitespace", "newline-framed", "not relayed: the pretty-printed object"),
    ("dial-back", "no-dialback", "was never dialled"),
    ("malformed", "newline-framed", "stayed open after malformed JSON"),
    ("malformed", "exit-on-malformed", "exited with status 3"),
    ("no-body", "crash-no-body", "exited with status 2"),
    ("no-body", "relay-no-body", "relayed a payload whose Body is missing"),
    ("unknown-keys", "strict-keys", "with unknown keys was not relayed"),
    ("refused-dial", "crash-on-refused-dial", "exited with status 1"),
    ("hash-valid", "hash-case-sensitive", "dropped a valid hashed ID: upper-case"),
    ("hash-mismatch", "no-hash-check", "hashed ID does not match its Body"),
    ("hash-mismatch", "seen-before-check", "marked seen before its hash was checked"),
    ("hash-unknown-function", "hash-unknown-strict", "hash function sha512, blake3"),
    ("hash-lone-surrogate", "json-surrogates", "was not read as U+FFFD"),
    ("seconds-and-ms", "seconds-as-ms", "dropped a current Timestamp in seconds"),
    ("too-old", "no-freshness", "timestamped a day ago"),
    ("far-future", "no-freshness", "timestamped a day ahead"),
    ("no-timestamp", "require-timestamp", "Timestamp is absent"),
    ("oversized", "no-size-limit", "accepted a 2 MiB message"),
    ("deep-nesting", "no-depth-limit", "accepted a message nested 1,000 levels deep"),
    ("idle-connections", "refuse-when-full", "newcomers connected, all closed by the peer"),
    ("stalled-peer", "blocking-relay", "waiting for a message sent after the flood"),
    ("file-relay", "strip-file-keys", "with FileName, FileType, FileContents stripped"),
    ("file-relay", "crash-on-file", "exited with status 4"),
    ("file-bad", "drop-bad-file", "dropped file messages with bad base64; no FileType"),
    ("file-bad", "crash-on-file-name", "exited with status 5"),
    ("file-name-marks", "normalize-whole-name", "was not relayed within 2s: the name stalls"),
    ("backlog-replay", "no-backlog", "replayed none of the recent messages (3 had reached"),
    ("backlog-replay", "backlog-newest-first", "not oldest first"),
    ("backlog-replay", "backlog-unmarked", 'without "History": true'),
    ("backlog-not-own", "backlog-to-author", "message(s) with its own Addr"),
    ("backlog-fresh-only", "backlog-stale", "more than 8 minutes"),
    ("flood-contained", "no-flood-control", "messages of one origin; the limit allows at most"),
    ("flooder-cut-off", "never-cut", "the connection was still open after flooding"),
    ("flooder-cut-off", "block-ip", "must not be blacklisted as a whole"),
    ("relay-not-blamed", "blame-relays", "closed the relay's connection"),
    ("forged-addr", "blacklist-claimed", "an Addr that messages merely claim must not be"),
    ("forged-addr", "shared-origin", "their flood spent sink1's budget"),
    ("relay-paced", "no-relay-pace", "a receiver would cut the peer off for relaying"),
    ("discovery-dial", "no-discovery", "waiting for a connection to sink1"),
    ("discovery-garbage", "crash-on-garbage-datagram", "exited with status 6"),
    ("discovery-garbage", "dial-garbage", "named only by garbage datagrams (port over 65535"),
    ("discovery-not-self", "dial-self", "dialled its own address"),
    ("signed-relay", "strip-identity", "relayed the signed message with Key, Sig stripped"),
    ("signed-tampered", "no-sig-check", "relayed 8 of 8 tampered signed messages"),
    ("signed-tampered", "seen-before-check", "marked seen before its signature was checked"),
    ("dm-relay", "drop-dm", "the direct message (for another key) was not relayed"),
    ("banner", "no-banner", "no capability banner naming 'hello' on a connection it accepted"),
    ("hello-dial-back", "no-hello-dialback", "(its hello); newcomer (127.0.0.1:"),
    ("hello-on-connect", "no-hello", "waiting for a hello with Addr 127.0.0.1:"),
    ("hello-not-to-legacy", "hello-to-all", "sent a peer that wrote no banner 1 payload(s)"),
    ("presence-flood", "no-presence-relay", "waiting for the announcement at both speakers"),
    ("presence-flood", "presence-to-all", "relayed the announcement to a peer that wrote no"),
    ("routing-join", "no-join-answer", "waiting for an accept with Addr 127.0.0.1:"),
    ("routing-legacy-eager", "ihave-to-legacy", "sent a peer that wrote no banner"),
    ("routing-graft", "no-graft", "waiting for the message at the joiner (its graft)"),
    ("routing-prune-root", "prune-all", "whole, at the joiner (its prune named only"),
    ("routing-graft-missing", "graft-held", "grafted the ID of a presence announcement it"),
    ("twoway-reverse", "no-reverse", "waiting for a message relayed back on the connection"),
    ("twoway-oneway", "reverse-unasked", "on the connection whose hello did not ask"),
    ("twoway-oneway", "reverse-truthy", 'whose hello said "Reverse": "true" (a string)'),
]

# PROTOCOL.md §8.3: what the suite reports for the Go reference peer's documented traits.
GO_FAILS = {"no-body", "hash-mismatch", "too-old", "far-future", "oversized", "deep-nesting"}
GO_FAILS |= {"file-relay", "backlog-replay", "backlog-not-own", "backlog-fresh-only"}
GO_FAILS |= {"flood-contained", "flooder-cut-off", "relay-paced"}  # no flood control
GO_FAILS |= {"discovery-dial", "discovery-garbage", "discovery-not-self"}  # hears nothing
GO_FAILS |= {"signed-relay", "signed-tampered", "dm-relay"}  # strips Key, Sig, Sealed
GO_FAILS |= {"banner", "hello-dial-back", "hello-on-connect", "presence-flood"}  # no banner
GO_FAILS |= {"routing-join", "routing-legacy-eager", "routing-graft", "routing-prune-root"}
GO_FAILS |= {"routing-graft-missing"}
GO_FAILS |= {"twoway-reverse"}  # no banner, so never asked; twoway-oneway passes
GO = "--go"
DEAF = {"no-discovery", GO}


def fake_cmd(bug: str | None) -> str:
    fake = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE))}"
    cmd = f"{fake} --port {{port}} --discovery-port {{udp}}"
    if bug == GO:
        return cmd + " --go"
    return cmd + (f" --bug {bug}" if bug else "")


async def _run_all(runs: list[tuple[str, str | None, float]]) -> dict:
    cases = {c.name: c for c in all_cases()}
    results: dict[tuple[str, str | None], Result] = {}
    limiter = trio.CapacityLimiter(JOBS)

    async def one(name: str, bug: str | None, timeout: float) -> None:
        async with limiter:
            target = Target(host="127.0.0.1", cmd=fake_cmd(bug))
            results[name, bug] = await run_case(cases[name], target, timeout=timeout)

    async with trio.open_nursery() as nursery:
        for name, bug, timeout in runs:
            nursery.start_soon(one, name, bug, timeout)
    return results


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, str | None], Result]:
    def timeout(name: str, bug: str | None, default: float) -> float:
        return DEAF_TIMEOUT if bug in DEAF and name.startswith("discovery-") else default

    runs = [(name, bug, timeout(name, bug, FAIL_TIMEOUT)) for name, bug, _ in FAILING]
    runs += [(c.name, None, PASS_TIMEOUT) for c in all_cases()]
    runs += [(c.name, GO, timeout(c.name, GO, PASS_TIMEOUT)) for c in all_cases()]
    return trio.run(_run_all, runs)


def test_every_case_has_a_failing_fake() -> None:
    assert {c.name for c in all_cases()} == {name for name, _, _ in FAILING}


@pytest.mark.parametrize(
    ("name", "bug", "phrase"), FAILING, ids=[f"{n}-{b}" for n, b, _ in FAILING]
)
def test_case_fails_against_broken_peer(results: dict, name: str, bug: str, phrase: str) -> None:
    result = results[name, bug]
    assert result.result == FAIL, result
    assert phrase in result.detail, result.detail


@pytest.mark.parametrize("name", [c.name for c in all_cases()])
def test_case_passes_against_the_bug_free_fake(results: dict, name: str) -> None:
    result = results[name, None]
    assert result.result == PASS, result


def test_go_stand_in_gets_the_report_the_worked_example_predicts(results: dict) -> None:
    report = {c.name: results[c.name, GO] for c in all_cases()}
    assert {name for name, r in report.items() if r.result == FAIL} == GO_FAILS, report
    assert {r.result for r in report.values()} == {PASS, FAIL}
    assert "exited with status 2" in report["no-body"].detail
    assert "stripped" in report["unknown-keys"].detail
    assert "FileName, FileType, FileContents stripped" in report["file-relay"].detail
    assert "replayed none" in report["backlog-replay"].detail
    assert "sink1 (127.0.0.1:" in report["discovery-dial"].detail
    assert "was never dialled" in report["discovery-dial"].detail
    assert "Key, Sig, Channel, Nick stripped" in report["signed-relay"].detail
    assert "with Sealed stripped" in report["dm-relay"].detail
    assert "it does not speak §7.10, so it was sent no payload" in report["banner"].detail
    assert "speaks no extension" in report["hello-not-to-legacy"].detail  # and did not crash
    assert "wrote nothing on the suite's connections" in report["twoway-oneway"].detail


# -- the harness's small rules --------------------------------------------------------


def test_template_ports_are_filled_consistently() -> None:
    template = "peer -port {port} -http 127.0.0.1:{port2} -again {port} -udp {udp} {udp}"
    argv, port, udp = fill_template(template)
    assert argv[2] == str(port) == argv[6]
    assert argv[4].startswith("127.0.0.1:") and argv[4] != f"127.0.0.1:{port}"
    assert udp is not None and argv[-2:] == [str(udp), str(udp)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", udp))  # free on every address
    assert fill_template(template, 5555)[0][-1] == "5555"  # --discovery-port fills {udp}
    assert fill_template("peer {port}", 5555)[2] == 5555  # a port the peer always binds
    assert fill_template("peer {port}")[2] is None


async def test_discovery_cases_are_skipped_without_the_udp_port() -> None:
    (dial,) = select(None, ["discovery-dial"])
    no_udp = fake_cmd(None).replace(" --discovery-port {udp}", "")
    result = await run_case(dial, Target(host="127.0.0.1", cmd=no_udp))
    assert result.result == SKIP and "{udp}" in result.detail, result
    result = await run_case(dial, Target(host="127.0.0.1", port=9))
    assert result.result == SKIP and "--discovery-port N" in result.detail, result


async def test_a_fixed_discovery_port_fills_the_template_and_runs_one_case_at_a_time() -> None:
    (dial,) = select(None, ["discovery-dial"])
    target = Target(
        host="127.0.0.1", cmd=fake_cmd(None), discovery_port=free_port(socket.SOCK_DGRAM)
    )
    assert parallel_jobs(target, 4) == 1
    assert parallel_jobs(Target(host="127.0.0.1", cmd=fake_cmd(None)), 4) == 4
    result = await run_case(dial, target)
    assert result.result == PASS, result


def test_levels_select_their_cases() -> None:
    assert {c.level for c in select(["limits"])} == {"limits"}
    assert [c.name for c in select(None, ["dedupe"])] == ["dedupe"]
    assert "identity" in {c.level for c in select()}  # our peer checks signatures: by default
    assert {c.name for c in select(["identity"])} == {"signed-relay", "signed-tampered", "dm-relay"}
    assert [c.name for c in select(None, ["dm-relay"])] == ["dm-relay"]
    with pytest.raises(ValueError):
        select(["no-such-level"])


async def test_fresh_cases_are_skipped_for_a_running_target() -> None:
    (oversized,) = select(None, ["oversized"])
    result = await run_case(oversized, Target(host="127.0.0.1", port=9))
    assert result.result == SKIP and "--cmd" in result.detail


async def test_a_peer_that_never_listens_fails_the_case() -> None:
    (relay,) = select(None, ["relay"])
    cmd = f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(7)' {{port}}"
    result = await run_case(relay, Target(host="127.0.0.1", cmd=cmd), startup_timeout=10)
    assert result.result == FAIL
    assert "exited with status 7 before listening" in result.detail

"""Routing control payloads (whisper/routing/wire.py): formats, recognition, strict limits."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whisper.routing import wire

A, B, C = "10.0.0.1:55555", "10.0.0.2:55555", "10.0.0.3:55555"

CONTROLS = [
    wire.Join(A),
    wire.ForwardJoin(A, B, 6),
    wire.Neighbor(A, True),
    wire.Neighbor(A, False),
    wire.Accept(A),
    wire.Reject(A),
    wire.Disconnect(A),
    wire.Shuffle(A, B, 5, (A, B, C)),
    wire.ShuffleReply(A, (B, C)),
    wire.IHave(A, ("hash:sha256:" + "ab" * 32, "78083c5082c90c0a")),
    wire.Graft(A, ("78083c5082c90c0a",)),
    wire.Prune(A),
    wire.Prune(A, B),
    wire.Prune(A, B, True),
    wire.Prune(A, "1.2.3.4:05"),  # a root is a message's Addr as written: never dialled
]


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: type(c).__name__)
def test_every_control_round_trips_and_has_no_body(control: wire.Control) -> None:
    data = wire.encode(control)
    obj = json.loads(data)
    assert data.endswith(b"\n") and "Body" not in obj and type(obj["Ctl"]) is str
    assert wire.decode(obj) == control


def test_wire_examples_are_as_specified() -> None:
    assert wire.encode(wire.IHave(A, ("a1", "a2"))) == (
        b'{"Ctl":"ihave","Addr":"10.0.0.1:55555","IDs":["a1","a2"]}\n'
    )
    assert wire.encode(wire.Prune(A, B, True)) == (
        b'{"Ctl":"prune","Addr":"10.0.0.1:55555","Root":"10.0.0.2:55555","Default":true}\n'
    )
    assert wire.encode(wire.ForwardJoin(A, B, 6)) == (
        b'{"Ctl":"forwardjoin","Addr":"10.0.0.1:55555","Peer":"10.0.0.2:55555","TTL":6}\n'
    )


@pytest.mark.parametrize(
    "obj",
    [
        {"ID": "x", "Addr": A, "Body": "hi", "Ctl": "join"},  # a chat message stays one
        {"Addr": A},
        {"Ctl": 3, "Addr": A},
        {"Ctl": "hello", "Addr": A},  # another extension's control
    ],
)
def test_objects_that_are_not_routing_controls(obj: dict) -> None:
    assert wire.decode(obj) is None


@pytest.mark.parametrize(
    "obj",
    [
        {"Ctl": "join"},
        {"Ctl": "join", "Addr": 5},
        {"Ctl": "join", "Addr": "peer.example:55555"},  # a name: never resolved
        {"Ctl": "join", "Addr": "0.0.0.0:55555"},
        {"Ctl": "join", "Addr": "10.0.0.1:0"},
        {"Ctl": "join", "Addr": "1" * 100 + ":5"},
        {"Ctl": "forwardjoin", "Addr": A, "Peer": B, "TTL": True},
        {"Ctl": "forwardjoin", "Addr": A, "Peer": B, "TTL": 17},
        {"Ctl": "forwardjoin", "Addr": A, "Peer": B, "TTL": -1},
        {"Ctl": "forwardjoin", "Addr": A, "Peer": B, "TTL": 2.0},
        {"Ctl": "forwardjoin", "Addr": A, "TTL": 2},
        {"Ctl": "neighbor", "Addr": A, "Prio": "urgent"},
        {"Ctl": "neighbor", "Addr": A, "Prio": ["high"]},
        {"Ctl": "shuffle", "Addr": A, "Origin": B, "TTL": 3, "Peers": [C] * 17},
        {"Ctl": "shuffle", "Addr": A, "Origin": B, "TTL": 3, "Peers": [C, 7]},
        {"Ctl": "shuffle", "Addr": A, "Origin": B, "TTL": 3, "Peers": {"a": 1}},
        {"Ctl": "shufflereply", "Addr": A, "Peers": "10.0.0.3:55555"},
        {"Ctl": "ihave", "Addr": A, "IDs": ["x"] * 257},
        {"Ctl": "ihave", "Addr": A, "IDs": ["x" * 129]},
        {"Ctl": "ihave", "Addr": A, "IDs": [""]},
        {"Ctl": "graft", "Addr": A, "IDs": [["nested"]]},
        {"Ctl": "graft", "Addr": A},
        {"Ctl": "prune", "Addr": A, "Root": ""},
        {"Ctl": "prune", "Addr": A, "Root": 5},
        {"Ctl": "prune", "Addr": A, "Root": "x" * 65},
        {"Ctl": "prune", "Addr": A, "Root": B, "Default": "yes"},
    ],
)
def test_malformed_routing_controls_are_invalid(obj: dict) -> None:
    result = wire.decode(obj)
    assert type(result) is wire.Invalid and result.reason.startswith(obj["Ctl"])


def test_addresses_are_kept_canonical_and_lists_deduplicated() -> None:
    obj = {"Ctl": "shufflereply", "Addr": " 10.0.0.1:055555", "Peers": [B, "10.0.0.2:55555"]}
    assert wire.decode(obj) == wire.ShuffleReply(A, (B,))
    assert wire.decode({"Ctl": "ihave", "Addr": A, "IDs": ["a", "a", "b"]}) == wire.IHave(
        A, ("a", "b")
    )


def test_unknown_keys_are_ignored() -> None:
    assert wire.decode({"Ctl": "prune", "Addr": A, "Later": [1, {"x": None}]}) == wire.Prune(A)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=10,
)
_kinds = st.sampled_from(["join", "forwardjoin", "neighbor", "shuffle", "ihave", "graft", "x"])


_keys = st.sampled_from(["Addr", "Peer", "TTL", "Prio", "Origin", "Peers", "IDs"])


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.dictionaries(_keys, _json), _kinds)
def test_hostile_objects_never_raise(fields: dict, kind: str) -> None:
    result = wire.decode({"Ctl": kind, **fields})
    assert result is None or isinstance(result, (wire.Invalid, *wire.MEMBERSHIP, *wire.BROADCAST))


def test_a_prune_without_root_prunes_no_default_of_its_own() -> None:
    # "Default" only means something beside a Root: without one, every tree is pruned
    assert wire.decode({"Ctl": "prune", "Addr": A, "Default": True}) == wire.Prune(A)
    assert wire.root_of("x" * 65) is None and wire.root_of(None) is None
    assert wire.root_of(B) == B

"""Channels: names, the Body prefix old peers see, which channels are shown."""

from __future__ import annotations

import pytest

from whisper.identity.channels import (
    MAX_JOINED,
    RULE,
    BadChannel,
    ChannelError,
    Channels,
    channel_body,
    channel_of,
    shown_text,
    typed_name,
)


@pytest.mark.parametrize(
    ("typed", "name"),
    [("#general", "#general"), ("General", "#general"), ("  #Rust-Lang ", "#rust-lang"),
     ("#a", "#a"), ("#" + "x" * 32, "#" + "x" * 32), ("#v1.2_beta", "#v1.2_beta")],
)  # fmt: skip
def test_typed_names_are_folded_to_the_wire_form(typed: str, name: str) -> None:
    assert typed_name(typed) == name


@pytest.mark.parametrize(
    "typed",
    ["", "#", "# room", "#" + "x" * 33, "#-dash", "#.dot", "#caf\u00e9", "#r\u043e\u043em",
     "#a\u200bb", "#a\x1b[2J", "##", "#a,b", "#\uff21\uff22"],
)  # fmt: skip
def test_other_names_are_refused_with_the_rule(typed: str) -> None:
    with pytest.raises(ChannelError) as info:
        typed_name(typed)
    assert str(info.value) == RULE


@pytest.mark.parametrize("value", ["#Room", "room", "", 5, None, ["#a"], "#" + "y" * 33])
def test_a_received_channel_that_is_not_a_name_is_shown_nowhere(value: object) -> None:
    fields = {"Body": "[#room] hi"}
    if value is None:
        assert channel_of(fields) is None  # no Channel: the main room
        return
    with pytest.raises(BadChannel):
        channel_of({**fields, "Channel": value})


def test_the_body_says_the_channel_for_peers_that_do_not_know_it() -> None:
    body = channel_body("#rust", "/me waves")
    assert body == "[#rust] /me waves"
    assert channel_of({"Channel": "#rust", "Body": body}) == "#rust"
    assert shown_text("#rust", body) == "/me waves"
    assert channel_body(None, "hi") == shown_text(None, "hi") == "hi"
    assert shown_text("#rust", "[#other] hi") == "[#other] hi"  # a prefix that is not its own
    assert shown_text("#rust", "[#rust] ") == "[#rust] "  # nothing would be left


def test_join_part_and_what_is_shown() -> None:
    channels = Channels()
    assert channels.current is None and channels.shows(None) and not channels.shows("#rust")
    assert channels.join("Rust") == "#rust" and channels.current == "#rust"
    channels.join("#go")
    assert channels.joined == ["#rust", "#go"] and channels.current == "#go"
    assert channels.shows("#rust") and channels.shows(None) and not channels.shows("#java")
    channels.join("#rust")  # joining again only makes it current
    assert channels.joined == ["#rust", "#go"] and channels.current == "#rust"
    assert channels.part() == "#rust" and channels.current is None
    assert not channels.shows("#rust") and channels.shows("#go")
    with pytest.raises(ChannelError, match="not in #rust"):
        channels.part("#rust")
    with pytest.raises(ChannelError, match="main room"):
        channels.part()
    assert channels.part("go") == "#go" and channels.joined == []


def test_joined_channels_are_bounded() -> None:
    channels = Channels()
    for i in range(MAX_JOINED):
        channels.join(f"#c{i}")
    with pytest.raises(ChannelError, match="/part one first"):
        channels.join("#one-too-many")
    channels.join("#c0")  # already joined: fine

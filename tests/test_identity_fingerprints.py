"""Fingerprints: 30 digits in groups of 5, the short form, typed fingerprints."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from whisper.identity.fingerprints import (
    DOMAIN,
    digits,
    fingerprint,
    short_fingerprint,
    typed_digits,
)


def test_thirty_digits_in_six_groups_from_sha512() -> None:
    key = bytes(range(32))
    full = fingerprint(key)
    groups = full.split(" ")
    assert len(groups) == 6 and all(len(g) == 5 and g.isdigit() for g in groups)
    digest = hashlib.sha512(DOMAIN + key).digest()
    assert groups[0] == f"{int.from_bytes(digest[:5], 'big') % 100_000:05d}"
    assert short_fingerprint(key) == " ".join(groups[:2])
    assert digits(key) == full.replace(" ", "")


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_different_keys_differ(one: bytes, two: bytes) -> None:
    if one != two:
        assert digits(one) != digits(two)


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("12345 67890", "1234567890"),
        ("12345-67890-11111", "123456789011111"),
        ("1234567890" * 3, "1234567890" * 3),
        ("123456789", None),  # too short to name a key
        ("1234567890" * 3 + "1", None),
        ("12345 6789x", None),
        ("١٢٣٤٥٦٧٨٩٠", None),  # other digits than ASCII
        ("alice", None),
    ],
)
def test_typed_fingerprints(typed: str, found: str | None) -> None:
    assert typed_digits(typed) == found

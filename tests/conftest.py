from __future__ import annotations

from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session")
def go_wire() -> bytes:
    path = REFERENCE / "pdxgo-wire.bin"
    if not path.exists():
        pytest.skip(f"{path} not found (../shared/reference must be beside the repo)")
    return path.read_bytes()

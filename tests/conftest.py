from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# CI must be deterministic: the same examples every run.  Locally hypothesis explores.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("stress", max_examples=2000)  # pytest --hypothesis-profile=stress
if os.environ.get("CI"):
    settings.load_profile("ci")

# No test writes a history into the home directory, or reads another test's: peers started
# without -history keep theirs in the test's own directory (a second one at the same time
# finds it taken and runs with history off).
os.environ.setdefault("XDG_DATA_HOME", tempfile.mkdtemp(prefix="whisper-tests-"))


@pytest.fixture(autouse=True)
def _own_data_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data-home")))


REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session")
def go_wire() -> bytes:
    path = REFERENCE / "pdxgo-wire.bin"
    if not path.exists():
        pytest.skip(f"{path} not found (../shared/reference must be beside the repo)")
    return path.read_bytes()


@pytest.fixture(scope="session", autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Peers the tests start make their key file (extension 13) in a temporary data
    directory, never in the user's own; tests that need their own set XDG_DATA_HOME."""
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))

"""The fuzz tests: bench/fuzz.py's generators and checks (settings: ``fuzz.SUITE``), a few hundred
cases in all, derandomized.

``running`` (a server on a scratch store, one access key, one media folder with a clip) is
tests/api's fixture, reused as it is."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from api.conftest import running  # noqa: E402,F401 - the fixture, shared with tests/api

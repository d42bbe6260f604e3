"""Where things are: the repository root, the tests' own recorded bodies, and the replay recordings."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
REPLAY = ROOT / "sources" / "replay"

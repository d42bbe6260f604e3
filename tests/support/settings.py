"""Settings for a test: replay mode, long intervals, a data folder under the test's ``tmp_path``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config import Settings


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_source": "replay", "interval_scale": 100.0, "data_dir": tmp_path / "data",
                              "port": 7860}
    values.update(overrides)
    return Settings(**values)

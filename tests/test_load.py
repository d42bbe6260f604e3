"""The load benches, short: a soak and a restart under load, each against the real app process (replay mode).

They run ``bench/soak.py`` and ``bench/restart.py`` as the README shows, with small counts, and read the figures
they write. Wide margins: the machine is shared; what is asserted is that nothing breaks and nothing is left
behind, not how fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import ROOT


def run_bench(script: str, tmp_path: Path, *args: str, timeout: float = 400) -> dict[str, Any]:
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.exists(), f"{script} wrote no figures:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    figures: dict[str, Any] = json.loads(out.read_text())
    figures["stdout"] = proc.stdout
    return figures


def test_a_short_soak_leaves_nothing_behind(tmp_path: Path) -> None:
    result = run_bench("soak.py", tmp_path, "--minutes", "0.75", "--subscribers", "60", "--churn", "5",
                       "--stalled", "4", "--flooders", "2", "--warmup", "0.25", "--sample", "2", "--history", "empty",
                       # only a traceback or ERROR fails the bench itself; the leak check is below
                       "--rss-target", "1e9", "--task-slack", "1e9", "--fd-slack", "1e9")
    assert result["problems"] == [], result["stdout"]
    counts = result["counts"]
    assert counts.get("churn_ok", 0) > 20 and counts.get("stalled_connects", 0) >= 4, result["stdout"]
    assert counts.get("history_ok", 0) > 0 and counts.get("export_ok", 0) > 0, result["stdout"]
    assert counts.get("flooder_connects", 0) > 2, result["stdout"]  # cut off (1008) and back again
    before, after = result["baseline"], result["drained"]
    assert after["connections"] == 0, result["stdout"]
    # Every client gone: its tasks and sockets are too (a few for the server's own work coming and going).
    assert after["tasks"] <= before["tasks"] + 5, result["stdout"]
    assert after["fds"] <= before["fds"] + 5, result["stdout"]
    assert result["exit_code"] is not None, result["stdout"]


@pytest.mark.timing
def test_sigterm_under_load_closes_every_client_with_1012_and_seq_continues(tmp_path: Path) -> None:
    result = run_bench("restart.py", tmp_path, "--clients", "300")
    assert result["connected"] == 300, result["stdout"]
    assert result["close_codes"] == {"1012": 300}, result["stdout"]
    assert result["close_max_s"] <= result["graceful_seconds"], result["stdout"]
    assert result["exit_seconds"] <= 10, result["stdout"]
    assert result["shutdown_log_above_info"] == [], result["stdout"]
    assert result["stored_seq"] >= result["last_seq_seen"] > 0, result["stdout"]
    assert result["next_seq"] == result["stored_seq"] + 1, result["stdout"]

"""How the soak judges RSS: through each minute's median, so the dip after the server's minute trim does not
decide the verdict, while a real creep still fails it (bench/soak.py; synthetic samples, no server)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from bench import soak

PLATEAU = 508.0


def run(minutes: int, creep_per_10min: float, seed: int = 7) -> list[dict[str, Any]]:
    """Samples 5 s apart: RSS at a plateau (rising by ``creep_per_10min``), dipping 15-25 MiB right after each
    minute's trim and coming back within 15 s, as a soak's samples show it."""
    rng = random.Random(seed)
    samples = []
    depth = 0.0
    for i in range(minutes * 12):
        t = i * 5.0
        into_minute = t % 60
        if into_minute == 0:
            depth = rng.uniform(15, 25)
        dip = depth * max(0.0, 1 - into_minute / 15)
        rss = PLATEAU + creep_per_10min * t / 600 - dip + rng.uniform(-0.3, 0.3)
        samples.append({"t": t, "rss_mib": rss, "anon_mib": rss - 94, "file_mib": 94.0, "heap_used_mib": 182.0,
                        "heap_free_mib": 50.0, "rings_mib": 45.3, "rings_full": 1.0, "fds": 1100, "tasks": 2200,
                        "connections": 1100, "queued": 0, "max_queue": 0, "lag_max_ms": 2.0, "lag_p99_ms": 16.0,
                        "healthz_ms": 2.0})
    return samples


def test_the_dips_after_each_trim_do_not_make_a_flat_rss_fail() -> None:
    # Over several seeds the least-squares line through every sample wanders with the dips' depths; the slope
    # through the minute medians stays at the plateau's.
    for seed in range(5):
        figures = soak.analyse(run(60, 0.0, seed), warmup_s=600)
        assert abs(figures["rss_minute_medians_mib_per_10min"]) < 0.3
        assert soak.rss_verdict(figures, 1.0)[0]


@pytest.mark.parametrize("creep", [1.5, 4.0])
def test_a_plateau_that_creeps_fails(creep: float) -> None:
    figures = soak.analyse(run(60, creep), warmup_s=600)
    assert figures["rss_minute_medians_mib_per_10min"] == pytest.approx(creep, abs=0.3)
    assert not soak.rss_verdict(figures, 1.0)[0]


def test_the_rings_filling_up_is_not_counted_against_the_target() -> None:
    samples = run(30, 3.0)
    for s in samples:
        s["rings_mib"] = 20.0 + 3.0 * s["t"] / 600
    figures = soak.analyse(samples, warmup_s=300)
    ok, note = soak.rss_verdict(figures, 1.0)
    assert ok and "resume rings" in note


def test_a_saved_run_is_judged_again_from_its_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples = run(20, 4.0)
    samples[0]["tasks"] = None  # a sample whose /ws/runtime did not answer
    path = tmp_path / "soak.csv"
    path.write_text(",".join(samples[0]) + "\n" + "".join(
        ",".join(str(v) for v in s.values()) + "\n" for s in samples))
    assert soak.analyse_csv(str(path), warmup_minutes=4, target=1.0) == 1
    out = capsys.readouterr().out
    assert "slope through each minute's median +4." in out and "RSS: FAIL" in out

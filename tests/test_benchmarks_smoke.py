"""The benchmarks keep working: ``python -m benchmarks --quick`` runs every one on tiny sizes.

No timing is asserted (the numbers of a quick run mean nothing); what is checked is that each
benchmark runs to the end and produces its figures with a value, a baseline and a ratio,
that a figure which cannot be measured here (no PostgreSQL server, no QCoDeS environment)
says why, and that the Markdown table is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.runner import BENCHMARKS, figures_table, main  # noqa: E402

#: Figures each benchmark must produce (by label prefix).
EXPECTED = {
    "driver": 3,
    "skew": 2,
    "store": 4,
    "procedures": 3,
    "tui": 2,
    "startup": 1,
    "history": 6,  # --quick leaves the PDF certificate out (8 figures in a full run)
}
#: Figures that may be skipped, and the words their reason must contain.
MAY_SKIP = {"store": ("PostgreSQL", "QCoDeS"), "history": ("PostgreSQL",)}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick run of the whole suite (one process: the imports are paid once)."""
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out / "bench.md"),
         "--json", str(out / "bench.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=400)
    data: dict[str, Any] = (json.loads((out / "bench.json").read_text(encoding="utf-8"))
                            if (out / "bench.json").exists() else {})
    return {"proc": proc, "data": data, "markdown": out / "bench.md"}


def test_every_benchmark_ran(quick_run: dict[str, Any]) -> None:
    proc = quick_run["proc"]
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-6000:]}"
    assert quick_run["data"]["errors"] == []
    assert quick_run["data"]["info"]["benchmarks"] == list(BENCHMARKS)


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_figures_of(name: str, quick_run: dict[str, Any]) -> None:
    number = list(BENCHMARKS).index(name) + 1
    figures = [f for f in quick_run["data"].get("figures", []) if f["number"] == number]
    assert len(figures) == EXPECTED[name], [f["label"] for f in figures]
    for f in figures:
        if name == "store" and f["baseline"] is None and not f["skipped"]:
            # No QCoDeS here: the row says so and carries no invented baseline.
            assert "QCoDeS" in f["note"] and f["ratio"] is None and f["met"] is None, f
            assert f["unjudged"] and f["value"] > 0, f
            continue
        if f["skipped"]:
            words = MAY_SKIP.get(name, ())
            assert any(w in f["skipped"] for w in words), (
                f"{f['label']} skipped without an allowed reason: {f['skipped']}")
            continue
        assert isinstance(f["value"], float | int) and f["value"] > 0, f
        assert f["target"], f
        assert f["met"] in (True, False), f
        assert f["ratio"] is not None and f["ratio"] > 0, f
        assert f["baseline"] is not None and f["baseline"] > 0, f


def test_markdown_table(quick_run: dict[str, Any]) -> None:
    text = quick_run["markdown"].read_text(encoding="utf-8")
    for heading in ("# Benchmarks", "## Machine", "## Versions", "## Figures",
                    "| # | figure | value | baseline | ratio | target | result |"):
        assert heading in text
    for package in ("benchctl", "pyserial", "PyVISA", "pymodbus", "SQLAlchemy", "textual",
                    "PostgreSQL server"):
        assert f"| {package}" in text
    assert "--quick" in text


def test_unknown_benchmark_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--only", "nonsense", "--quick"]) == 2
    assert "no such benchmark" in capsys.readouterr().err


def test_table_escapes_pipes_and_says_why_a_figure_is_missing() -> None:
    from benchmarks.common import Figure

    table = figures_table([
        Figure(3, "store | a", 10.0, "readings/s", 5.0, "QCoDeS", 2.0, "x", "> 1", True),
        Figure(3, "store, PostgreSQL", None, "readings/s", skipped="no server at 127.0.0.1"),
    ])
    assert "store \\| a" in table and "**met**" in table
    assert "not measured: no server at 127.0.0.1" in table


def test_the_readme_shows_the_table_a_full_run_writes() -> None:
    """A full ``make bench`` rewrites the README's table between its two marker lines, and
    only there; the README in the tree carries that block."""
    from benchmarks.common import Figure
    from benchmarks.runner import README, README_END, README_START, readme_with_table

    readme = README.read_text(encoding="utf-8")
    assert readme.count(README_START) == 1 and readme.count(README_END) == 1
    figure = Figure(6, "start-up, benchctl --help", 0.1, "s", baseline=0.02,
                    baseline_label="python -c pass", ratio=5.0, target="≤ 0.3 s", met=True)
    info = {"date": "2026-12-05 07:00 UTC", "machine": {"cores": 2}, "load_start": 0.5}
    updated = readme_with_table(readme, [figure], info)
    before, after = readme.split(README_START)[0], readme.split(README_END)[1]
    assert updated.startswith(before) and updated.endswith(README_END + after)
    block = updated[len(before):len(updated) - len(README_END + after)]
    assert "2026-12-05 07:00 UTC" in block and "| 6 | start-up, benchctl --help |" in block
    assert block.count("\n| ") == 2  # the header and the one figure
    assert readme_with_table("no block here", [figure], info) == "no block here"

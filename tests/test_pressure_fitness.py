"""The pressure controller may only be used over the range its certificate covers."""

from __future__ import annotations

import shutil
from pathlib import Path

from benchhelp import ROOT, benchctl

DEMO = ROOT / "src" / "benchctl" / "demo_data"


def _copy(tmp_path: Path, dut_range: str, unit: str) -> Path:
    for name in ("demo-pressure-bench.toml", "demo-pace-reference.toml"):
        shutil.copy(DEMO / name, tmp_path / name)
    dut = (DEMO / "demo-pressure-gauge.toml").read_text(encoding="utf-8")
    dut = dut.replace("range = [0.0, 1000.0]", f"range = {dut_range}").replace(
        'unit = "kPa"', f'unit = "{unit}"')
    (tmp_path / "dut.toml").write_text(dut, encoding="utf-8")
    return tmp_path


def test_gauge_beyond_the_controller_certificate_is_refused(tmp_path: Path) -> None:
    # 0 … 25 bar = 0 … 2500 kPa; the PACE certificate covers 0 … 2000 kPa.
    d = _copy(tmp_path, "[0.0, 25.0]", "bar")
    (d / "answers.toml").write_text("confirm_all = true\n", encoding="utf-8")
    r = benchctl("run", "pressure_gauge", "--bench", str(d / "demo-pressure-bench.toml"),
                 "--dut", str(d / "dut.toml"), "--operator", f"answers:{d / 'answers.toml'}",
                 "--db", f"sqlite:///{d / 'b.db'}")
    assert r.returncode == 2, r.stderr
    assert "REF-P-001" in r.stderr
    assert "outside the range its certificate covers" in r.stderr
    assert "Traceback" not in r.stderr

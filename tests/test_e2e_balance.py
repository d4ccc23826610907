"""The balance job end to end, over real TCP and pty transports, against the simulators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchhelp import benchctl

from benchctl.config import load_bench
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, start_run
from benchctl.reports.document import run_document
from benchctl.store import open_database


def run_in_process(bench_dir: Path, simulation: Any, mode: str, params: list[str] | None = None
                   ) -> dict[str, Any]:
    bench = load_bench(bench_dir / "bench.toml")
    db = open_database(bench.database)
    opts = RunOptions(bench=bench, operator=SimulatedOperator(simulation.control_address), db=db,
                      speed=100.0, handle_signals=False)
    outcome = start_run("nawi_balance", str(bench_dir / "dut.toml"), mode, params or [], opts)
    assert outcome.state == "completed", outcome.message
    return run_document(db, outcome.run_id)


def test_calibration_finds_injected_linearity_and_eccentricity(bench_dir: Path,
                                                               simulation: Any) -> None:
    doc = run_in_process(bench_dir, simulation, "calibrate")
    balance = simulation.world.get("balance")
    d = 0.1
    weighing = [p for p in doc["points"] if p["test"] == "weighing"]
    assert {p["key"] for p in weighing} >= {"weighing.up.5g", "weighing.up.6200g",
                                            "weighing.down.5g"}
    for p in weighing:
        injected = balance.injected_error(p["nominal"])
        correction = p["reference"] - p["nominal"]  # the weights' conventional-mass correction
        # E = round_d(nominal + injected) − (nominal + correction)
        assert abs(p["error"] - (injected - correction)) <= d / 2 + 1e-9, p
        assert p["U"] is not None and p["U"] > 0 and p["k"] >= 2.0
    ecc = {p["position"]: p for p in doc["points"] if p["test"] == "eccentricity"}
    assert set(ecc) == {"centre", "front_left", "back_left", "back_right", "front_right"}
    for position, p in ecc.items():
        injected = balance.injected_error(p["nominal"], position)
        correction = p["reference"] - p["nominal"]
        assert abs(p["error"] - (injected - correction)) <= d / 2 + 1e-9, p
    # The injected errors are big enough to be seen: back_right −0.3 g at 2000 g.
    assert ecc["back_right"]["error"] < -0.2
    assert doc["environment"]["start"]["temperature_c"] == pytest.approx(21.0, abs=1.5)
    assert doc["references"][0]["certificate"] == "KLC-2025-0412"


def test_verification_fails_the_point_outside_mpe(bench_dir: Path, simulation: Any) -> None:
    doc = run_in_process(bench_dir, simulation, "verify")
    by_key = {p["key"]: p for p in doc["points"]}
    # Linearity +0.3 g at 4000 g: MPE there is 0.15 g (class II, e = 0.1 g, 2000 < m ≤ 10000).
    p = by_key["weighing.up.3100g"]
    assert p["mpe"] == 0.15
    assert p["verdict"] == ("fail" if abs(p["error"]) > 0.15 else "pass")
    assert by_key["eccentricity.back_right"]["verdict"] == "fail"  # −0.3 g > 0.1 g
    assert doc["verdict"] == "fail"
    # Every reading is in the record with its raw bytes.
    assert doc["readings"] >= doc["measured_points"]


def test_stdio_json_operator_in_a_separate_process(bench_dir: Path, simulation: Any) -> None:
    """This test is the operator: it reads requests and places loads on the simulated pan."""
    import subprocess
    import sys

    world = simulation.world
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchctl.cli", "run", "nawi_balance", "--bench",
         str(bench_dir / "bench.toml"), "--dut", str(bench_dir / "dut.toml"),
         "--operator", "stdio-json", "--mode", "verify", "--json", "--speed", "100"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin and proc.stdout
    requests = 0
    result = None
    try:
        for line in proc.stdout:
            msg = json.loads(line)
            if msg["type"] == "request":
                requests += 1
                action = msg.get("action") or {}
                if action.get("type") == "place_load":
                    world.apply({"type": "remove_load"})
                    assert world.apply(action)["ok"] is True
                elif action.get("type") == "remove_load":
                    world.apply(action)
                proc.stdin.write(json.dumps({"id": msg["id"], "ok": True}) + "\n")
                proc.stdin.flush()
            elif msg["type"] == "result":
                result = msg
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert result is not None and result["state"] == "completed"
    assert requests >= 20
    keys = [p["key"] for p in result["points"]]
    assert "weighing.up.6200g" in keys and "eccentricity.front_left" in keys


def test_stdio_json_rejects_bad_answers_then_accepts(bench_dir: Path, simulation: Any) -> None:
    import subprocess
    import sys

    world = simulation.world
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchctl.cli", "run", "nawi_balance", "--bench",
         str(bench_dir / "bench.toml"), "--dut", str(bench_dir / "dut.toml"),
         "--operator", "stdio-json", "--speed", "100", "--param", "loads=5,6200",
         "--param", "rep_n=2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin and proc.stdout
    complaints = []
    first = True
    for line in proc.stdout:
        msg = json.loads(line)
        if msg["type"] == "event" and msg.get("event") == "invalid_answer":
            complaints.append(msg["message"])
        if msg["type"] != "request":
            continue
        if first:
            first = False
            proc.stdin.write("this is not json\n")
            proc.stdin.write(json.dumps({"id": msg["id"] + 5, "ok": True}) + "\n")
        action = msg.get("action") or {}
        if action.get("type") == "place_load":
            world.apply({"type": "remove_load"})
            world.apply(action)
        elif action.get("type") == "remove_load":
            world.apply(action)
        proc.stdin.write(json.dumps({"id": msg["id"], "ok": True}) + "\n")
        proc.stdin.flush()
    proc.wait(timeout=60)
    assert proc.returncode == 0
    assert any("not JSON" in c for c in complaints)
    assert any("does not match request id" in c for c in complaints)


def test_cli_run_runs_show_report_and_list(bench_dir: Path, simulation: Any) -> None:
    bench = str(bench_dir / "bench.toml")
    db = f"sqlite:///{bench_dir / 'bench.db'}"
    r = benchctl("run", "nawi_balance", "--bench", bench, "--dut", str(bench_dir / "dut.toml"),
                 "--operator", "sim", "--mode", "calibrate", "--json", "--param",
                 "decision_rule=guarded", check=False)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    for key in ("run_id", "procedure", "procedure_sha256", "state", "dut", "references",
                "environment", "verdict", "points"):
        assert key in doc
    assert doc["decision_rule"] == "guarded"
    point = doc["points"][0]
    for key in ("key", "nominal", "unit", "reference", "indicated", "error", "error_unit", "U",
                "k", "mpe", "verdict", "test", "position", "direction", "series", "flow"):
        assert key in point
    # Progress went to stderr: steps and points.
    assert "step 3: Eccentricity test" in r.stderr
    run_id = str(doc["run_id"])
    listed = json.loads(benchctl("runs", "list", "--json", "--db", db, check=True).stdout)
    assert listed[0]["run_id"] == doc["run_id"]
    assert set(listed[0]) >= {"run_id", "procedure", "dut", "state", "started_at", "verdict"}
    shown = json.loads(benchctl("runs", "show", run_id, "--json", "--db", db, check=True).stdout)
    assert shown["points"] == doc["points"]
    out = bench_dir / "cert.html"
    benchctl("report", run_id, "--format", "html", "-o", str(out), "--db", db,
             "--reports-dir", str(bench_dir), check=True)
    html = out.read_text(encoding="utf-8")
    assert "GIẤY CHỨNG NHẬN HIỆU CHUẨN" in html and "KLC-2025-0412" in html
    assert "<svg" in html
    text = benchctl("runs", "show", run_id, "--db", db, check=True).stdout
    assert "weighing.up.6200g" in text


def test_unknown_parameter_and_mode_are_refused(bench_dir: Path) -> None:
    bench = str(bench_dir / "bench.toml")
    r = benchctl("run", "nawi_balance", "--bench", bench, "--dut", str(bench_dir / "dut.toml"),
                 "--operator", "sim", "--param", "colour=red")
    assert r.returncode == 2
    assert "has no parameter 'colour'" in r.stderr and "Traceback" not in r.stderr
    r = benchctl("run", "nawi_balance", "--bench", bench, "--dut", str(bench_dir / "dut.toml"),
                 "--operator", "sim", "--param", "loads=5,7000")
    assert r.returncode == 2
    assert "outside 0 … Max" in r.stderr


def test_stdio_json_pause_resume_and_abort(bench_dir: Path, simulation: Any) -> None:
    """A robot pauses the run between points, resumes it, and later aborts it; the stored
    run is aborted and resumable."""
    import subprocess
    import sys

    world = simulation.world
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchctl.cli", "run", "nawi_balance", "--bench",
         str(bench_dir / "bench.toml"), "--dut", str(bench_dir / "dut.toml"),
         "--operator", "stdio-json", "--speed", "100", "--json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin and proc.stdout
    states: list[str] = []
    requests = 0
    paused_once = aborted = False
    result = None

    def send(obj: dict[str, Any]) -> None:
        assert proc.stdin
        proc.stdin.write(json.dumps(obj) + "\n")
        proc.stdin.flush()

    for line in proc.stdout:
        msg = json.loads(line)
        if msg["type"] == "event" and msg.get("event") == "state":
            states.append(msg["state"])
            if msg["state"] == "paused":
                send({"type": "resume"})
        elif msg["type"] == "request":
            requests += 1
            action = msg.get("action") or {}
            if action.get("type") == "place_load":
                world.apply({"type": "remove_load"})
                world.apply(action)
            elif action.get("type") == "remove_load":
                world.apply(action)
            if requests == 3 and not paused_once:
                paused_once = True
                send({"type": "pause"})
            if requests == 8 and not aborted:
                aborted = True
                send({"type": "abort"})
            send({"id": msg["id"], "ok": True})
        elif msg["type"] == "result":
            result = msg
    proc.wait(timeout=60)
    assert proc.returncode == 1
    assert states[:4] == ["running", "paused", "running", "aborted"], states
    assert result is not None and result["state"] == "aborted"
    r = benchctl("runs", "show", str(result["run_id"]), "--json", "--db",
                 f"sqlite:///{bench_dir / 'bench.db'}", check=True)
    assert json.loads(r.stdout)["state"] == "aborted"

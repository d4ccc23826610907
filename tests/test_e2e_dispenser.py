"""The dispenser job end to end: both methods over real TCP and Modbus TCP against the
simulators, with the simulated technician, a stdio-json operator process and a SIGKILL."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from benchhelp import ROOT, benchctl, toml_value

from benchctl import library
from benchctl.assets import parse_dut, parse_reference
from benchctl.config import load_bench
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, start_run
from benchctl.errors import BenchctlError, ConfigError
from benchctl.operator import OperatorAnswer, OperatorRequest
from benchctl.reports.document import run_document
from benchctl.store import open_database

SPEED = 500.0
DEMO = ROOT / "src/benchctl/demo_data"
FILES = ("demo-dispenser.toml", "demo-measure-20L.toml", "demo-measure-2L.toml",
         "demo-master-meter.toml")
#: The injected meter error: +0.12 % at Qmax (40 L/min), −0.20 % at Qmin (5 L/min).
INJECTED = {"qmax": 0.12, "qmin": -0.20}
DISPENSER_SIM: dict[str, Any] = {
    "type": "sim_dispenser", "transport": "tcp", "error_curve": [[5.0, -0.20], [40.0, 0.12]],
    "fuel_temperature": 28.6, "measure_warming": 0.4, "max_flow": 42.0,
    "measure_volume": 20.004, "mmq_measure_volume": 1.9995,
}
MM_SIM: dict[str, Any] = {"type": "micromotion_modbus", "transport": "tcp", "float_order": 1,
                          "error_pct": 0.02}


def bench_text(resources: dict[str, str], control: str | None, db: str) -> str:
    lines = ["[bench]", 'name = "Dispenser test bench"', 'locale = "en"', f"speed = {SPEED}",
             f"database = {toml_value(db)}"]
    if control:
        lines += ["[simulation]", f"control = {toml_value(control)}"]
    lines += ["[instruments.dispenser]", 'driver = "sim_dispenser"',
              f"resource = {toml_value(resources['dispenser'])}", 'role = "dut"',
              "timeout = 1.0"]
    if "master_meter" in resources:
        lines += ["[instruments.master_meter]", 'driver = "micromotion_modbus"',
                  f"resource = {toml_value(resources['master_meter'])}",
                  'word_order = "little"']
        lines += ["[references.coriolis]", 'file = "demo-master-meter.toml"']
    lines += ["[references.measure]", 'file = "demo-measure-20L.toml"',
              "[references.mmq_measure]", 'file = "demo-measure-2L.toml"', ""]
    return "\n".join(lines)


Start = Callable[..., tuple[Any, Path]]


@pytest.fixture
def fuel_bench(tmp_path: Path) -> Iterator[Start]:
    """start(master_meter=True, **dispenser options) -> (running simulation, bench folder)."""
    library.configure([])
    sim_bench = library.load("simulators", "bench")
    started: list[Any] = []

    def start(*, master_meter: bool = True, **dispenser: Any) -> tuple[Any, Path]:
        specs: dict[str, Any] = {"dispenser": {**DISPENSER_SIM, **dispenser}}
        if master_meter:
            specs["master_meter"] = dict(MM_SIM)
        sim = sim_bench.start_simulation(specs, speed=SPEED, seed=5)
        started.append(sim)
        for name in FILES:
            (tmp_path / name).write_text((DEMO / name).read_text(encoding="utf-8"),
                                         encoding="utf-8")
        (tmp_path / "bench.toml").write_text(
            bench_text(dict(sim.resources), sim.control_address,
                       f"sqlite:///{tmp_path / 'bench.db'}"), encoding="utf-8")
        return sim, tmp_path

    yield start
    for sim in started:
        sim.stop()


def run(folder: Path, sim: Any, params: list[str],
        listeners: list[Callable[[dict[str, Any]], None]] | None = None) -> dict[str, Any]:
    bench = load_bench(folder / "bench.toml")
    db = open_database(bench.database)
    opts = RunOptions(bench=bench, operator=SimulatedOperator(sim.control_address), db=db,
                      speed=SPEED, handle_signals=False, listeners=listeners or [])
    outcome = start_run("fuel_dispenser", str(folder / "demo-dispenser.toml"), "verify", params,
                        opts)
    assert outcome.state == "completed", outcome.message
    return run_document(db, outcome.run_id)


def flat(p: dict[str, Any]) -> dict[str, Any]:
    return {**p, **(p.get("extra") or {})}


def by_key(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["key"]: flat(p) for p in doc["points"]}


def counted(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [flat(p) for p in doc["points"] if p["test"] == "delivery"
            and p["verdict"] != "discarded"]


# -- the acceptance: injected errors found by both methods ----------------------------------------


@pytest.mark.parametrize("method", [["method=proving_measure", "dispenser_reading=operator"],
                                    ["method=master_meter"]])
def test_injected_meter_error_is_found_by_both_methods(fuel_bench: Start,
                                                       method: list[str]) -> None:
    sim, folder = fuel_bench()
    doc = run(folder, sim, method)
    rows = by_key(doc)
    history = sim.world.get("dispenser").history
    deliveries = counted(doc)
    assert len(history) == len(deliveries) == 9  # 3 at Qmax, Qmin and the MMQ; no discards
    for p, truth in zip(deliveries, history, strict=True):
        assert p["error_unit"] == "%" and p["U"] > 0
        # The simulation knows each delivery's real error (ramp and slow-down included).
        assert abs(p["error"] - truth.error_pct) <= p["U"], (p["key"], truth)
    for rate, injected in INJECTED.items():
        for n in (1, 2, 3):
            p = rows[f"{rate}.delivery{n}"]
            assert abs(p["error"] - injected) <= p["U"], p
            assert p["mpe"] == 0.3 and p["verdict"] == "pass"
            assert p["flow"] == {"qmax": 40.0, "qmin": 5.0}[rate]
            assert p["flow_measured"] == pytest.approx(p["flow"], rel=0.15)
        assert abs(rows[rate]["error"] - injected) <= rows[rate]["U"]
        assert rows[rate]["verdict"] == "pass" and rows[rate]["n"] == 3
    assert rows["mmq.delivery1"]["mpe"] == 1.0  # E_min 20 mL on 2 L
    assert rows["price"]["verdict"] == "pass"
    assert doc["verdict"] == "pass"
    if "method=master_meter" in method:
        assert [r["asset"] for r in doc["references"]] == ["MM-CMF025-DEMO"]
        for p, truth in zip(deliveries, history, strict=True):
            assert abs(p["error"] - truth.error_pct) < 0.002  # its own error is corrected
    else:
        assert {r["asset"] for r in doc["references"]} == {"PM-20L-DEMO", "PM-2L-DEMO"}
        for p, truth in zip(deliveries, history, strict=True):
            tolerance = 0.0125 * (20.0 / p["nominal"]) + 0.002  # half a 5 mL neck division
            assert abs(p["error"] - truth.error_pct) <= tolerance, (p["key"], truth)


def test_out_of_tolerance_fails_with_the_rate_named(fuel_bench: Start) -> None:
    sim, folder = fuel_bench(error_curve=[[5.0, -0.45], [40.0, 0.10]])
    params = ["method=master_meter", "mmq_test=false"]
    doc = run(folder, sim, params)
    rows = by_key(doc)
    assert doc["verdict"] == "fail"
    assert rows["qmin"]["verdict"] == "fail" and rows["qmax"]["verdict"] == "pass"
    assert rows["qmin"]["failed_deliveries"] == ["qmin.delivery1", "qmin.delivery2",
                                                 "qmin.delivery3"]
    procedure = library.load("procedures", "fuel_dispenser")
    assert procedure.failing_rates([flat(p) for p in doc["points"]]) == ["Qmin"]
    table = procedure.format_table(doc)
    assert "verdict: FAIL — failing: Qmin" in table
    # The same dispenser under the OIML class 0.5 profile (±0.5 %) passes: profiles are data.
    doc = run(folder, sim, [*params, "profile=oiml", "q_intermediate=20", "rates=qmax,qint"])
    rows = by_key(doc)
    assert doc["verdict"] == "pass" and rows["qmax"]["mpe"] == 0.5
    assert rows["qint"]["flow"] == 20.0 and rows["qint"]["n"] == 3
    assert abs(rows["qint"]["error"] - (-0.45 + 0.55 * 15 / 35)) <= rows["qint"]["U"]


class Typist(SimulatedOperator):
    """The simulated technician, with slips of the hand: what a channel that does not check
    entries (an answers file, a robot) could hand the procedure."""

    def __init__(self, address: str, slips: dict[tuple[str, str], list[float]]) -> None:
        super().__init__(address)
        self.slips = slips
        self.texts: list[str] = []

    async def ask(self, request: OperatorRequest) -> OperatorAnswer:
        self.texts.append(request.text)
        answer = await super().ask(request)
        quantity = (request.action or {}).get("quantity", "")
        slips = self.slips.get((request.key, quantity))
        if request.kind == "number" and slips:
            return OperatorAnswer(value=slips.pop(0), unit=request.unit)
        return answer


def test_entries_are_checked_by_the_procedure_too(fuel_bench: Start) -> None:
    sim, folder = fuel_bench(master_meter=False)
    typist = Typist(sim.control_address, {
        ("qmax.delivery1", "neck_scale"): [12.0],       # between two divisions
        ("qmax.delivery1", "temperature"): [95.0],      # a thermometer cannot say that
        ("qmax.delivery2", "volume"): [-3.0, 99.0, 1e6],  # three bad entries: discarded
    })
    bench = load_bench(folder / "bench.toml")
    db = open_database(bench.database)
    opts = RunOptions(bench=bench, operator=typist, db=db, speed=SPEED, handle_signals=False)
    outcome = start_run("fuel_dispenser", str(folder / "demo-dispenser.toml"), "verify",
                        ["rates=qmax", "deliveries=2", "mmq_test=false",
                         "dispenser_reading=operator", "meter_temperature=none"], opts)
    assert outcome.state == "completed", outcome.message
    texts = "\n".join(typist.texts)
    assert "Not accepted: 12.0 is not a multiple of the resolution 5.0." in texts
    assert "Not accepted: 95.0 is above the maximum 60.0 degC." in texts
    rows = by_key(run_document(db, outcome.run_id))
    assert rows["qmax.delivery2.attempt1"]["reason"] == (
        "operator entry out of range: dispenser volume: 1000000.0 is above the maximum 22.0 L")
    assert rows["qmax.delivery1"]["t_meter"] is None  # meter_temperature = none
    assert rows["qmax"]["n"] == 2 and rows["qmax"]["discarded"] == 1


# -- interrupted deliveries ------------------------------------------------------------------------


def test_interrupted_deliveries_are_discarded_repeated_and_kept(fuel_bench: Start) -> None:
    sim, folder = fuel_bench()
    events: list[dict[str, Any]] = []

    def listener(event: dict[str, Any]) -> None:
        events.append(event)
        if event.get("event") != "delivery_started":
            return
        if event["key"] == "qmax.delivery1" and not any(
                e.get("key") == "qmax.delivery1" for e in events[:-1]
                if e.get("event") == "delivery_started"):
            # The technician hangs the nozzle up at 8 L.
            sim.world.apply({"type": "hang_up", "instrument": "dispenser",
                             "at": {"value": 8, "unit": "L"}})
        if event["key"] == "qmax.delivery2" and not any(
                e.get("event") == "paused" for e in events):
            # The console link drops mid-delivery (every retry of the driver too).
            sim.world.apply({"type": "fault", "instrument": "dispenser", "mode": "disconnect",
                             "count": 3})

    doc = run(folder, sim, ["method=proving_measure", "rates=qmax", "mmq_test=false"],
              [listener])
    rows = by_key(doc)
    hung = rows["qmax.delivery1.attempt1"]
    assert hung["verdict"] == "discarded" and hung["error"] is None
    assert "hung up at 8.00 L before the 20 L preset" in hung["reason"]
    lost = rows["qmax.delivery2.attempt1"]
    assert lost["verdict"] == "discarded"
    assert "instrument fault during the delivery attempt" in lost["reason"]
    assert sim.resources["dispenser"] in lost["reason"]
    assert any(e.get("event") == "paused" for e in events)
    # Counted: exactly three deliveries, each a complete one.
    assert [p["key"] for p in counted(doc)] == ["qmax.delivery1", "qmax.delivery2",
                                                "qmax.delivery3"]
    assert all(p["indicated"] == 20.0 for p in counted(doc))
    assert rows["qmax"]["n"] == 3 and rows["qmax"]["discarded"] == 2
    assert rows["qmax.delivery2"]["attempt"] == 2
    # Five deliveries really ran (8 L, the one whose link dropped, and three good ones) and
    # every attempt is in the record with its readings' point.
    assert len(sim.world.get("dispenser").history) == 5
    assert doc["measured_points"] == 5


def test_hang_up_without_a_link_is_seen_on_the_display(fuel_bench: Start) -> None:
    sim, folder = fuel_bench(master_meter=False)
    armed: list[bool] = []

    def listener(event: dict[str, Any]) -> None:
        if event.get("event") == "delivery_started" and event["key"] == "qmin.delivery1" \
                and not armed:
            armed.append(True)
            sim.world.apply({"type": "hang_up", "at": {"value": 12.5, "unit": "L"}})

    doc = run(folder, sim, ["dispenser_reading=operator", "mmq_test=false", "deliveries=2"],
              [listener])
    rows = by_key(doc)
    assert "ended at 12.50 L, short of the 20 L asked" in rows["qmin.delivery1.attempt1"]["reason"]
    assert rows["qmin"]["n"] == 2 and rows["qmin"]["discarded"] == 1


# -- a person at the keyboard (stdio-json), bad entries included ---------------------------------


def test_stdio_json_operator_entries_are_validated(fuel_bench: Start) -> None:
    """This test is the technician: it delivers on the simulated dispenser, reads the world
    and types, with mistakes."""
    sim, folder = fuel_bench(master_meter=False)
    world = sim.world
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchctl.cli", "run", "fuel_dispenser", "--bench",
         str(folder / "bench.toml"), "--dut", str(folder / "demo-dispenser.toml"),
         "--operator", "stdio-json", "--json", "--speed", str(SPEED), "--param", "rates=qmax",
         "--param", "mmq_test=false", "--param", "dispenser_reading=operator"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin and proc.stdout
    complaints: list[str] = []
    choices: list[dict[str, Any]] = []
    result = None
    mistakes = {"volume": [50.0], "neck_scale": [12.0]}  # above the maximum; off the division
    off_scale = [150.0, 150.0]  # delivery 2: typed twice off the neck scale

    def reply(obj: dict[str, Any]) -> None:
        proc.stdin.write(json.dumps(obj) + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    try:
        for line in proc.stdout:
            msg = json.loads(line)
            if msg["type"] == "event" and msg.get("event") == "invalid_answer":
                complaints.append(msg["message"])
            if msg["type"] == "result":
                result = msg
            if msg["type"] != "request":
                continue
            action = msg.get("action") or {}
            if msg["kind"] == "confirm":
                assert action["type"] == "deliver" and action["into"] == "measure"
                assert world.apply(action)["ok"]
                # Delivery 3's first attempt: the technician spilled fuel and says so.
                ok = not (msg["key"] == "qmax.delivery3" and not any(
                    c["key"] == "qmax.delivery3" for c in choices))
                if not ok:
                    choices.append({"key": "qmax.delivery3", "said": "interrupted"})
                reply({"id": msg["id"], "ok": ok})
            elif msg["kind"] == "number":
                quantity = action["quantity"]
                truth = world.apply(action)
                value = truth["value"]
                if msg["key"] == "qmax.delivery1" and mistakes.get(quantity):
                    value = mistakes[quantity].pop()
                elif msg["key"] == "qmax.delivery2" and quantity == "neck_scale" and off_scale:
                    value = off_scale.pop()
                assert msg["unit"] == truth["unit"]
                reply({"id": msg["id"], "value": value, "unit": msg["unit"]})
            elif msg["kind"] == "choice":
                choices.append({"key": msg["key"], "text": msg["text"], "options":
                                msg["options"]})
                first = sum(1 for c in choices if c.get("options")) == 1
                reply({"id": msg["id"], "value": "re-enter" if first else "discard"})
            else:
                reply({"id": msg["id"], "ok": True})
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert result is not None and result["state"] == "completed"
    # The channel refused the typos with a clear message, and the right value was taken.
    assert any("50.0 is above the maximum 22.0 L" in c for c in complaints), complaints
    assert any("12.0 is not a multiple of the resolution 5.0" in c for c in complaints)
    off = [c for c in choices if c.get("options")]
    assert off[0]["options"] == ["discard", "re-enter"]
    assert "150 mL is outside the neck scale (-100 … 100 mL)" in off[0]["text"]
    points = {p["key"]: flat(p) for p in result["points"]}
    assert "outside its scale -100 … 100 mL" in points["qmax.delivery2.attempt1"]["reason"]
    assert points["qmax.delivery3.attempt1"]["reason"] == \
        "the technician reported the delivery as interrupted"
    good = [p for p in result["points"] if p["test"] == "delivery"
            and p["verdict"] != "discarded"]
    assert [p["key"] for p in good] == ["qmax.delivery1", "qmax.delivery2", "qmax.delivery3"]
    for p in good:
        assert abs(p["error"] - INJECTED["qmax"]) <= p["U"]


# -- SIGKILL in the middle, then resume ----------------------------------------------------------


def _points(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return int(con.execute("SELECT count(*) FROM points").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_sigkill_then_resume_keeps_discarded_attempts(fuel_bench: Start) -> None:
    sim, folder = fuel_bench(master_meter=False)
    sim.world.apply({"type": "hang_up", "at": {"value": 8, "unit": "L"}})  # the first delivery
    db = folder / "bench.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchctl.cli", "run", "fuel_dispenser", "--bench",
         str(folder / "bench.toml"), "--dut", str(folder / "demo-dispenser.toml"),
         "--operator", "sim", "--json", "--speed", "50", "--param", "rates=qmax",
         "--param", "mmq_test=false"],  # slower: two deliveries (1.3 s) left to kill it in
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    try:
        while _points(db) < 2:  # the discarded attempt and the delivery repeated
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the run did not get far enough"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    resumed = benchctl("resume", "1", "--operator", "sim", "--json", "--db", f"sqlite:///{db}",
                       check=True)
    doc = json.loads(resumed.stdout)
    assert doc["state"] == "completed"
    keys = [p["key"] for p in doc["points"]]
    assert keys[0] == "qmax.delivery1.attempt1" and "hung up at 8.00 L" in \
        doc["points"][0]["extra"]["reason"]
    assert [k for k in keys if k.startswith("qmax.delivery") and "attempt" not in k] == \
        ["qmax.delivery1", "qmax.delivery2", "qmax.delivery3"]
    with sqlite3.connect(db) as con:
        stored = [r[0] for r in con.execute("SELECT key FROM points ORDER BY seq")]
    assert len(stored) == len(set(stored))


# -- refusing impossible jobs, clearly -----------------------------------------------------------


def test_bad_files_and_parameters_are_refused_clearly(fuel_bench: Start) -> None:
    import tomllib

    dut = tomllib.loads((DEMO / "demo-dispenser.toml").read_text(encoding="utf-8"))
    with pytest.raises(ConfigError, match=r"d\.toml: \[qmin\]: expected a flow rate below qmax"):
        parse_dut({**dut, "qmin": 50.0}, "d.toml")
    with pytest.raises(ConfigError, match=r"\[beta\].*'jet A1' is not a product"):
        parse_dut({**dut, "product": "jet A1"}, "d.toml")
    with pytest.raises(ConfigError, match=r"\[unit\]: expected \"L\""):
        parse_dut({**dut, "unit": "gal"}, "d.toml")
    with pytest.raises(ConfigError, match=r"\[mmq/resolution\]"):
        parse_dut({**dut, "resolution": 0.1}, "d.toml")
    measure = tomllib.loads((DEMO / "demo-measure-20L.toml").read_text(encoding="utf-8"))
    with pytest.raises(ConfigError, match=r"m\.toml: \[scale\]"):
        parse_reference({**measure, "scale": [10.0, 100.0]}, "m.toml")
    with pytest.raises(ConfigError, match=r"\[scale\[1\]\]: expected a multiple of scale_div"):
        parse_reference({**measure, "scale": [-100.0, 102.0]}, "m.toml")
    with pytest.raises(ConfigError, match=r"\[certificate\.volume\]"):
        parse_reference({**measure, "certificate": {**measure["certificate"],
                                                    "volume": 21.0}}, "m.toml")
    meter = tomllib.loads((DEMO / "demo-master-meter.toml").read_text(encoding="utf-8"))
    with pytest.raises(ConfigError, match=r"\[certificate\.U\].*U_unit"):
        parse_reference({**meter, "certificate": {k: v for k, v in meter["certificate"].items()
                                                  if k != "U_unit"}}, "mm.toml")

    sim, folder = fuel_bench(master_meter=False)
    bench = load_bench(folder / "bench.toml")
    db = open_database(bench.database)

    def start(*params: str) -> Any:
        opts = RunOptions(bench=bench, operator=SimulatedOperator(sim.control_address), db=db,
                          speed=SPEED, handle_signals=False)
        return start_run("fuel_dispenser", str(folder / "demo-dispenser.toml"), "verify",
                         list(params), opts)

    for params, message in [
        (["q_intermediate=50"], "not between Qmin (5) and Qmax (40 L/min)"),
        (["rates=qint"], "rates: qint needs q_intermediate"),
        (["mmq_flow=2"], "mmq_flow = 2 L/min is outside Qmin … Qmax"),
        (["method=master_meter"], "needs a reference 'master_meter' (flow_meter)"),
    ]:
        with pytest.raises(BenchctlError, match=re.escape(message)):
            start(*params)
    # Known only once the references are loaded: the run stops with the reason.
    outcome = start("volume=10", "mmq_test=false")
    assert outcome.state == "failed"
    assert "fills the measure PM-20L-DEMO to its nominal 20 L" in str(outcome.message)
    # The command line: exit 2, one clear line, no traceback.
    r = benchctl("run", "fuel_dispenser", "--bench", str(folder / "bench.toml"), "--dut",
                 str(folder / "demo-dispenser.toml"), "--operator", "sim", "--param",
                 "rates=qmax,qmed")
    assert r.returncode == 2 and "rates: 'qmed' is not a rate" in r.stderr
    assert "Traceback" not in r.stderr


def test_master_meter_used_only_inside_its_calibrated_range(fuel_bench: Start) -> None:
    sim, folder = fuel_bench()
    path = folder / "demo-master-meter.toml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "range = [2.0, 80.0]", "range = [10.0, 80.0]").replace(
        'number = "V08-2026-4410"', 'number = "V08-2026-4411"'), encoding="utf-8")
    bench = load_bench(folder / "bench.toml")
    opts = RunOptions(bench=bench, operator=SimulatedOperator(sim.control_address),
                      db=open_database(bench.database), speed=SPEED, handle_signals=False)
    with pytest.raises(BenchctlError) as info:
        start_run("fuel_dispenser", str(folder / "demo-dispenser.toml"), "verify",
                  ["method=master_meter"], opts)
    text = str(info.value)
    assert "is used over 5 … 40 L/min, outside the range its certificate covers " \
           "(10 … 80 L/min)" in text, text


def test_the_demo_job_is_complete() -> None:
    """`benchctl demo` runs the dispenser by both methods: its files parse, its parameter
    lists are accepted (running it is what the tests above do, faster)."""
    from benchctl.assets import load_dut_file, load_reference_file
    from benchctl.demo import demo_jobs
    from benchctl.engine.runner import load_procedure, parse_params

    job = next(j for j in demo_jobs() if j["name"] == "dispenser")
    bench = load_bench(DEMO / job["bench"])
    assert {i.driver for i in bench.instruments.values()} >= {"sim_dispenser",
                                                              "micromotion_modbus"}
    assert load_dut_file(DEMO / job["dut"]).kind == "fuel_dispenser"
    kinds = {load_reference_file(DEMO / f).kind for f in job["files"]}
    assert kinds == {"proving_measure", "flow_meter"}
    library.configure([])
    procedure = load_procedure(job["procedure"])
    methods = [parse_params(procedure, list(params))["method"] for params in job["runs"]]
    assert methods == ["proving_measure", "master_meter"]
    assert float(job["speed_factor"]) > 1

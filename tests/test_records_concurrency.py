"""Two benches (two processes) writing runs into one database at the same time: nothing is
lost, the audit chain stays linear and verifies, and no certificate number is issued twice.
On PostgreSQL (a centre's shared server) and on SQLite (two processes on one file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from benchctl.store import open_database
from benchctl.store import repository as repo

pytest_plugins = ["dbfixtures"]

RUNS_PER_BENCH = 5
POINTS_PER_RUN = 3

BENCH = textwrap.dedent(
    """
    import datetime as dt, json, os, sys, time
    from benchctl.instruments import Reading
    from benchctl.records import approval
    from benchctl.store import open_database
    from benchctl.store import repository as repo

    url, name, go, runs, points = sys.argv[1:6]
    db = open_database(url)
    while not os.path.exists(go):           # both benches start together
        time.sleep(0.005)
    started = time.time()
    done = []
    for i in range(int(runs)):
        with db.session() as s:
            proc = repo.register_procedure(s, "nawi_balance", "1.0", "NAWI", "R76", "text\\n")
            cert = repo.current_certificate(s, "WS-1", dt.date(2026, 1, 1))
            run = repo.create_run(s, procedure=proc, dut_asset_id="BAL-1", mode="calibrate",
                                  params={"bench": name, "i": i}, decision_rule="simple",
                                  bench=name, operator_kind="sim",
                                  references=[(cert, "weights")], performed_by="Op A")
            run_id = run.id
        for k in range(int(points)):
            with db.session() as s:
                rd = Reading(100.0 * k, "g", raw=f"S S {k}".encode())
                repo.record_point(s, run_id, f"p{k}", {"k": k, "bench": name}, [rd])
        with db.session() as s:
            repo.save_results(s, run_id, [{"key": f"p{k}"} for k in range(int(points))],
                              "pass")
            repo.set_run_state(s, run_id, "completed")
        approval.review(db, run_id, "Rev B")
        number = approval.approve(db, run_id, "Sig " + name)["certificate_number"]
        done.append([run_id, number])
    print(json.dumps({"bench": name, "runs": done, "started": started,
                      "ended": time.time()}), flush=True)
    """
)


def test_two_benches_write_runs_at_once(make_url: Callable[..., str], tmp_path: Path) -> None:
    url = make_url()
    db = open_database(url)
    try:
        import datetime as dt

        with db.session() as s:
            for name, roles in (("Op A", ["operator"]), ("Rev B", ["reviewer"]),
                                ("Sig 1", ["signatory"]), ("Sig 2", ["signatory"])):
                repo.add_person(s, name, roles)
            repo.upsert_asset(s, "WS-1", kind="weight_set", unit="g")
            repo.add_certificate(s, "WS-1", number="W-1", issuer="VMI",
                                 issued_on=dt.date(2025, 1, 1), due_on=dt.date(2027, 1, 1))
            repo.upsert_asset(s, "BAL-1", kind="balance", unit="g")
        go = tmp_path / "go"
        benches = [subprocess.Popen(
            [sys.executable, "-c", BENCH, url, name, str(go), str(RUNS_PER_BENCH),
             str(POINTS_PER_RUN)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}) for name in ("1", "2")]
        time.sleep(0.5)  # both have imported benchctl and opened the database
        go.touch()
        reports = []
        for proc in benches:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            reports.append(json.loads(out))

        # The two benches really overlapped.
        first, second = sorted(reports, key=lambda r: r["started"])
        assert second["started"] < first["ended"], reports

        issued = [n for r in reports for _, n in r["runs"]]
        run_ids = [i for r in reports for i, _ in r["runs"]]
        total = 2 * RUNS_PER_BENCH
        assert len(set(issued)) == len(issued) == total  # never the same number twice
        assert sorted(int(n.rsplit("-", 1)[1]) for n in issued) == list(range(1, total + 1))
        with db.session() as s:
            runs = repo.list_runs(s, limit=100)
            assert sorted(r.id for r in runs) == sorted(run_ids)  # nothing lost
            for run in runs:
                points = repo.completed_points(s, run.id)
                assert [p.seq for p in points.values()] == list(range(1, POINTS_PER_RUN + 1))
                assert {p.data["bench"] for p in points.values()} == {run.bench}
                assert len(repo.readings_of(s, run.id)) == POINTS_PER_RUN
                assert run.state == "completed" and run.certificate_number in issued
            assert repo.verify_audit(s) == (True, None)
    finally:
        db.dispose()

"""`benchctl sim` serves the simulators a bench file names; `benchctl read` reads them over
real transports (TCP and a pty), from another process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchhelp import benchctl

BENCH = """
[bench]
name = "Sim bench"
locale = "vi"

[simulation]
control = "127.0.0.1:0"

[instruments.balance]
driver = "mettler_sics"
resource = "socket://127.0.0.1:0"
[instruments.balance.simulator]
type = "mettler_sics"
max = 220.0
d = 0.001
settle_time = 1.0

[instruments.room]
driver = "vaisala_ptu"
resource = "pty"
bytesize = 8
parity = "N"
[instruments.room.simulator]
type = "vaisala_ptu"
transport = "pty"
temperature_c = 23.5
"""


def test_sim_then_read_from_another_process(tmp_path: Path) -> None:
    bench = tmp_path / "bench.toml"
    bench.write_text(BENCH, encoding="utf-8")
    live = tmp_path / "live.toml"
    proc = subprocess.Popen([sys.executable, "-m", "benchctl.cli", "sim", "--bench", str(bench),
                             "--speed", "20", "--write-bench", str(live)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout
        lines = []
        deadline = time.monotonic() + 30
        while not live.exists() or not any(line.startswith("bench file") for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        assert "balance" in text and "socket://127.0.0.1:" in text and "/dev/pts/" in text
        assert "control" in text

        r = benchctl("read", "balance", "--bench", str(live), "--json", check=True)
        reading = json.loads(r.stdout)
        assert reading["unit"] == "g" and reading["value"] == 0.0
        assert reading["raw"].startswith("S ")
        r = benchctl("read", "room", "--bench", str(live), "--json", check=True)
        room = json.loads(r.stdout)
        assert abs(room["temperature_c"] - 23.5) < 1.5
        r = benchctl("read", "balance", "--bench", str(live), "--watch", "--count", "3",
                     check=True)
        assert r.stdout.count("balance: 0 g") == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_sim_refuses_a_bad_simulator_table(tmp_path: Path) -> None:
    bench = tmp_path / "bench.toml"
    bench.write_text(BENCH.replace("max = 220.0", "maks = 220.0"), encoding="utf-8")
    r = benchctl("sim", "--bench", str(bench))
    assert r.returncode == 2
    assert "instruments.balance.simulator" in r.stderr and "maks" in r.stderr


def test_read_names_a_dead_resource(tmp_path: Path) -> None:
    bench = tmp_path / "bench.toml"
    bench.write_text(BENCH.replace("socket://127.0.0.1:0", "socket://127.0.0.1:9"),
                     encoding="utf-8")
    r = benchctl("read", "balance", "--bench", str(bench), timeout=60)
    assert r.returncode == 2
    assert "socket://127.0.0.1:9" in r.stderr and "Traceback" not in r.stderr

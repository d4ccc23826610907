"""``benchctl tui`` in a real terminal (a pty) against ``benchctl sim`` in another process,
over real transports; ``benchctl run --operator tui`` answered from the keyboard."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchhelp import DUT, WEIGHTS

BENCH = """
[bench]
name = "Sim bench"
locale = "en"
database = "sqlite:///bench.db"

[simulation]
control = "127.0.0.1:0"

[instruments.balance]
driver = "mettler_sics"
resource = "socket://127.0.0.1:0"
role = "dut"
[instruments.balance.simulator]
type = "mettler_sics"
max = 6200.0
d = 0.1
settle_time = 0.5

[instruments.room]
driver = "vaisala_ptu"
resource = "pty"
bytesize = 8
parity = "N"
[instruments.room.simulator]
type = "vaisala_ptu"
transport = "pty"
temperature_c = 23.5

[references.weights]
file = "weights.toml"
"""
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]|\x1bP[^\x1b]*\x1b\\")
F4 = b"\x1bOS"
CTRL_Q = b"\x11"


@pytest.fixture
def sim_bench(tmp_path: Path) -> Iterator[Path]:
    """`benchctl sim` running in its own process; the bench file with its resources."""
    (tmp_path / "bench.toml").write_text(BENCH, encoding="utf-8")
    (tmp_path / "weights.toml").write_text(WEIGHTS, encoding="utf-8")
    (tmp_path / "dut.toml").write_text(DUT, encoding="utf-8")
    live = tmp_path / "live.toml"
    proc = subprocess.Popen([sys.executable, "-m", "benchctl.cli", "sim", "--bench",
                             str(tmp_path / "bench.toml"), "--speed", "50", "--write-bench",
                             str(live)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout
        deadline = time.monotonic() + 30
        line = ""
        while not line.startswith("bench file"):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            line = proc.stdout.readline()
        yield live
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


class Terminal:
    """A process on a pseudo-terminal of a fixed size, and what it has drawn so far."""

    def __init__(self, args: list[str], cwd: Path, size: tuple[int, int] = (140, 40)) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(size[0]),
               "LINES": str(size[1])}
        env.pop("BENCHCTL_DATABASE_URL", None)
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                                     env=env, start_new_session=True)
        os.close(slave)
        self.raw = b""

    def read(self, seconds: float = 0.2) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                break
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.raw += chunk

    @property
    def text(self) -> str:
        return ANSI.sub(b"", self.raw).decode("utf-8", "replace")

    def wait_for(self, words: str, timeout: float = 60.0, *, keys: bytes = b"") -> None:
        deadline = time.monotonic() + timeout
        while words not in self.text:
            assert time.monotonic() < deadline, f"no {words!r} on screen:\n{self.text[-3000:]}"
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.text}"
            if keys:
                self.send(keys)
            self.read(0.1 if keys else 0.2)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self, timeout: float = 30.0) -> int:
        """Wait for the process to end, reading what it writes (a full pty would block it)."""
        try:
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                self.read(0.2)
            self.read(0.2)
            return self.proc.wait(timeout=1)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            with contextlib.suppress(OSError):
                os.close(self.master)


def test_tui_against_benchctl_sim_in_another_terminal(sim_bench: Path) -> None:
    term = Terminal([sys.executable, "-m", "benchctl.cli", "tui", "--bench", str(sim_bench),
                     "--rate", "2"], sim_bench.parent)
    try:
        term.wait_for("connected")
        term.wait_for("23.")  # the room's temperature, read over the pty
        term.wait_for("0.0 g")  # the balance, over TCP
        term.send(F4)
        term.wait_for("Customer")  # the history screen's filters
        term.send(CTRL_Q)
        code = term.close()
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    assert code == 0, term.text[-2000:]


def test_run_with_operator_tui_answered_from_the_keyboard(sim_bench: Path) -> None:
    """Enter answers each instruction (nobody puts weights on: the run completes, the
    indications are zero); Ctrl+Q leaves and the run is printed as `run` prints it."""
    folder = sim_bench.parent
    term = Terminal([sys.executable, "-m", "benchctl.cli", "run", "nawi_balance", "--bench",
                     str(sim_bench), "--dut", str(folder / "dut.toml"), "--operator", "tui",
                     "--param", "loads=5", "--param", "rep_n=2", "--param", "down=false",
                     "--speed", "50", "--json"], folder)
    try:
        term.wait_for("Instruction")
        term.wait_for("Run 1 ✓ completed", timeout=90, keys=b"\r")
        term.send(CTRL_Q)
        code = term.close()
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    assert code == 0, term.text[-2000:]
    assert '"state": "completed"' in term.text and '"run_id": 1' in term.text

"""Operator channels: terminal, answers file, and a manual balance read by the simulated
technician."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import tty
from pathlib import Path
from typing import Any

import pytest
from benchhelp import BENCHCTL, bench_text, benchctl

from benchctl.engine.operators import AnswersFileOperator, TerminalOperator, check_number
from benchctl.errors import ConfigError, OperatorAbort
from benchctl.operator import OperatorRequest

NUMBER = OperatorRequest(kind="number", key="weighing.up.5g", text="Read the balance",
                         unit="g", minimum=0.0, maximum=6200.0, resolution=0.1)


def test_check_number() -> None:
    assert check_number(NUMBER, 5.1, "g") is None
    assert "not a multiple of the resolution 0.1" in (check_number(NUMBER, 5.03, "g") or "")
    assert "above the maximum 6200.0 g" in (check_number(NUMBER, 7000, "g") or "")
    assert "below the minimum" in (check_number(NUMBER, -1, "g") or "")
    assert "unit 'kg' given, 'g' expected" in (check_number(NUMBER, 5, "kg") or "")
    assert check_number(NUMBER, float("nan"), "g") == "not a finite number"


def test_terminal_operator_validates_and_retries() -> None:
    out = io.StringIO()
    op = TerminalOperator(stdin=io.StringIO("abc\n5.03\n7000\n5,1\n"), stdout=out)
    answer = asyncio.run(op.ask(NUMBER))
    assert answer.value == 5.1 and answer.unit == "g" and answer.raw == b"5,1"
    text = out.getvalue()
    assert "'abc' is not a number" in text
    assert "not a multiple of the resolution 0.1" in text
    assert "above the maximum" in text
    assert "[weighing.up.5g] Read the balance" in text


def test_terminal_operator_instruction_confirm_abort_and_eof() -> None:
    op = TerminalOperator(stdin=io.StringIO("\nmaybe\ny\na\n"), stdout=io.StringIO())
    instr = OperatorRequest(kind="instruction", key="k", text="Place 2 kg")
    confirm = OperatorRequest(kind="confirm", key="k", text="Is the pan clean?")

    async def session() -> None:
        assert (await op.ask(instr)).ok is True
        assert (await op.ask(confirm)).ok is True   # "maybe" asked again, then "y"
        assert (await op.ask(instr)).abort is True
        with pytest.raises(OperatorAbort, match="end of input"):
            await op.ask(instr)

    asyncio.run(session())


# -- bytes that are not UTF-8 ----------------------------------------------------------------

TYPED = (b"5,1\xe9\n" b"tr\xe9e\n" b"5,1\n"  # two lines refused, then the number
         b"\xff\n" b"y\n"  # the confirmation
         b"\xc3\n" b"\n")  # half a UTF-8 character, then Enter for the instruction
REFUSED = [b"5,1\xe9", b"tr\xe9e", b"\xff", b"\xc3"]


def _ask_three(op: TerminalOperator) -> list[Any]:
    confirm = OperatorRequest(kind="confirm", key="k", text="Is the pan clean?")
    instr = OperatorRequest(kind="instruction", key="k", text="Place 2 kg")

    async def session() -> list[Any]:
        return [await op.ask(NUMBER), await op.ask(confirm), await op.ask(instr)]

    return asyncio.run(session())


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])
def test_terminal_operator_refuses_bytes_that_are_not_utf8_and_asks_again(errors: str) -> None:
    """A Latin-1 keyboard on a UTF-8 terminal, through a real pipe: each bad line is refused
    with the bytes shown and asked again, and nothing typed after it is lost. ``strict`` is
    how stdin decodes under a UTF-8 locale (one bad byte used to kill the reader thread and
    hang the run), ``surrogateescape`` under the C locale (the answer's raw bytes used to
    crash it)."""
    r, w = os.pipe()
    os.write(w, TYPED)
    os.close(w)
    out = io.StringIO()
    with open(r, encoding="utf-8", errors=errors) as stdin:
        number, confirmed, done = _ask_three(TerminalOperator(stdin=stdin, stdout=out))
    assert (number.value, number.raw) == (5.1, b"5,1")
    assert confirmed.ok is True and done.ok is True
    text = out.getvalue()
    for raw in REFUSED:
        assert f"{raw!r} is not UTF-8 text (set the terminal to UTF-8); type it again" in text
    assert "is not a number" not in text


def test_terminal_operator_on_a_pty_refuses_bytes_that_are_not_utf8() -> None:
    """The same bytes typed on a terminal (a pseudo-terminal in raw mode)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    out = io.StringIO()
    stdin = open(slave, encoding="utf-8", errors="strict")  # noqa: SIM115 - closed below
    try:
        os.write(master, TYPED)
        number, confirmed, done = _ask_three(TerminalOperator(stdin=stdin, stdout=out))
    finally:
        os.close(master)  # the terminal hangs up: the reader thread reads EIO and ends
        stdin.close()
    assert number.value == 5.1 and confirmed.ok and done.ok
    assert out.getvalue().count("is not UTF-8 text") == len(REFUSED)


@pytest.mark.parametrize("channel", ["pipe", "pty"])
def test_benchctl_read_of_a_manual_gauge_survives_bytes_that_are_not_utf8(
        tmp_path: Path, channel: str) -> None:
    """The real command: ``benchctl read`` of a dial gauge asks the technician at the
    terminal; stdin decodes strictly (as under vi_VN.UTF-8). Before: the reader thread died
    on the first bad byte and the command waited for ever."""
    bench = tmp_path / "bench.toml"
    bench.write_text('[bench]\nname = "Manual bench"\nlocale = "en"\n\n[instruments.dial]\n'
                     'driver = "manual"\nresource = "manual:dial"\nunit = "kPa"\n'
                     'resolution = 0.5\nplays = "pressure_indicator"\n', encoding="utf-8")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    args = [*BENCHCTL, "read", "dial", "--bench", str(bench), "--json"]
    typed = b"12\xe9\n12.5\n"
    if channel == "pipe":
        proc = subprocess.run(args, input=typed, capture_output=True, env=env, timeout=60)
        stdout, stderr = proc.stdout, proc.stderr
    else:
        master, slave = os.openpty()
        tty.setraw(slave)
        try:
            run = subprocess.Popen(args, stdin=slave, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=env)
            os.write(master, typed)
            stdout, stderr = run.communicate(timeout=60)
        finally:
            os.close(master)
            os.close(slave)
        proc = subprocess.CompletedProcess(args, run.returncode, stdout, stderr)
    assert proc.returncode == 0, stderr.decode("utf-8", "replace")
    assert json.loads(stdout)["value"] == 12.5
    assert b"b'12\\xe9' is not UTF-8 text" in stderr
    assert b"Traceback" not in stderr


def test_withdrawn_question_does_not_steal_the_next_answer() -> None:
    """The instrument came back while the technician was being asked: the question is
    withdrawn, and the next line typed answers the next question."""
    import os

    r, w = os.pipe()
    stdin = os.fdopen(r, "r")
    op = TerminalOperator(stdin=stdin, stdout=io.StringIO())

    async def session() -> float | str | None:
        pending = asyncio.ensure_future(op.ask(NUMBER))
        await asyncio.sleep(0.05)
        pending.cancel()
        os.write(w, b"5.1\n")
        answer = await op.ask(NUMBER)
        return answer.value

    try:
        assert asyncio.run(session()) == 5.1
    finally:
        os.close(w)


def test_answers_file(tmp_path: Path) -> None:
    f = tmp_path / "answers.toml"
    f.write_text('confirm_all = true\n[answers."weighing.up.*"]\nvalue = 5.1\nunit = "g"\n'
                 '[answers."eccentricity.*"]\nabort = true\n', encoding="utf-8")
    op = AnswersFileOperator(f)
    assert asyncio.run(op.ask(NUMBER)).value == 5.1
    assert asyncio.run(op.ask(OperatorRequest(kind="instruction", key="zero.start",
                                              text="x"))).ok
    assert asyncio.run(op.ask(OperatorRequest(kind="number", key="eccentricity.centre",
                                              text="x"))).abort
    with pytest.raises(OperatorAbort, match=r"no answer for number request 'repeatability\.1'"):
        asyncio.run(op.ask(OperatorRequest(kind="number", key="repeatability.1", text="x")))
    bad = tmp_path / "bad.toml"
    bad.write_text("[answers\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="valid TOML"):
        AnswersFileOperator(bad)


def _manual_bench(bench_dir: Path, simulation: Any) -> Path:
    text = bench_text(dict(simulation.resources), control=simulation.control_address,
                      db=f"sqlite:///{bench_dir / 'bench.db'}")
    text = text.replace('driver = "mettler_sics"', 'driver = "manual"').replace(
        f'resource = "{simulation.resources["balance"]}"',
        'resource = "manual"\nunit = "g"\nresolution = 0.1\nminimum = -1.0\nmaximum = 6209.0')
    text = text.replace("timeout = 5.0\n", "")
    path = bench_dir / "manual-bench.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_manual_balance_read_by_the_simulated_technician(bench_dir: Path,
                                                         simulation: Any) -> None:
    """A balance with no interface: the technician reads its display for every point."""
    bench = _manual_bench(bench_dir, simulation)
    r = benchctl("run", "nawi_balance", "--bench", str(bench), "--dut",
                 str(bench_dir / "dut.toml"), "--operator", "sim", "--json", "--param",
                 "loads=5,2000,6200", "--param", "rep_n=2")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    balance = simulation.world.get("balance")
    for p in doc["points"]:
        if p["test"] == "weighing":
            expected = balance.injected_error(p["nominal"]) - (p["reference"] - p["nominal"])
            assert abs(p["error"] - expected) <= 0.05 + 1e-9, p


def test_answers_file_run_completes(bench_dir: Path, simulation: Any) -> None:
    """Unattended: every instruction confirmed from the file (nobody places the loads, so
    the balance reads zero and the verification fails, as it must)."""
    answers = bench_dir / "answers.toml"
    answers.write_text("confirm_all = true\n", encoding="utf-8")
    r = benchctl("run", "nawi_balance", "--bench", str(bench_dir / "bench.toml"), "--dut",
                 str(bench_dir / "dut.toml"), "--operator", f"answers:{answers}", "--json",
                 "--param", "loads=5,6200", "--param", "rep_n=2")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["state"] == "completed" and doc["verdict"] == "fail"
    assert doc["operator"] == "answers"

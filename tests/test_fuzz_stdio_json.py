"""What a robot may write on a stdio-json run's stdin: any line, any bytes. The channel answers
with one of the documented complaints (an ``invalid_answer`` event, the request again) or
takes a valid answer; it never raises, never hangs, and never takes a bad value."""

from __future__ import annotations

import asyncio
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fuzzhelp import FUZZ
from hypothesis import example, given, settings
from hypothesis import strategies as st

from benchctl.engine.operators import StdioJsonOperator, _control_command
from benchctl.operator import OperatorRequest

RID = 7
REQUESTS = {
    "number": OperatorRequest(kind="number", key="p.1", text="read", unit="kPa",
                              minimum=-10.0, maximum=1000.0, resolution=0.1),
    "choice": OperatorRequest(kind="choice", key="p.2", text="?", options=("retry", "abort")),
    "confirm": OperatorRequest(kind="confirm", key="p.3", text="ok?"),
    "instruction": OperatorRequest(kind="instruction", key="p.4", text="do it"),
}
COMPLAINTS = [
    r"not JSON: .+", r"expected a JSON object",
    r"answer id .* does not match request id 7", r'expected a numeric "value"',
    r'expected "unit" as text', r"not a finite number", r"unit .* given, 'kPa' expected",
    r".* is below the minimum -10(\.0)? kPa", r".* is above the maximum 1000(\.0)? kPa",
    r".* is not a multiple of the resolution 0\.1",
    r"expected one of \['retry', 'abort'\]", r'expected "ok": true or false',
]

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
              st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)
answers = st.fixed_dictionaries(
    {}, optional={"id": st.one_of(st.just(RID), json_values),
                  "value": st.one_of(st.floats(-20, 1100), st.integers(-(10**30), 10**30),
                                     st.sampled_from(["retry", "abort", "x"]), json_values),
                  "unit": st.one_of(st.just("kPa"), json_values),
                  "ok": json_values, "abort": json_values, "type": json_values})
lines = st.one_of(
    st.text(max_size=60),
    answers.map(lambda d: json.dumps(d, allow_nan=True)),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),  # deeply nested JSON
    st.integers(300, 2000).map(lambda n: '{"id": 7, "value": 1' + "0" * n + "}"),  # huge int
)


def _accepts(kind: str, line: str) -> None:
    request = REQUESTS[kind]
    problem, answer = StdioJsonOperator._parse(RID, request, line)
    if answer is None:
        assert any(re.fullmatch(c, problem) for c in COMPLAINTS), problem
        return
    assert problem == ""
    assert answer.raw == line.rstrip("\n").encode("utf-8", "surrogatepass") or answer.raw
    if answer.abort:
        return
    if kind == "number":
        assert isinstance(answer.value, float) and math.isfinite(answer.value)
        assert -10.0 <= answer.value <= 1000.0 and answer.unit == "kPa"
    elif kind == "choice":
        assert answer.value in request.options
    else:
        assert isinstance(answer.ok, bool)


@settings(FUZZ)
@given(st.sampled_from(sorted(REQUESTS)), lines)
@example("number", '{"id": 7, "value": 1' + "0" * 400 + "}")
@example("number", "[" * 5000 + "]" * 5000)
@example("number", '{"id": 7, "value": NaN}')
@example("choice", '{"id": 7, "value": ["retry"]}')
def test_every_answer_line_is_taken_or_refused_with_a_documented_complaint(
        kind: str, line: str) -> None:
    _accepts(kind, line)


@settings(FUZZ)
@given(lines)
@example("[" * 5000 + "]" * 5000)
def test_control_lines_never_raise(line: str) -> None:
    command = _control_command(line)
    assert command in (None, "pause", "resume", "abort")


def test_a_burst_of_bad_lines_then_a_good_answer() -> None:
    """The channel itself, over a stream: every bad line is answered with an invalid_answer
    event and the request again; the good answer ends the question."""
    bad = ["", "not json", "[" * 5000 + "]" * 5000, '{"id": 7, "value": 1' + "0" * 400 + "}",
           '{"id": 1, "value": 5}', '{"id": 7, "value": "5"}', '{"id": 7, "value": 5.05}',
           '{"id": 7, "value": 5, "unit": "bar"}']
    good = '{"id": 7, "value": 5.1, "unit": "kPa"}'
    stdin = io.StringIO("\n".join([*bad[1:], good]) + "\n")
    stdout = io.StringIO()
    channel = StdioJsonOperator(stdin=stdin, stdout=stdout)
    channel._next_id = RID - 1

    async def ask() -> Any:
        return await asyncio.wait_for(channel.ask(REQUESTS["number"]), timeout=20)

    answer = asyncio.run(ask())
    assert answer.value == pytest.approx(5.1)
    out = [json.loads(x) for x in stdout.getvalue().splitlines()]
    complaints = [o for o in out if o.get("event") == "invalid_answer"]
    assert len(complaints) == len(bad) - 1
    assert len([o for o in out if o.get("type") == "request"]) == len(bad)


@pytest.mark.parametrize("decoding", ["strict", "surrogateescape"])
def test_bytes_that_are_not_utf8_do_not_hang_a_run(bench_dir: Path, simulation: Any,
                                                   decoding: str) -> None:
    """A robot writes a Latin-1 byte: the run says so and goes on (or stops cleanly): it never
    waits for ever on a reader that died. ``strict`` is how stdin decodes under a UTF-8 locale
    (vi_VN.UTF-8: one bad byte used to kill the reader thread), ``surrogateescape`` under the
    C locale."""
    import os

    world = simulation.world
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchctl.cli", "run", "nawi_balance", "--bench",
         str(bench_dir / "bench.toml"), "--dut", str(bench_dir / "dut.toml"), "--operator",
         "stdio-json", "--speed", "100", "--param", "loads=5,6200", "--param", "rep_n=2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONIOENCODING": f"utf-8:{decoding}"})
    assert proc.stdin and proc.stdout
    complaints = 0
    first = True
    try:
        for raw in proc.stdout:
            msg = json.loads(raw)
            if msg.get("event") == "invalid_answer":
                complaints += 1
            if msg.get("type") != "request":
                continue
            if first:
                first = False
                proc.stdin.write(b'{"id": 1, "ok": tr\xe9e}\n')  # not UTF-8
                proc.stdin.flush()
            action = msg.get("action") or {}
            if action.get("type") == "place_load":
                world.apply({"type": "remove_load"})
                world.apply(action)
            elif action.get("type") == "remove_load":
                world.apply(action)
            proc.stdin.write(json.dumps({"id": msg["id"], "ok": True}).encode() + b"\n")
            proc.stdin.flush()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert complaints >= 1

"""The TUI's pure parts: locale formats, the one catalogue, live buffering, the chart, the
run model, the dialogs' texts and number checks."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from benchctl import i18n
from benchctl.operator import OperatorRequest
from benchctl.tui.live import LiveBuffer, Sample, Status, buckets, derived_stable, is_shareable
from benchctl.tui.runctl import RunModel, bench_with_references, generic_preview
from benchctl.tui.widgets.error_chart import chart_points, draw, mpe_at
from benchctl.tui.widgets.instrument_panel import decimals_from_raw
from benchctl.tui.widgets.prompt_dialogs import number_problem, request_text

TUI = Path(__file__).resolve().parents[1] / "src" / "benchctl" / "tui"


# -- locale formats -------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "vi", "en"), [
    (1234.5, "1.234,5", "1,234.5"),
    (-0.003, "-0,003", "-0.003"),
    (2000.0, "2.000", "2,000"),
    (6200.0098, "6.200,0098", "6,200.0098"),
    (1e-5, "0,00001", "0.00001"),
    (1234567.125, "1.234.567,125", "1,234,567.125"),
    (-0.0, "0", "0"),
    (None, "—", "—"),
])
def test_numbers_as_each_locale_writes_them(value: float | None, vi: str, en: str) -> None:
    assert i18n.format_number(value, "vi") == vi
    assert i18n.format_number(value, "en") == en


def test_number_options() -> None:
    assert i18n.format_number(2000, "vi", decimals=2) == "2.000,00"
    assert i18n.format_number(0.123456, "en", digits=2) == "0.12"
    assert i18n.format_number(0.05, "en", digits=2, sign=True) == "+0.05"
    assert i18n.format_number(12345, "en", group=False) == "12345"
    assert i18n.resolution_decimals(0.05) == 2 and i18n.resolution_decimals(5.0) == 0


@pytest.mark.parametrize(("text", "locale", "value"), [
    ("1.234,5", "vi", 1234.5), ("1,234.5", "en", 1234.5), ("0,5", "vi", 0.5),
    ("0.5", "vi", 0.5),  # a keypad's decimal point on a Vietnamese bench
    ("0,5", "en", 0.5), ("2.000", "vi", 2000.0), ("2,000", "en", 2000.0),
    (" -3 ", "en", -3.0), ("\u22123,5", "vi", -3.5), ("12", "vi", 12.0),
])
def test_numbers_typed_in_either_locale(text: str, locale: str, value: float) -> None:
    assert i18n.parse_number(text, locale) == value


@pytest.mark.parametrize("text", ["", "abc", "1e5", "inf", "nan", "1.2.3,4,5", "1,234.5,6"])
def test_not_numbers_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        i18n.parse_number(text, "vi")


def test_dates() -> None:
    d = dt.date(2026, 11, 21)
    assert i18n.format_date(d, "vi") == "21/11/2026"
    assert i18n.format_date(d, "en") == "2026-11-21"
    assert i18n.parse_date("21/11/2026", "vi") == d
    assert i18n.parse_date("2026-11-21", "vi") == d  # ISO always accepted
    with pytest.raises(ValueError, match="21/11/2026"):
        i18n.parse_date("11/21/2026", "vi")
    t = dt.datetime(2026, 11, 21, 7, 5, tzinfo=dt.UTC)
    assert i18n.format_datetime(t, "vi", dt.timezone(dt.timedelta(hours=7))) == \
        "21/11/2026 14:05"
    assert i18n.format_datetime(t, "en", dt.UTC) == "2026-11-21 07:05"


# -- the one catalogue -----------------------------------------------------------------------

def _ids_in_sources() -> set[str]:
    ids: set[str] = set()
    for f in TUI.rglob("*.py"):
        ids.update(re.findall(r"[\"'](tui\.[a-z0-9_.]+[a-z0-9_])[\"']", f.read_text("utf-8")))
    return ids


def test_every_tui_text_is_in_the_catalogue_in_both_languages() -> None:
    used = _ids_in_sources()
    assert len(used) > 150
    missing = sorted(m for m in used if m not in i18n.CATALOGUE)
    assert not missing
    for message_id, entry in i18n.CATALOGUE.items():
        assert entry.get("vi") and entry.get("en"), message_id
        # Placeholders agree between the two languages.
        assert set(re.findall(r"{(\w+)", entry["vi"])) == \
            set(re.findall(r"{(\w+)", entry["en"])), message_id
    # The families built at run time are complete too.
    for family, members in (("tui.state", ("setup", "starting", "running", "paused",
                                           "completed", "aborted", "failed", "refused")),
                            ("tui.status", tuple(s.value for s in Status)),
                            ("tui.mode", ("verify", "calibrate"))):
        for member in members:
            assert f"{family}.{member}" in i18n.CATALOGUE


def test_register_still_guards_the_catalogue() -> None:
    with pytest.raises(ValueError, match="both"):
        i18n.register({"x.only_en": {"en": "x"}})
    with pytest.raises(ValueError, match="differently"):
        i18n.register({"tui.btn.ok": {"en": "Okay", "vi": "OK"}})
    assert i18n.t("tui.btn.ok", "vi") == "Đồng ý" and i18n.t("tui.btn.ok", "en") == "OK"


# -- live data ---------------------------------------------------------------------------

def test_buffer_versions_history_window_and_status() -> None:
    now = [100.0]
    buf = LiveBuffer(clock=lambda: now[0], window=60.0)
    buf.add("bal", driver="mettler_sics", role="balance", bench_role="dut", resource="r")
    seen: dict[str, int] = {}
    assert [v.name for v in buf.changed(seen)] == ["bal"]
    assert buf.changed(seen) == []  # nothing new
    for t in range(30, 101):
        buf.push("bal", Sample(float(t), float(t), "g", t % 2 == 0))
    view = buf.changed(seen)[0]
    assert view.status == Status.CONNECTED and view.samples == 71
    assert view.history[0][0] == 40.0  # older than a minute is dropped
    buf.set_status("bal", Status.DISCONNECTED, "refused")
    view = buf.changed(seen)[0]
    assert view.status == Status.DISCONNECTED and view.error == "refused"
    buf.set_status("bal", Status.DISCONNECTED, "refused")  # the same again: no redraw
    assert buf.changed(seen) == []


def test_sparkline_buckets_and_derived_stability() -> None:
    history = [(float(t), float(t)) for t in range(0, 60)]
    data = buckets(history, now=60.0, window=60.0, n=6)
    assert data == [4.5, 14.5, 24.5, 34.5, 44.5, 54.5]
    # A gap keeps the line flat; before the first sample nothing is invented.
    assert buckets([(35.0, 1.0), (55.0, 3.0)], now=60.0, window=60.0, n=6) == [1.0, 1.0, 3.0]
    assert buckets([], 60.0) == []
    assert derived_stable([(t / 10, 21.0) for t in range(50)], now=5.0) is True
    assert derived_stable([(t / 10, 21.0 + t) for t in range(50)], now=5.0) is False
    assert derived_stable([(4.9, 21.0)], now=5.0) is None


def test_shareable_resources() -> None:
    assert is_shareable("socket://127.0.0.1:4001")
    assert is_shareable("TCPIP::127.0.0.1::5025::SOCKET")
    assert is_shareable("modbus-tcp://127.0.0.1:5020?device_id=1")
    assert not is_shareable("/dev/ttyUSB0")
    assert not is_shareable("ASRL/dev/ttyUSB0::INSTR")
    assert not is_shareable("modbus-rtu:///dev/ttyUSB1?device_id=3")
    assert not is_shareable("GPIB0::22::INSTR")


def test_displayed_decimals_follow_the_instrument() -> None:
    assert decimals_from_raw(b"S S     100.00 g", 100.0) == 2
    assert decimals_from_raw(b"P=  1013.1 hPa T=  22.3 'C", 22.3) == 1
    assert decimals_from_raw(b"", 1.0) is None


# -- chart ----------------------------------------------------------------------------------

ROWS = [
    {"key": "weighing.up.5g", "test": "weighing", "nominal": 5.0, "error": 0.0, "U": 0.08,
     "mpe": 0.05, "verdict": "pass", "error_unit": "g"},
    {"key": "weighing.up.2000g", "test": "weighing", "nominal": 2000.0, "error": 0.1,
     "U": 0.19, "mpe": 0.1, "verdict": "pass", "error_unit": "g"},
    {"key": "weighing.up.6200g", "test": "weighing", "nominal": 6200.0, "error": 0.19,
     "U": 0.54, "mpe": 0.15, "verdict": "fail", "error_unit": "g"},
    {"key": "eccentricity.centre", "test": "eccentricity", "nominal": 2000.0, "error": 0.3,
     "mpe": 0.1, "verdict": "fail"},
]


def test_chart_points_envelope_and_drawing() -> None:
    pts = chart_points(ROWS)
    assert [p["key"] for p in pts] == ["weighing.up.5g", "weighing.up.2000g",
                                       "weighing.up.6200g"]
    envelope = [(5.0, 0.05), (2000.0, 0.1), (6200.0, 0.15)]
    assert mpe_at(envelope, 0.0) == 0.05 and mpe_at(envelope, 1000) == 0.1
    assert mpe_at(envelope, 6500) == 0.15
    text = draw(ROWS, 60, 16, "vi", "g").plain.splitlines()
    assert len(text) == 16
    assert text[0].startswith("Sai số / g")
    plot = "\n".join(text[1:-2])
    assert plot.count("●") == 3 and "│" in plot and "─" in plot
    assert "6.200" in text[-1] and "tải / g" in text[-1]
    # A dispenser's errors are in % against the flow.
    flows = [{"key": "qmax.delivery1", "test": "delivery", "nominal": 20.0, "flow": 40.0,
              "error": 0.2, "error_unit": "%", "mpe": 0.5, "verdict": "pass"}]
    assert chart_points(flows)[0]["x"] == 40.0
    assert "fills in" in draw([], 40, 10, "en").plain


# -- run model -----------------------------------------------------------------------------

def test_run_model_follows_the_events() -> None:
    m = RunModel()
    m.apply({"event": "starting", "procedure": "nawi_balance", "mode": "verify"})
    assert m.state == "starting" and m.active
    m.apply({"event": "started", "run_id": 7, "procedure": "nawi_balance", "mode": "verify",
             "dut": "BAL-1", "unit": "g", "done": {"zero.start": {"test": "zero"}}})
    m.apply({"event": "step", "step": 3, "id": "step.eccentricity", "title": "Eccentricity"})
    m.apply({"event": "point", "key": "ambient.start", "seq": 2, "data": {"test": "ambient"}})
    m.apply({"event": "point", "key": "eccentricity.centre", "seq": 3,
             "data": {"test": "eccentricity", "nominal": 2000.0, "reference": 2000.003,
                      "indicated": 2000.1}})
    assert m.row_keys() == ["zero.start", "eccentricity.centre"]
    m.apply({"event": "paused", "key": "x", "reason": "socket://h:1: connection closed"})
    assert m.state == "paused" and m.message_kind == "error"
    m.apply({"event": "state", "state": "running", "key": "x"})
    assert m.state == "running" and m.message is None
    m.apply({"event": "preview", "rows": [{"key": "repeatability", "range": 0.1}],
             "verdict": "pass"})
    assert m.row_keys()[-1] == "repeatability" and m.verdict == "pass" and not m.final
    m.apply({"event": "finished", "state": "completed", "document": {
        "run_id": 7, "procedure": "nawi_balance", "mode": "verify", "verdict": "fail",
        "dut": {"asset": "BAL-1", "unit": "g"},
        "points": [{"key": "eccentricity.centre", "error": 0.097, "extra": {"x": 1}}]}})
    assert m.state == "completed" and m.final and m.verdict == "fail"
    assert m.results["eccentricity.centre"]["x"] == 1
    m.apply({"event": "preview", "rows": [], "verdict": "pass"})  # late: ignored
    assert m.verdict == "fail"
    m.apply({"event": "refused", "message": "reference due"})
    assert m.state == "refused" and not m.active


def test_generic_preview_and_reference_choice() -> None:
    rows, verdict = generic_preview({
        "zero.start": {"test": "zero", "indicated": 0.0, "reference": 0.0},
        "p1": {"test": "series", "nominal": 100.0, "reference": 100.02, "indicated": 100.1,
               "unit": "kPa"}})
    assert verdict is None and [r["key"] for r in rows] == ["p1"]
    assert rows[0]["error"] == pytest.approx(0.08)
    from benchctl.config import parse_bench

    bench = parse_bench('[references.weights]\nasset = "WS-1"\n', Path("/tmp/b.toml"))
    other = bench_with_references(bench, {"weights": "WS-2"})
    assert other.references["weights"].asset == "WS-2"
    assert bench.references["weights"].asset == "WS-1"


# -- dialogs -------------------------------------------------------------------------------

def test_prompt_texts_follow_the_language_not_the_run() -> None:
    place = OperatorRequest(kind="instruction", key="weighing.up.2000g", text="(bilingual)",
                            action={"type": "place_load", "load": {"value": 2000, "unit": "g"},
                                    "position": "front_left", "weights": ["2000g"]})
    assert request_text(place, "vi") == \
        "Đặt tải 2.000 g (2000g) lên đĩa cân tại vị trí: trước trái."
    assert request_text(place, "en") == \
        "Place 2,000 g (2000g) on the pan at position: front left."
    fault = OperatorRequest(kind="choice", key="k", text="", options=("retry", "abort"),
                            action={"type": "instrument_fault", "resource": "socket://h:1",
                                    "error": "closed"})
    assert "balance" in request_text(fault, "en", {"socket://h:1": "balance"})
    unknown = OperatorRequest(kind="confirm", key="k", text="Do the thing / Làm việc đó")
    assert request_text(unknown, "vi") == "Do the thing / Làm việc đó"


def test_number_entry_checks_range_and_resolution_in_the_language() -> None:
    r = OperatorRequest(kind="number", key="k", text="", unit="kPa", minimum=0.0,
                        maximum=1000.0, resolution=0.5)
    assert number_problem(r, 250.5, "vi") is None
    assert number_problem(r, -1.0, "vi") == "Nhỏ hơn giá trị tối thiểu 0 kPa."
    assert number_problem(r, 1000.5, "en") == "Above the maximum 1,000 kPa."
    assert number_problem(r, 250.3, "vi") == "Không đúng vạch chia 0,5 kPa."


def test_retry_after_a_fault_reopens_the_instrument_through_the_engines_handle() -> None:
    """Retry of an instrument fault asks the run's own handle to reconnect
    (InstrumentHandle.reconnect): the slot keeps its handle; a reconnect that fails is a
    warning, not a crash of the run."""
    import asyncio
    from types import SimpleNamespace

    from benchctl.errors import InstrumentConnectionError
    from benchctl.tui.operator import TuiOperator
    from benchctl.tui.runctl import RunController

    class Handle:
        def __init__(self, name: str, resource: str, fail: bool = False) -> None:
            self.name, self.fail, self.calls = name, fail, 0
            self.config = SimpleNamespace(resource=resource)
            self.instrument = SimpleNamespace(resource=resource)

        async def reconnect(self) -> None:
            self.calls += 1
            if self.fail:
                raise InstrumentConnectionError(self.config.resource, "still away")

    def fault(resource: str) -> OperatorRequest:
        return OperatorRequest(kind="choice", key="k", text="", options=("retry", "abort"),
                               action={"type": "instrument_fault", "resource": resource})

    balance, room = Handle("balance", "socket://127.0.0.1:1"), Handle("room", "pty:x", True)
    controller = RunController(TuiOperator(lambda prompt: True), None)
    try:
        controller.ctx = SimpleNamespace(instruments={"balance": balance, "environment": room,
                                                      "other": None})
        asyncio.run(controller._reconnect(fault("socket://127.0.0.1:1")))
        assert balance.calls == 1 and room.calls == 0
        assert controller.ctx.instruments["balance"] is balance
        assert controller.drain() == [{"event": "reconnected", "instrument": "balance"}]
        asyncio.run(controller._reconnect(fault("pty:x")))
        events = controller.drain()
        assert room.calls == 1 and events[0]["event"] == "warning"
        assert "still away" in events[0]["message"]
        asyncio.run(controller._reconnect(fault("socket://elsewhere:2")))  # not this run's
        assert controller.drain() == [] and balance.calls == 1
    finally:
        controller.close()

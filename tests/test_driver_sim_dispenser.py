"""sim_dispenser driver: byte-exact requests, every reply and error, over TCP and VISA, and
against the simulated dispenser (reconnect after a dropped link)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import simhelp
from replay import ReplayServer, Script, load_driver

from benchctl.errors import (
    InstrumentBusy,
    InstrumentCommandError,
    InstrumentConnectionError,
    InstrumentTimeout,
    ProtocolError,
)
from benchctl.instruments import FuelDispenser

drv = load_driver("sim_dispenser")
STATUS_IDLE = (b"STATUS?\r\n", b"STATUS IDLE\r\n")


@contextlib.contextmanager
def dispenser(script: Script, *, kind: str = "socket_url", **options: Any) -> Iterator[Any]:
    """A replay server for ``script`` (after the connect-time STATUS?) and the driver on it."""
    with ReplayServer([STATUS_IDLE, *script]) as srv:
        d = drv.connect("pump", getattr(srv, kind), {"timeout": 0.3, **options})
        try:
            yield d
        finally:
            d.close()


# -- parse_reply / reply_error: pure ------------------------------------------------------------


@pytest.mark.parametrize(("line", "kind", "values", "state"), [
    (b"STATUS FUELLING", "STATUS", (), "FUELLING"),
    (b"OK", "OK", (), ""),
    (b"DELIVERY 19.96 468062 23450 37.8", "DELIVERY", (19.96, 468062.0, 23450.0, 37.8), ""),
    (b"TOTALS 123456.78 2894561234", "TOTALS", (123456.78, 2894561234.0), ""),
])
def test_parse_good_replies(line: bytes, kind: str, values: tuple[float, ...],
                            state: str) -> None:
    r = drv.parse_reply(line)
    assert (r.kind, r.values, r.state, r.raw) == (kind, values, state, line)


@pytest.mark.parametrize("line", [
    b"STATUS SLEEPING", b"DELIVERY 19.96 468062 23450", b"DELIVERY 19,96 1 2 3", b"ok",
    b"TOTALS -1 2", b"\xff\xfe", b"STATUS IDLE\x07", b"", b"ERR x bad",
])
def test_parse_refuses_anything_else(line: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        drv.parse_reply(line, "socket://pump")
    assert info.value.raw == line and "socket://pump" in str(info.value)


def test_reply_error_maps_codes() -> None:
    busy = drv.reply_error(drv.parse_reply(b"ERR 13 busy"), "AUTH 20.00", "OK", "r")
    assert isinstance(busy, InstrumentBusy) and busy.transient
    state = drv.reply_error(drv.parse_reply(b"ERR 12 not allowed in FUELLING"), "AUTH 20.00",
                            "OK", "r")
    assert isinstance(state, InstrumentCommandError) and not state.transient
    assert "ERR 12 not allowed in FUELLING" in str(state) and "AUTH 20.00" in str(state)
    internal = drv.reply_error(drv.parse_reply(b"ERR 90 internal error"), "STOP", "OK", "r")
    assert isinstance(internal, InstrumentCommandError) and internal.transient
    wrong = drv.reply_error(drv.parse_reply(b"OK"), "STATUS?", "STATUS", "r")
    assert isinstance(wrong, ProtocolError) and "does not belong" in str(wrong)
    assert drv.reply_error(drv.parse_reply(b"OK"), "STOP", "OK", "r") is None


# -- byte-exact conversations -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["socket_url", "visa_socket"])
def test_every_command_byte_exact(kind: str) -> None:
    script: Script = [
        (b"PRICE 23450\r\n", b"OK\r\n"),
        (b"AUTH 20.00\r\n", b"OK\r\n"),
        (b"STATUS?\r\n", b"STATUS AUTHORISED\r\n"),
        (b"DELIVERY?\r\n", b"DELIVERY 19.96 468062 23450 37.8\r\n"),
        (b"STOP\r\n", b"OK\r\n"),
        (b"TOTALS?\r\n", b"TOTALS 123456.78 2894561234\r\n"),
        (b"AUTH 2.50\r\n", b"OK\r\n"),
        (b"PRICE 21999.5\r\n", b"OK\r\n"),
        (b"STATUS?\r\n", b"STATUS IDLE\r\n"),  # identify() proves the link answers
    ]
    with dispenser(script, kind=kind, serial="D-77") as d:
        assert isinstance(d, FuelDispenser)
        d.set_price(23450)
        d.authorise(20.0)
        assert d.state() == "AUTHORISED"
        delivery = d.delivery()
        assert delivery.volume.value == 19.96 and delivery.volume.unit == "L"
        assert (delivery.amount, delivery.unit_price, delivery.flow) == (468062.0, 23450.0, 37.8)
        assert delivery.raw == b"DELIVERY 19.96 468062 23450 37.8"
        assert delivery.volume.instrument == "pump"
        d.stop()
        totals = d.totals()
        assert totals.volume.value == 123456.78 and totals.amount == 2894561234.0
        d.authorise(2.5)
        d.set_price(21999.5)
        identity = d.identify()
        assert identity.serial == "D-77" and identity.raw == b"STATUS IDLE"


def test_err_replies_raise_typed_errors() -> None:
    script: Script = [
        (b"AUTH 20.00\r\n", b"ERR 12 not allowed in FUELLING\r\n"),
        (b"STATUS?\r\n", b"ERR 13 busy\r\n"),
        (b"PRICE 1\r\n", b"ERR 11 bad value\r\n"),
        (b"STATUS?\r\n", b"STATUS IDLE\r\n"),
    ]
    with dispenser(script) as d:
        with pytest.raises(InstrumentCommandError, match="not allowed in FUELLING") as info:
            d.authorise(20.0)
        assert not info.value.transient
        with pytest.raises(InstrumentBusy):
            d.state()
        with pytest.raises(InstrumentCommandError, match="bad value"):
            d.set_price(1)
        assert d.state() == "IDLE"


def test_values_out_of_range_are_refused_before_sending() -> None:
    with dispenser([]) as d:
        for preset in (0.0, -1.0, 1000.0):
            with pytest.raises(InstrumentCommandError, match="preset"):
                d.authorise(preset)
        with pytest.raises(InstrumentCommandError, match="unit price"):
            d.set_price(0)


def test_garbage_then_a_late_reply_is_dropped_by_the_resync() -> None:
    script: Script = [
        (b"STATUS?\r\n", b"\x81\x92garbage\r\n"),
        STATUS_IDLE,  # back in step before the next command
        (b"STATUS?\r\n", [0.5, b"STATUS IDLE\r\n"]),   # arrives after the driver gave up
        STATUS_IDLE,
        (b"DELIVERY?\r\n", b"DELIVERY 1.00 23450 23450 0.0\r\n"),
    ]
    with dispenser(script) as d:
        with pytest.raises(ProtocolError, match="not ASCII"):
            d.state()
        with pytest.raises(InstrumentTimeout, match=r"no reply within 0\.3 s"):
            d.state()

        time.sleep(0.4)  # the stale STATUS line lands in the input buffer
        assert d.delivery().volume.value == 1.0


def test_a_late_totalizer_is_not_the_next_reading() -> None:
    """TOTALS? answered 0.7 s after it was sent (the driver waits 0.3 s): the late line has
    the shape of the next answer, so only the STATUS? exchange can tell it is old."""
    script: Script = [
        (b"TOTALS?\r\n", [0.7, b"TOTALS 100.00 2345000\r\n"]),
        STATUS_IDLE,  # sent while the late line is on its way; answered after it
        (b"TOTALS?\r\n", b"TOTALS 120.00 2814000\r\n"),
    ]
    with dispenser(script) as d:
        with pytest.raises(InstrumentTimeout):
            d.totals()
        assert d.totals().volume.value == 120.0


def test_a_resync_without_answer_is_a_timeout_then_the_stray_status_is_refused() -> None:
    script: Script = [
        (b"TOTALS?\r\n", None),
        (b"STATUS?\r\n", [0.9, b"STATUS IDLE\r\n"]),  # after the resync's 0.6 s
        STATUS_IDLE,  # the second resync takes the first STATUS line; this one is stray
        (b"TOTALS?\r\n", b"TOTALS 100.00 2345000\r\n"),  # never taken
        STATUS_IDLE,
        (b"TOTALS?\r\n", b"TOTALS 120.00 2814000\r\n"),
    ]
    with dispenser(script) as d:
        with pytest.raises(InstrumentTimeout):
            d.totals()
        with pytest.raises(InstrumentTimeout, match=r"no answer to b'STATUS\?' within 0.6 s"):
            d.totals()
        with pytest.raises(ProtocolError, match="does not belong to this command"):
            d.totals()
        assert d.totals().volume.value == 120.0


def test_a_number_too_large_for_a_float_is_refused() -> None:
    line = b"TOTALS " + b"9" * 400 + b" 1"
    with pytest.raises(ProtocolError, match="too large to be a reading") as info:
        drv.parse_reply(line, "pump")
    assert info.value.raw == line


def test_connect_fails_clearly_when_nothing_listens() -> None:
    from replay import free_port

    resource = f"socket://127.0.0.1:{free_port()}"
    with pytest.raises(InstrumentConnectionError) as info:
        drv.connect("pump", resource, {"timeout": 0.3})
    assert resource in str(info.value)


# -- against the simulated dispenser ------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[Any]:
    bench = simhelp.load("bench")
    with bench.start_simulation({"pump": {"type": "sim_dispenser", "standalone": False,
                                          "error_curve": [[5, -0.2], [40, 0.12]]}},
                                speed=200.0, seed=1, control=None) as s:
        yield s


def test_a_delivery_through_the_link(sim: Any) -> None:
    d = drv.connect("pump", sim.resources["pump"], {"timeout": 1.0})
    try:
        before = d.totals()
        assert d.state() == "IDLE"
        d.set_price(23450)
        d.authorise(20.0)
        assert d.state() == "AUTHORISED"
        reply = sim.world.apply({"type": "deliver", "volume": {"value": 20, "unit": "L"},
                                 "flow": {"value": 40, "unit": "L/min"}})
        assert reply["ok"], reply
        assert d.state() == "IDLE"
        delivery = d.delivery()
        assert delivery.volume.value == 20.0
        assert delivery.amount == 469000.0 and delivery.unit_price == 23450.0
        after = d.totals()
        assert after.volume.value == pytest.approx(before.volume.value + 20.0)
        assert after.amount == (before.amount or 0) + 469000.0
        # Not authorised: the dispenser (standalone = false) refuses to deliver.
        refused = sim.world.apply({"type": "deliver", "volume": 5, "flow": 40})
        assert refused["ok"] is False and "not authorised" in refused["error"]
    finally:
        d.close()


def test_a_dropped_link_is_reopened_on_the_next_command(sim: Any) -> None:
    d = drv.connect("pump", sim.resources["pump"], {"timeout": 1.0})
    try:
        sim.world.faults("pump").set("disconnect", 1)
        with pytest.raises(InstrumentConnectionError):
            d.state()
        assert d.state() == "IDLE"
    finally:
        d.close()

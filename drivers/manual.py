"""Instruments read by the technician: the reading comes through the operator channel.

A dial gauge, a mechanical balance, a dispenser's display or a proving measure's neck scale
has no data link: the technician reads it and types the number.  That is a first-class
driver here.  :class:`ManualIndicator` asks for one numeric reading and checks the answer
(unit, range, on a scale division), asking again with the reason up to ``attempts`` times;
:class:`ManualBalance` builds the Balance role on it, :class:`ManualPressureIndicator` the
PressureIndicator role (a dial gauge).  The role comes from the ``plays`` option
(:func:`role_for`; default ``balance``).  Later roles (dispenser displays, proving measures)
reuse ManualIndicator.

The check of an answer lives in :func:`check_answer` (pure, no I/O).

Options: ``unit`` and ``resolution`` (required: the scale division the technician reads),
``minimum``/``maximum`` (the range an answer must lie in), ``attempts``, ``plays``, and
``maker``, ``model``, ``serial`` for identify().
"""

from __future__ import annotations

import json
import math
from typing import Any

from benchctl.errors import (
    ConfigError,
    InstrumentCommandError,
    InstrumentError,
    OperatorAbort,
)
from benchctl.instruments import Balance, Identity, Instrument, PressureIndicator, Reading
from benchctl.operator import OperatorAnswer, OperatorPort, OperatorRequest

ROLE = "balance"

OPTIONS: dict[str, tuple[type, Any, str]] = {
    "unit": (str, None, "required: the unit the technician reads in (g, kPa, L, ...)"),
    "resolution": (float, None, "required: the scale division or last digit step (> 0)"),
    "minimum": (float, None, "lowest value an answer may have (optional)"),
    "maximum": (float, None, "highest value an answer may have (optional)"),
    "attempts": (int, 3, "how many answers to accept before giving up on a reading"),
    "maker": (str, "", "maker reported by identify()"),
    "model": (str, "", "model reported by identify()"),
    "serial": (str, "", "serial number reported by identify()"),
    "plays": (str, "balance", "the role the technician's readings stand for: balance or "
                              "pressure_indicator (a dial gauge)"),
}

#: Roles a manual instrument can play (``plays`` option) and the class that plays each.
MANUAL_ROLES = ("balance", "pressure_indicator")

#: Relative tolerance of the "multiple of the resolution" check.
RELATIVE_TOLERANCE = 1e-9


class BadAnswer(ValueError):
    """An answer that cannot be a reading; ``en``/``vi`` say why, for the technician."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(en)
        self.en = en
        self.vi = vi


def check_answer(
    answer: OperatorAnswer,
    *,
    unit: str,
    resolution: float,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """The value of a numeric answer, or BadAnswer saying why it is not acceptable.

    An answer without a unit is taken in the requested unit.  Text answers are parsed, with a
    decimal comma accepted (``"12,5"``: the Vietnamese way of writing 12.5).
    """
    value = _number(answer.value)
    if answer.unit is not None and answer.unit.strip() != unit:
        raise BadAnswer(
            f"the answer is in {answer.unit!r} but the reading must be in {unit}",
            f"giá trị nhập theo đơn vị {answer.unit!r} nhưng phải nhập theo {unit}",
        )
    if minimum is not None and value < minimum:
        raise BadAnswer(
            f"{_en(value)} {unit} is below the minimum {_en(minimum)} {unit}",
            f"{_vi(value)} {unit} nhỏ hơn giá trị nhỏ nhất {_vi(minimum)} {unit}",
        )
    if maximum is not None and value > maximum:
        raise BadAnswer(
            f"{_en(value)} {unit} is above the maximum {_en(maximum)} {unit}",
            f"{_vi(value)} {unit} lớn hơn giá trị lớn nhất {_vi(maximum)} {unit}",
        )
    steps = value / resolution
    if abs(steps - round(steps)) > RELATIVE_TOLERANCE * max(1.0, abs(steps)):
        raise BadAnswer(
            f"{_en(value)} {unit} is not on a scale division of {_en(resolution)} {unit}",
            f"{_vi(value)} {unit} không đúng vạch chia {_vi(resolution)} {unit}",
        )
    return value


def _number(value: float | str | None) -> float:
    if isinstance(value, bool) or value is None:
        raise BadAnswer("no number was given", "chưa nhập số")
    if isinstance(value, int | float):
        number = float(value)
    else:
        # A decimal point, or one decimal comma (Vietnamese); no thousands separators, so
        # "1.000" can only mean one.
        text = value.strip()
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            raise BadAnswer(f"{value!r} is not a number", f"{value!r} không phải là số") from None
    if not math.isfinite(number):
        raise BadAnswer(f"{value!r} is not a finite number", f"{value!r} không phải là số hữu hạn")
    return number


def _en(x: float) -> str:
    return f"{x:g}"


def _vi(x: float) -> str:
    return f"{x:g}".replace(".", ",")


def answer_bytes(answer: OperatorAnswer) -> bytes:
    """The answer as received, or its JSON when the channel kept no bytes (for the record)."""
    if answer.raw:
        return answer.raw
    data: dict[str, Any] = {"value": answer.value, "unit": answer.unit}
    return json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")


class ManualIndicator(Instrument):
    """Any numeric indication read by the technician, whatever the role.

    ``point_key`` (set by the engine before each reading) becomes the request key; without
    it the instrument's name is used.
    """

    #: What the technician reads, for the request text (English, Vietnamese).
    label_en = "indicator"
    label_vi = "thiết bị chỉ thị"

    def __init__(
        self,
        name: str,
        operator: OperatorPort,
        *,
        unit: str,
        resolution: float,
        minimum: float | None = None,
        maximum: float | None = None,
        attempts: int = 3,
        resource: str = "",
        maker: str = "",
        model: str = "",
        serial: str = "",
    ) -> None:
        if not resolution > 0:
            raise ValueError(f"resolution must be > 0, got {resolution!r}")
        if minimum is not None and maximum is not None and minimum > maximum:
            raise ValueError(f"minimum {minimum!r} is above maximum {maximum!r}")
        self.name = name
        self.operator = operator
        self.unit = unit
        self.resolution = resolution
        self.minimum = minimum
        self.maximum = maximum
        self.attempts = max(1, attempts)
        self.resource = resource or f"manual:{name}"
        self.point_key: str | None = None
        self._identity = Identity(maker=maker, model=model, serial=serial)

    def identify(self) -> Identity:
        return self._identity

    @property
    def key(self) -> str:
        return self.point_key or self.name

    # -- asking ----------------------------------------------------------------------------

    def read(self, *, stable: bool = True) -> Reading:
        """Ask the technician for the indication; validate; ask again (bounded) on a bad one."""
        reason: BadAnswer | None = None
        last_raw = b""
        for _ in range(self.attempts):
            answer = self._ask(self._read_request(reason))
            last_raw = answer_bytes(answer)
            try:
                value = check_answer(
                    answer,
                    unit=self.unit,
                    resolution=self.resolution,
                    minimum=self.minimum,
                    maximum=self.maximum,
                )
            except BadAnswer as bad:
                reason = bad
                continue
            return Reading(value, self.unit, stable=stable, raw=last_raw, instrument=self.name)
        assert reason is not None
        raise InstrumentError(
            self.resource,
            f"no valid reading of {self.name} after {self.attempts} answers: {reason.en}",
            raw=last_raw,
        )

    def confirm(self, action: dict[str, Any], en: str, vi: str) -> None:
        """Ask the technician to do something and confirm it (``ok: false`` is a refusal)."""
        answer = self._ask(
            OperatorRequest(kind="confirm", key=self.key, text=f"{en} / {vi}", action=action)
        )
        if not answer.ok:
            raise InstrumentCommandError(
                self.resource, f"the technician could not do it: {en}", raw=answer_bytes(answer)
            )

    def _ask(self, request: OperatorRequest) -> OperatorAnswer:
        answer = self.operator.ask(request)
        if answer.abort:
            raise OperatorAbort(f"the operator aborted while {self.name} was being read")
        return answer

    def _read_request(self, reason: BadAnswer | None) -> OperatorRequest:
        unit, res = self.unit, self.resolution
        en = (
            f"Read {self.label_en} {self.name!r} in {unit} "
            f"(resolution {_en(res)} {unit}) and enter the value."
        )
        vi = (
            f"Đọc số chỉ của {self.label_vi} {self.name!r} theo {unit} "
            f"(độ phân giải {_vi(res)} {unit}) và nhập giá trị."
        )
        if reason is not None:
            en = f"Not accepted: {reason.en}. {en}"
            vi = f"Không chấp nhận: {reason.vi}. {vi}"
        return OperatorRequest(
            kind="number",
            key=self.key,
            text=f"{en} / {vi}",
            action={"type": "read", "instrument": self.name, "unit": unit},
            unit=unit,
            minimum=self.minimum,
            maximum=self.maximum,
            resolution=res,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, unit={self.unit!r})"


class ManualBalance(ManualIndicator, Balance):
    """A balance whose indication the technician reads and types."""

    label_en = "balance"
    label_vi = "cân"

    def read_now(self) -> Reading:
        """The indication as read now (marked not stable: nobody waited for it to settle)."""
        return self.read(stable=False)

    def read_stable(self, timeout: float) -> Reading:
        """The settled indication.  ``timeout`` does not apply to a person: the operator
        channel decides how long to wait."""
        return self.read(stable=True)

    def zero(self) -> None:
        self.confirm(
            {"type": "zero", "instrument": self.name},
            f"Zero balance {self.name!r} (empty pan), then confirm.",
            f"Đặt cân {self.name!r} về không (bàn cân trống), rồi xác nhận.",
        )

    def tare(self) -> Reading:
        """Read the load to be tared (the tare value), then have the technician tare."""
        reading = self.read(stable=True)
        self.confirm(
            {"type": "tare", "instrument": self.name},
            f"Tare balance {self.name!r}, then confirm.",
            f"Trừ bì cân {self.name!r}, rồi xác nhận.",
        )
        return reading


class ManualPressureIndicator(ManualIndicator, PressureIndicator):
    """A dial gauge (or any pressure display without a link) read by the technician.

    The request names the point being read (its key, e.g. ``series1.up.500kPa``), the unit
    and the gauge's resolution; the ``read`` action carries the resolution too, so a
    simulated technician reads the dial as finely as a real one would.
    """

    label_en = "pressure gauge"
    label_vi = "đồng hồ áp suất"

    def _read_request(self, reason: BadAnswer | None) -> OperatorRequest:
        request = super()._read_request(reason)
        point = self.point_key
        action = {**(request.action or {}), "resolution": self.resolution}
        text = request.text
        if point:
            action["point"] = point
            en, _, vi = text.partition(" / ")
            text = f"Point {point}: {en} / Điểm {point}: {vi}"
        return OperatorRequest(
            kind=request.kind, key=request.key, text=text, action=action, unit=request.unit,
            minimum=request.minimum, maximum=request.maximum, resolution=request.resolution)


def role_for(options: dict[str, Any]) -> str:
    """The role this manual instrument plays: ``plays`` in bench.toml (``role`` is accepted
    too where it is a role name; bench.toml's own ``role`` key means dut/reference)."""
    value = options.get("plays") or options.get("role") or "balance"
    if value in ("dut", "reference", "environment"):
        value = "balance"
    if value not in MANUAL_ROLES:
        raise ConfigError("bench file", "plays",
                          f"a role a manual instrument can play ({', '.join(MANUAL_ROLES)})",
                          got=value)
    return str(value)


def connect(
    name: str, resource: str, options: dict[str, Any], *, operator: OperatorPort | None = None
) -> Instrument:
    where = f"instruments.{name}"
    if operator is None:
        raise InstrumentError(
            resource or f"manual:{name}",
            "a manual instrument is read by the technician, but no operator channel was given",
        )
    opt = {key: options.get(key, default) for key, (_t, default, _d) in OPTIONS.items()}
    for key in ("unit", "resolution"):
        if opt[key] is None:
            raise ConfigError("bench file", f"{where}.{key}", OPTIONS[key][2])
    try:
        plays = role_for(options)
    except ConfigError:
        raise ConfigError("bench file", f"{where}.plays",
                          f"one of {', '.join(MANUAL_ROLES)}", got=options.get("plays")) from None
    cls: type[ManualIndicator] = ManualPressureIndicator if plays == "pressure_indicator" \
        else ManualBalance
    try:
        return cls(
            name,
            operator,
            unit=str(opt["unit"]),
            resolution=float(opt["resolution"]),
            minimum=None if opt["minimum"] is None else float(opt["minimum"]),
            maximum=None if opt["maximum"] is None else float(opt["maximum"]),
            attempts=int(opt["attempts"]),
            resource=resource,
            maker=str(opt["maker"]),
            model=str(opt["model"]),
            serial=str(opt["serial"]),
        )
    except ValueError as exc:
        raise ConfigError("bench file", where, str(exc)) from exc

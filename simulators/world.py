"""The simulated world: a clock that can run faster than real time, seeded randomness, the
named simulated objects (balances, the room's air, ...) and the operator actions that change
them.

Physics is evaluated lazily from the clock: every simulated object stores the time of its last
change and computes its state at ``clock.now()`` when asked, so no ticking thread is needed and
``speed`` simply scales the clock.

Operator actions are the machine-readable ``action`` objects of DESIGN.md's ``stdio-json``
contract, applied with :meth:`SimWorld.apply`::

    {"type": "place_load", "load": {"value": 200, "unit": "g"}, "position": "centre",
     "instrument": "balance"}                      # instrument optional with one balance
    {"type": "remove_load"}                        # everything off the pan
    {"type": "read", "instrument": "balance"}      # what the display shows now
    {"type": "set_ambient", "temperature_c": 21.5, "humidity_pct": 50, "pressure_hpa": 1005}
    {"type": "set_ambient", "drift": {"temperature_c": 6.0}}   # per simulated hour, 0 stops
    {"type": "fault", "instrument": "balance", "mode": "garbage", "count": 2}
    {"type": "fault", "instrument": "balance", "mode": "slow", "delay": 300}
    {"type": "fault", "instrument": "gauge", "mode": "exception", "code": 2}
    {"type": "fault", "instrument": "controller", "mode": "queue_error", "code": -222}
    {"type": "power_cycle", "instrument": "balance"}

Every reply is a dict with ``"ok": True`` and details, or ``"ok": False`` and ``"error"``.
"""

from __future__ import annotations

import math
import random
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .vaisala_ptu import SimEnvironment

__all__ = [
    "FAULT_MODES",
    "INSTRUMENT_FAULTS",
    "MASS_UNITS",
    "ActionError",
    "FaultInjector",
    "FaultSpec",
    "ManualClock",
    "SimClock",
    "SimWorld",
    "convert_mass",
]

# Mass units a load may be given in, as exact integer multiples of a milligram.
MASS_UNITS: dict[str, int] = {"mg": 1, "g": 1000, "kg": 1_000_000}


def convert_mass(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a mass between mg, g and kg (case-sensitive unit symbols)."""
    for unit in (from_unit, to_unit):
        if unit not in MASS_UNITS:
            raise ValueError(f"unknown mass unit {unit!r}; expected one of mg, g, kg")
    if from_unit == to_unit:
        return float(value)
    return float(value) * MASS_UNITS[from_unit] / MASS_UNITS[to_unit]


class SimClock:
    """Simulated time: seconds since the clock was made, running ``speed`` times real time."""

    def __init__(self, speed: float = 1.0) -> None:
        speed = float(speed)
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since start."""
        return (time.monotonic() - self._t0) * self.speed

    def real_seconds(self, sim_seconds: float) -> float:
        """How long ``sim_seconds`` of simulated time lasts in real time."""
        return max(0.0, float(sim_seconds)) / self.speed

    def sleep(self, sim_seconds: float) -> None:
        """Block for ``sim_seconds`` of simulated time (``sim_seconds / speed`` real seconds)."""
        real = self.real_seconds(sim_seconds)
        if real > 0:
            time.sleep(real)


class ManualClock(SimClock):
    """A clock that moves only when told to (``advance``/``sleep``): for deterministic physics
    tests. Do not hand it to servers: their waits are real-time ``sim/speed``."""

    def __init__(self, start: float = 0.0, speed: float = 1.0) -> None:
        super().__init__(speed)
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, sim_seconds: float) -> None:
        if sim_seconds < 0:
            raise ValueError("a clock does not run backwards")
        with self._lock:
            self._now += float(sim_seconds)

    def sleep(self, sim_seconds: float) -> None:
        self.advance(max(0.0, float(sim_seconds)))


# --------------------------------------------------------------------------------------------
# Faults

FAULT_MODES: tuple[str, ...] = (
    "silence",  # no reply at all
    "garbage",  # random non-protocol bytes + CR LF instead of the reply
    "truncated",  # the first half of the reply line, no terminator
    "error",  # the protocol's general error reply (MT-SICS ``ES``)
    "busy",  # the protocol's "not now" reply (MT-SICS ``<ID> I``, e.g. ``S I``)
    "stall",  # half the line, then the rest after ``delay`` simulated seconds
    "wrong_unit",  # the weight in kg instead of g (g instead of kg)
    "disconnect",  # the server closes the client connection (TCP) instead of replying
    "power_cycle",  # the instrument reboots: reply lost, power-up line sent unprompted
    "slow",  # the whole reply, ``delay`` simulated seconds late (longer than a timeout: stale)
    "refuse",  # the reply is lost, the connection dropped, and new connections are reset at
    #            once (unplugged / switched off): each dropped reply or refused connection
    #            counts one
    "exception",  # Modbus: an exception response with ``code``; line protocols: ``error``
)
#: Modes applied to the instrument itself at once rather than to its next replies.
INSTRUMENT_FAULTS: tuple[str, ...] = (
    "queue_error",  # ``count`` entries ``code`` pushed into the instrument's error queue
)


@dataclass(frozen=True)
class FaultSpec:
    """One injected fault, consumed by one reply line."""

    mode: str
    delay: float = 1.0  # simulated seconds, for "stall" and "slow"
    code: int | None = None  # for "exception" (a Modbus exception code)


class FaultInjector:
    """The faults pending for one instrument; protocol handlers ``take()`` one per reply line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mode: str | None = None
        self._count = 0
        self._delay = 1.0
        self._code: int | None = None

    def set(self, mode: str, count: int = 1, delay: float = 1.0, code: int | None = None
            ) -> None:
        if mode not in FAULT_MODES:
            known = ", ".join(FAULT_MODES)
            raise ValueError(f"unknown fault mode {mode!r}; expected one of {known}")
        if count < 0:
            raise ValueError("fault count must be >= 0")
        with self._lock:
            self._mode, self._count, self._delay = mode, int(count), float(delay)
            self._code = code

    def clear(self) -> None:
        with self._lock:
            self._mode, self._count = None, 0

    @property
    def pending(self) -> tuple[str | None, int]:
        with self._lock:
            return (self._mode if self._count else None), self._count

    def take(self) -> FaultSpec | None:
        """The fault to apply to the next reply line, or None; decrements the count."""
        with self._lock:
            if self._mode is None or self._count <= 0:
                return None
            self._count -= 1
            spec = FaultSpec(self._mode, self._delay, self._code)
            if self._count == 0:
                self._mode = None
            return spec

    def take_connection(self) -> bool:
        """True when a new connection must be refused ("refuse" pending); counts one."""
        with self._lock:
            if self._mode != "refuse" or self._count <= 0:
                return False
            self._count -= 1
            if self._count == 0:
                self._mode = None
            return True


# --------------------------------------------------------------------------------------------
# The world


class ActionError(Exception):
    """An operator action that cannot be applied; becomes ``{"ok": false, "error": ...}``."""


ActionHandler = Callable[[Mapping[str, Any]], dict[str, Any]]


class SimWorld:
    """The clock, seeded randomness and the named simulated objects of one simulation.

    Objects are duck-typed: anything with ``place_load``/``remove_load`` is a balance,
    ``operator_read()`` answers the ``read`` action, ``power_cycle()`` is called by the
    ``power_cycle`` action, and ``apply_action(action)`` may handle further action types
    (e.g. a simulated dispenser's ``deliver``).
    """

    def __init__(self, speed: float = 1.0, seed: int = 0, *, clock: SimClock | None = None):
        self.clock = clock if clock is not None else SimClock(speed)
        self.seed = int(seed)
        self.random = random.Random(self.seed)
        self.rng = np.random.default_rng(self.seed)
        self._objects: dict[str, Any] = {}
        self._faults: dict[str, FaultInjector] = {}
        self._power_hooks: dict[str, list[Callable[[], None]]] = {}
        self._actions: dict[str, ActionHandler] = {}
        self._lock = threading.RLock()
        from .vaisala_ptu import SimEnvironment  # local import: vaisala_ptu imports this module

        self.environment: SimEnvironment = SimEnvironment(self.clock, self.rng_for("environment"))

    # -- randomness ---------------------------------------------------------------------------
    def rng_for(self, name: str) -> np.random.Generator:
        """A numpy Generator for one object, seeded from (seed, name): adding an instrument does
        not change the random streams of the others."""
        return np.random.default_rng([self.seed, zlib.crc32(name.encode("utf-8"))])

    def random_for(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    # -- objects ------------------------------------------------------------------------------
    def add(self, name: str, obj: Any) -> Any:
        with self._lock:
            if name in self._objects:
                raise ValueError(f"a simulated object named {name!r} already exists")
            self._objects[name] = obj
            return obj

    def get(self, name: str) -> Any:
        with self._lock:
            try:
                return self._objects[name]
            except KeyError:
                known = ", ".join(sorted(self._objects)) or "none"
                raise KeyError(f"no simulated object named {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        with self._lock:
            return list(self._objects)

    def faults(self, name: str) -> FaultInjector:
        """The fault injector of instrument ``name`` (created on first use)."""
        with self._lock:
            return self._faults.setdefault(name, FaultInjector())

    def on_power_cycle(self, name: str, hook: Callable[[], None]) -> Callable[[], None]:
        """Call ``hook`` after instrument ``name`` is power-cycled (protocol servers use it to
        send the power-up line). Returns a function that removes the hook."""
        with self._lock:
            self._power_hooks.setdefault(name, []).append(hook)

        def remove() -> None:
            with self._lock:
                hooks = self._power_hooks.get(name, [])
                if hook in hooks:
                    hooks.remove(hook)

        return remove

    def register_action(self, action_type: str, handler: ActionHandler) -> None:
        """Add (or replace) the handler of an action type, for other simulated objects."""
        self._actions[action_type] = handler

    def power_cycle(self, name: str) -> None:
        obj = self.get(name)
        if hasattr(obj, "power_cycle"):
            obj.power_cycle()
        with self._lock:
            hooks = list(self._power_hooks.get(name, []))
        for hook in hooks:
            hook()

    # -- actions ------------------------------------------------------------------------------
    def apply(self, action: Mapping[str, Any]) -> dict[str, Any]:
        """Apply one operator action; never raises for a bad action (``ok`` false instead)."""
        if not isinstance(action, Mapping):
            return {"ok": False, "error": "an action must be a JSON object"}
        kind = action.get("type")
        builtin: dict[str, ActionHandler] = {
            "place_load": self._place_load,
            "remove_load": self._remove_load,
            "read": self._read,
            "zero": self._zero,
            "tare": self._tare,
            "set_ambient": self._set_ambient,
            "fault": self._fault,
            "power_cycle": self._power_cycle,
        }
        handler = self._actions.get(kind) if isinstance(kind, str) else None
        if handler is None and isinstance(kind, str):
            handler = builtin.get(kind)
        try:
            if handler is not None:
                return handler(action)
            delegated = self._delegate(action)
            if delegated is not None:
                return delegated
        except (ActionError, ValueError, KeyError, TypeError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return {"ok": False, "error": str(message)}
        known = ", ".join(sorted(set(builtin) | set(self._actions)))
        return {"ok": False, "error": f"unknown action type {kind!r}; known: {known}"}

    def _delegate(self, action: Mapping[str, Any]) -> dict[str, Any] | None:
        name = action.get("instrument")
        if isinstance(name, str) and name in self._objects:
            obj = self._objects[name]
            if hasattr(obj, "apply_action"):
                result: dict[str, Any] | None = obj.apply_action(action)
                return result
        return None

    def _resolve(self, action: Mapping[str, Any], capability: str, what: str) -> tuple[str, Any]:
        name = action.get("instrument")
        with self._lock:
            if name is not None:
                if not isinstance(name, str) or name not in self._objects:
                    known = ", ".join(sorted(self._objects)) or "none"
                    raise ActionError(f"no simulated instrument {name!r} (known: {known})")
                obj = self._objects[name]
                if not hasattr(obj, capability):
                    raise ActionError(f"instrument {name!r} is not a {what}")
                return name, obj
            found = [(n, o) for n, o in self._objects.items() if hasattr(o, capability)]
        if len(found) == 1:
            return found[0]
        if not found:
            raise ActionError(f"there is no simulated {what}")
        names = ", ".join(n for n, _ in found)
        raise ActionError(
            f"several instruments could be meant ({names}): name one with 'instrument'")

    @staticmethod
    def _number(action: Mapping[str, Any], key: str) -> float:
        value = action.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise ActionError(f"{key!r} must be a number, got {value!r}")
        return float(value)

    def _load(self, action: Mapping[str, Any], unit: str) -> tuple[float, str]:
        load = action.get("load")
        if isinstance(load, int | float) and not isinstance(load, bool):
            return float(load), unit
        if not isinstance(load, Mapping):
            raise ActionError("'load' must be an object like {\"value\": 200, \"unit\": \"g\"}")
        value = self._number(load, "value")
        load_unit = load.get("unit", unit)
        if load_unit not in MASS_UNITS:
            raise ActionError(f"load unit {load_unit!r} is not a mass unit (mg, g, kg)")
        return value, str(load_unit)

    def _place_load(self, action: Mapping[str, Any]) -> dict[str, Any]:
        name, balance = self._resolve(action, "place_load", "balance")
        value, unit = self._load(action, getattr(balance, "unit", "g"))
        position = action.get("position") or "centre"
        balance.place_load(value, position=position, unit=unit)
        return {"ok": True, "instrument": name, "load": {"value": value, "unit": unit},
                "position": position}

    def _remove_load(self, action: Mapping[str, Any]) -> dict[str, Any]:
        name, balance = self._resolve(action, "remove_load", "balance")
        if action.get("load") is not None:
            value, unit = self._load(action, getattr(balance, "unit", "g"))
            removed = balance.remove_load(value, position=action.get("position"), unit=unit)
            if not removed:
                raise ActionError(f"no load of {value} {unit} on {name!r}")
        else:
            removed = balance.remove_load()
        return {"ok": True, "instrument": name, "removed": removed}

    def _read(self, action: Mapping[str, Any]) -> dict[str, Any]:
        if action.get("instrument") is None:
            try:  # a manual-balance operator: the one balance
                name, obj = self._resolve(action, "place_load", "balance")
            except ActionError:
                name, obj = self._resolve(action, "operator_read", "readable instrument")
        else:
            name, obj = self._resolve(action, "operator_read", "readable instrument")
        if not hasattr(obj, "operator_read"):
            raise ActionError(f"instrument {name!r} has no display to read")
        return {"ok": True, "instrument": name, **obj.operator_read()}

    def _zero(self, action: Mapping[str, Any]) -> dict[str, Any]:
        """The technician presses the zero key of a balance with no interface."""
        name, obj = self._resolve(action, "zero_now", "balance")
        status = obj.zero_now()
        if status != "ok":
            raise ActionError(f"balance {name!r} refused to zero ({status}: outside the "
                              "zero-setting range)")
        return {"ok": True, "instrument": name}

    def _tare(self, action: Mapping[str, Any]) -> dict[str, Any]:
        """The technician presses the tare key."""
        name, obj = self._resolve(action, "tare_now", "balance")
        status, _counts = obj.tare_now()
        if status not in ("ok", "S"):
            raise ActionError(f"balance {name!r} refused to tare ({status})")
        return {"ok": True, "instrument": name}

    def _set_ambient(self, action: Mapping[str, Any]) -> dict[str, Any]:
        """New room values, and/or ``"drift": {"temperature_c": 6.0, ...}`` (units per
        simulated hour from now; 0 stops it)."""
        values: dict[str, float] = {}
        keys = ("temperature_c", "humidity_pct", "pressure_hpa")
        for key in keys:
            if key in action:
                values[key] = self._number(action, key)
        drift = action.get("drift")
        if drift is not None and not (isinstance(drift, Mapping)
                                      and all(k in keys for k in drift)):
            raise ActionError(f"'drift' must be a table of {', '.join(keys)} per hour, "
                              f"got {drift!r}")
        if not values and not drift:
            raise ActionError("set_ambient needs temperature_c, humidity_pct, pressure_hpa "
                              "or drift")
        if values:
            self.environment.set(**values)
        if drift:
            self.environment.set_drift(**{k: self._number(drift, k) for k in drift})
        return {"ok": True, **self.environment.true_values()}

    def _fault(self, action: Mapping[str, Any]) -> dict[str, Any]:
        name = action.get("instrument")
        with self._lock:
            names = list(self._objects)
        if name is None:
            if len(names) != 1:
                raise ActionError("fault needs 'instrument' (the simulated instrument's name)")
            name = names[0]
        if name not in names:
            raise ActionError(f"no simulated instrument {name!r} (known: {', '.join(names)})")
        mode = action.get("mode")
        count = action.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ActionError(f"'count' must be a whole number >= 0, got {count!r}")
        delay = self._number(action, "delay") if "delay" in action else 1.0
        code = action.get("code")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise ActionError(f"'code' must be a whole number, got {code!r}")
        if mode in ("clear", "none", None):
            self.faults(name).clear()
            return {"ok": True, "instrument": name, "mode": None, "count": 0}
        if mode == "queue_error":
            return self._queue_error(name, count, code)
        if mode not in FAULT_MODES:
            raise ActionError(f"unknown fault mode {mode!r}; expected one of "
                              f"{', '.join((*FAULT_MODES, *INSTRUMENT_FAULTS))} (or clear)")
        if mode == "exception" and code is None:
            code = 4  # server device failure
        self.faults(name).set(str(mode), count, delay, code)
        return {"ok": True, "instrument": name, "mode": mode, "count": count}

    def _queue_error(self, name: str, count: int, code: int | None) -> dict[str, Any]:
        """Errors the instrument puts in its own error queue (SCPI ``SYST:ERR?``), as if it
        had refused something: the driver finds them when it next reads the queue."""
        obj = self.get(name)
        if not hasattr(obj, "push_error"):
            raise ActionError(f"instrument {name!r} has no error queue")
        for _ in range(count):
            obj.push_error(-222 if code is None else code)
        return {"ok": True, "instrument": name, "mode": "queue_error", "count": count}

    def _power_cycle(self, action: Mapping[str, Any]) -> dict[str, Any]:
        name = action.get("instrument")
        with self._lock:
            names = list(self._objects)
        if name is None and len(names) == 1:
            name = names[0]
        if not isinstance(name, str) or name not in names:
            known = ", ".join(names)
            raise ActionError(f"power_cycle needs an existing 'instrument' (known: {known})")
        self.power_cycle(name)
        return {"ok": True, "instrument": name}

"""Start a simulated bench from the ``[instruments.NAME.simulator]`` tables of bench.toml.

::

    sim = start_simulation({
        "balance": {"type": "mettler_sics", "transport": "tcp", "max": 220, "d": 0.0001},
        "room": {"type": "vaisala_ptu", "transport": "pty"},
    }, speed=100, seed=1)
    sim.resources   # {"balance": "socket://127.0.0.1:40123", "room": "/dev/pts/7"}
    sim.control_address  # "127.0.0.1:40124" (JSON-lines operator actions, see control.py)
    sim.world.apply({"type": "place_load", "load": {"value": 100, "unit": "g"}})
    sim.stop()

Keys common to every type: ``type`` (required), ``transport`` ("tcp", default, or "pty"; a
type may accept others, e.g. "rtu" for Modbus RTU over a socket), ``port`` and ``host`` (not
for pty; default 0 = a free port, and 127.0.0.1). Serial settings
(``baudrate``, ``bytesize``, ``parity``, ``stopbits``, ``rtscts``, ``xonxoff``) are accepted
and ignored: a simulator has no line speed. Every other key is an option of the type; see
``SIMULATOR_TYPES`` (``describe_options()`` lists them with defaults). An unknown type or key,
or a value of the wrong kind, raises ``ValueError`` naming the instrument and the key.

Other simulator modules can add types with :func:`register_simulator_type`.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .and_balance import AndBalanceSession
from .balance_physics import POSITIONS, SimBalance
from .control import serve_control
from .mettler_sics import MettlerSicsSession
from .servers import LineServer, LineSession, PtyLineServer, TcpLineServer
from .vaisala_ptu import SimPTU, VaisalaPtuSession
from .world import SimWorld

__all__ = [
    "SIMULATOR_TYPES",
    "Option",
    "Simulation",
    "SimulatorType",
    "describe_options",
    "register_simulator_type",
    "start_simulation",
]

_REQUIRED = object()


@dataclass(frozen=True)
class Option:
    """One option of a simulator type: its kind (for checking), default and meaning."""

    kind: str  # number | positive | nonneg | int | bool | str | positions | pairs
    default: Any
    help: str

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _check(where: str, option: Option, value: Any) -> Any:
    kind = option.kind
    if kind in ("number", "positive", "nonneg"):
        ok = _is_number(value) and (kind == "number" or (value > 0 if kind == "positive"
                                                         else value >= 0))
        expected = {"number": "a number", "positive": "a number > 0",
                    "nonneg": "a number >= 0"}[kind]
        if ok:
            return float(value)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535
        expected = "a whole number 0 … 65535"
        if ok:
            return value
    elif kind == "bool":
        expected = "true or false"
        if isinstance(value, bool):
            return value
    elif kind == "str":
        expected = "a string"
        if isinstance(value, str):
            return value
    elif kind == "positions":
        expected = f"a table of position = error with positions {', '.join(POSITIONS)}"
        if isinstance(value, Mapping) and all(
                k in POSITIONS and _is_number(v) for k, v in value.items()):
            return {k: float(v) for k, v in value.items()}
    elif kind == "pairs":
        expected = "a list of [load, error] pairs of numbers, loads >= 0"
        if isinstance(value, list | tuple) and all(
                isinstance(p, list | tuple) and len(p) == 2 and _is_number(p[0])
                and _is_number(p[1]) and p[0] >= 0 for p in value):
            return [(float(p[0]), float(p[1])) for p in value]
    else:  # pragma: no cover - programming error in a type table
        raise AssertionError(kind)
    raise ValueError(f"{where}: expected {expected}, got {value!r}")


SessionFactory = Callable[[], LineSession]
Builder = Callable[[SimWorld, str, dict[str, Any]], tuple[Any, SessionFactory]]
#: (world, name, options, transport, host, port) -> (simulated object, running server). The
#: server has ``resource`` and ``stop()`` (and may have ``broadcast_power_on()``).
ServeBuilder = Callable[[SimWorld, str, dict[str, Any], str, str, int], tuple[Any, Any]]


@dataclass(frozen=True)
class SimulatorType:
    """A simulator type: its options and a builder (world, name, options) → (the simulated
    object to add to the world, a factory of protocol sessions).

    A type that is not a line protocol on TCP or a pty (a Modbus device, or a line protocol
    whose resource is a VISA string) gives ``serve`` instead, which starts the server itself,
    and lists the ``transports`` it accepts."""

    name: str
    options: Mapping[str, Option]
    build: Builder | None = None
    description: str = ""
    serve: ServeBuilder | None = None
    transports: tuple[str, ...] = ("tcp", "pty")


SIMULATOR_TYPES: dict[str, SimulatorType] = {}


def register_simulator_type(sim_type: SimulatorType) -> None:
    SIMULATOR_TYPES[sim_type.name] = sim_type


# -- balances ---------------------------------------------------------------------------------

BALANCE_PHYSICS: dict[str, Option] = {
    "max": Option("positive", _REQUIRED, "capacity Max, in unit"),
    "d": Option("positive", _REQUIRED, "scale interval d, in unit"),
    "unit": Option("str", "g", "display unit: mg, g or kg"),
    "e": Option("positive", None, "verification scale interval e (default d)"),
    "settle_time": Option("nonneg", 2.0, "simulated seconds before a new load can be stable"),
    "tau": Option("nonneg", None, "time constant of the approach (default settle_time/5)"),
    "noise": Option("nonneg", 0.0, "standard deviation of each reading, in unit"),
    "repeatability": Option("nonneg", 0.0, "standard deviation between loadings, in unit"),
    "drift_per_hour": Option("number", 0.0, "zero drift, unit per simulated hour"),
    "eccentricity": Option("positions", {}, "error at ecc_load per pan position, in unit"),
    "ecc_load": Option("positive", None, "load of the eccentricity errors (default Max/3)"),
    "linearity": Option("pairs", [], "[load, error] points of the linearity error curve"),
    "zero_offset": Option("number", 0.0, "empty-pan indication before zeroing, in unit"),
    "stability_band": Option("positive", None, "motion allowed when stable (default d/2)"),
    "zero_range_pct": Option("nonneg", 2.0, "zero-setting range, ± % of Max"),
    "initial_zero_range_pct": Option("nonneg", 10.0, "power-up zero range, ± % of Max"),
    "underload_e": Option("nonneg", 20.0, "underload below -underload_e × e gross"),
}

SICS_OPTIONS: dict[str, Option] = {
    **BALANCE_PHYSICS,
    "serial": Option("str", "B123456789", "serial number (I4, power-up line)"),
    "model": Option("str", "SimBalance", "model in the I2 reply"),
    "software": Option("str", "1.00 benchctl-sim", "I3 reply"),
    "stability_timeout": Option("nonneg", 10.0, "simulated seconds S/Z/T wait for stability"),
    "sir_rate": Option("positive", 10.0, "SIR lines per simulated second"),
    "powerup_on_connect": Option("bool", True, "send I4 A \"serial\" when a client connects"),
}

AND_OPTIONS: dict[str, Option] = {
    **BALANCE_PHYSICS,
    "stability_timeout": Option("nonneg", 10.0, "simulated seconds S/R/T wait for stability"),
    "sir_rate": Option("positive", 10.0, "SIR lines per simulated second"),
    "ack": Option("bool", False, "AK/error-code replies (A&D erCd 1)"),
}

PTU_OPTIONS: dict[str, Option] = {
    "temperature_c": Option("number", None, "room temperature to start from (default 22.0)"),
    "humidity_pct": Option("nonneg", None, "room humidity to start from (default 45.0)"),
    "pressure_hpa": Option("positive", None, "air pressure to start from (default 1010.0)"),
    "variation": Option("nonneg", 1.0, "scale of the slow room variation (0 = none)"),
    "noise": Option("nonneg", 1.0, "scale of the measurement noise (0 = none)"),
    "temperature_offset": Option("number", 0.0, "the transmitter's temperature error, °C"),
    "humidity_offset": Option("number", 0.0, "the transmitter's humidity error, %RH"),
    "pressure_offset": Option("number", 0.0, "the transmitter's pressure error, hPa"),
    "serial": Option("str", "A1234567", "serial number (? reply)"),
    "model": Option("str", "PTU300", "model (? and VERS replies)"),
    "software": Option("str", "5.10", "software version (? and VERS replies)"),
    "interval": Option("positive", 2.0, "run-mode (R) output interval, simulated seconds"),
    "powerup_on_connect": Option("bool", False, "send the VERS line when a client connects"),
}


def _split(options: dict[str, Any], keys: Mapping[str, Option]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k in keys and v is not None}


def _build_balance(world: SimWorld, name: str, options: dict[str, Any]) -> SimBalance:
    return SimBalance(world.clock, world.rng_for(name), **_split(options, BALANCE_PHYSICS))


def _build_sics(world: SimWorld, name: str, options: dict[str, Any]
                ) -> tuple[Any, SessionFactory]:
    balance = _build_balance(world, name, options)
    proto = {k: v for k, v in options.items() if k in SICS_OPTIONS and k not in BALANCE_PHYSICS}
    faults, rnd = world.faults(name), world.random_for(name)
    MettlerSicsSession(balance, world.clock, **proto)  # check the options now, not on connect
    return balance, lambda: MettlerSicsSession(balance, world.clock, faults, rnd, **proto)


def _build_and(world: SimWorld, name: str, options: dict[str, Any]
               ) -> tuple[Any, SessionFactory]:
    balance = _build_balance(world, name, options)
    proto = {k: v for k, v in options.items() if k in AND_OPTIONS and k not in BALANCE_PHYSICS}
    faults, rnd = world.faults(name), world.random_for(name)
    AndBalanceSession(balance, world.clock, **proto)
    return balance, lambda: AndBalanceSession(balance, world.clock, faults, rnd, **proto)


def _build_ptu(world: SimWorld, name: str, options: dict[str, Any]
               ) -> tuple[Any, SessionFactory]:
    env = world.environment
    ambient = {k: options[k] for k in ("temperature_c", "humidity_pct", "pressure_hpa")
               if options.get(k) is not None}
    if ambient:
        env.set(**ambient)
    env.variation, env.noise = options["variation"], options["noise"]
    ptu = SimPTU(env, **{k: options[k] for k in
                         ("temperature_offset", "humidity_offset", "pressure_offset")})
    proto = {k: options[k] for k in ("serial", "model", "software", "interval",
                                     "powerup_on_connect")}
    faults, rnd = world.faults(name), world.random_for(name)
    return ptu, lambda: VaisalaPtuSession(ptu, world.clock, faults, rnd, **proto)


register_simulator_type(SimulatorType(
    "mettler_sics", SICS_OPTIONS, _build_sics, "Mettler Toledo MT-SICS level 0-1 balance"))
register_simulator_type(SimulatorType(
    "and_balance", AND_OPTIONS, _build_and, "A&D standard-format balance"))
register_simulator_type(SimulatorType(
    "vaisala_ptu", PTU_OPTIONS, _build_ptu, "Vaisala PTU300 pressure/temperature/humidity"))

_COMMON = {"type", "transport", "port", "host"}
_IGNORED = {"baudrate", "bytesize", "parity", "stopbits", "rtscts", "xonxoff"}


def describe_options(type_name: str) -> dict[str, tuple[Any, str]]:
    """{option: (default or "required", help)} of a simulator type."""
    sim_type = SIMULATOR_TYPES[type_name]
    return {k: ("required" if o.required else o.default, o.help)
            for k, o in sim_type.options.items()}


@dataclass
class Simulation:
    """A running simulated bench. ``stop()`` (or leaving the ``with`` block) ends it."""

    world: SimWorld
    resources: dict[str, str] = field(default_factory=dict)
    control_address: str | None = None
    servers: dict[str, Any] = field(default_factory=dict)  # LineServer or a serve() server
    control_server: LineServer | None = None
    _unhooks: list[Callable[[], None]] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ``stop()`` has been called (e.g. from a signal handler) or ``timeout``
        real seconds pass; True when stopped."""
        return self._stopped.wait(timeout)

    def stop(self) -> None:
        """Stop every server (idempotent)."""
        self._stopped.set()
        for unhook in self._unhooks:
            unhook()
        self._unhooks.clear()
        servers = list(self.servers.values())
        if self.control_server is not None:
            servers.append(self.control_server)
            self.control_server = None
        self.servers.clear()
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: Bundled types whose module is not named after the type (imported on first use).
_TYPE_MODULES: dict[str, str] = {
    "druck_pace": "pace_scpi",
    "modbus_pressure_gauge": "modbus_gauge",
    "dial_gauge": "modbus_gauge",
    "keysight_344xx": "dmm_transmitter",
    "sim_dispenser": "dispenser",
    "micromotion_modbus": "coriolis",
}


def _import_type_module(type_name: str) -> None:
    """A type not bundled here may live in a module of the same name in the simulators
    package (a centre's own library folder included); importing it registers the type."""
    if not type_name.isidentifier() or not __package__:
        return
    module = _TYPE_MODULES.get(type_name, type_name)
    try:
        importlib.import_module(f"{__package__}.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.{module}":
            raise


def _validate(name: str, spec: Mapping[str, Any]) -> tuple[SimulatorType, str, dict[str, Any]]:
    where = f"instruments.{name}.simulator"
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected a table of simulator settings, got {spec!r}")
    type_name = spec.get("type")
    if isinstance(type_name, str) and type_name not in SIMULATOR_TYPES:
        _import_type_module(type_name)
    known_types = ", ".join(sorted(SIMULATOR_TYPES))
    if type_name is None:
        raise ValueError(f"{where}: missing 'type'; expected one of {known_types}")
    if type_name not in SIMULATOR_TYPES:
        raise ValueError(f"{where}.type: unknown simulator type {type_name!r}; "
                         f"expected one of {known_types}")
    sim_type = SIMULATOR_TYPES[type_name]
    transport = spec.get("transport", "tcp")
    if transport not in sim_type.transports:
        expected = " or ".join(f'"{t}"' for t in sim_type.transports)
        raise ValueError(f"{where}.transport: expected {expected}, got {transport!r}")
    if transport == "pty":
        for key in ("port", "host"):
            if key in spec:
                raise ValueError(f"{where}.{key}: only for transport \"tcp\" (this one is pty)")
    options: dict[str, Any] = {}
    for key, value in spec.items():
        if key in _COMMON or key in _IGNORED:
            continue
        if key not in sim_type.options:
            expected = ", ".join(sorted(set(sim_type.options) | _COMMON))
            raise ValueError(f"{where}: unknown key {key!r} for type {type_name!r}; "
                             f"expected one of {expected}")
        options[key] = _check(f"{where}.{key}", sim_type.options[key], value)
    for key, option in sim_type.options.items():
        if key not in options:
            if option.required:
                raise ValueError(f"{where}: missing {key!r} ({option.help})")
            options[key] = option.default
    if ("unit" in options and sim_type.name in ("mettler_sics", "and_balance")
            and options["unit"] not in ("mg", "g", "kg")):
        raise ValueError(f"{where}.unit: expected \"mg\", \"g\" or \"kg\", got {options['unit']!r}")
    return sim_type, transport, options


def start_simulation(
    instruments: Mapping[str, Mapping[str, Any]],
    *,
    speed: float = 1.0,
    seed: int = 0,
    control: str | None = "127.0.0.1:0",
) -> Simulation:
    """Start one simulator server per instrument (and the control server unless ``control`` is
    None) and return the running :class:`Simulation`."""
    checked = {name: _validate(name, spec) for name, spec in instruments.items()}
    world = SimWorld(speed=speed, seed=seed)
    sim = Simulation(world)
    try:
        for name, (sim_type, transport, options) in checked.items():
            where = f"instruments.{name}.simulator"
            spec = instruments[name]
            port = _check(f"{where}.port", Option("int", 0, ""), spec.get("port", 0))
            host = _check(f"{where}.host", Option("str", "", ""), spec.get("host", "127.0.0.1"))
            server: Any
            if sim_type.serve is not None:
                try:
                    obj, server = sim_type.serve(world, name, options, transport, host, port)
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"{where}: {exc}") from exc
                world.add(name, obj)
            else:
                assert sim_type.build is not None, f"simulator type {sim_type.name} builds nothing"
                try:
                    obj, factory = sim_type.build(world, name, options)
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"{where}: {exc}") from exc
                world.add(name, obj)
                if transport == "tcp":
                    server = TcpLineServer(factory, host, port, name=name)
                else:
                    server = PtyLineServer(factory, name=name)
            sim.servers[name] = server
            sim.resources[name] = server.resource
            if hasattr(server, "broadcast_power_on"):
                sim._unhooks.append(world.on_power_cycle(name, server.broadcast_power_on))
        if control is not None:
            host, sep, port_text = control.rpartition(":")
            if not sep or not port_text.isdigit():
                raise ValueError(f"control: expected \"HOST:PORT\", got {control!r}")
            control_server = serve_control(world, host or "127.0.0.1", int(port_text))
            sim.control_server = control_server
            sim.control_address = control_server.address
    except BaseException:
        sim.stop()
        raise
    return sim

"""bench.toml -> BenchConfig.

A technician edits this file by hand, so every mistake is reported with the file, the key and
what was expected, before any instrument is touched.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

LOCALES = ("vi", "en")
INSTRUMENT_KEYS = {"driver", "resource", "asset", "role", "simulator"}
INSTRUMENT_ROLES = ("dut", "reference", "environment")


@dataclass(frozen=True)
class InstrumentConfig:
    name: str
    driver: str
    resource: str
    asset: str | None = None
    role: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """Driver options (timeout, baudrate, unit, ...), validated against the driver's OPTIONS."""
    simulator: dict[str, Any] | None = None
    """The ``[instruments.NAME.simulator]`` table: what ``benchctl sim`` starts for it."""


@dataclass(frozen=True)
class ReferenceConfig:
    name: str
    asset: str | None = None
    file: Path | None = None


@dataclass(frozen=True)
class SimulationConfig:
    control: str = "127.0.0.1:0"
    seed: int = 0


@dataclass(frozen=True)
class BenchConfig:
    path: Path
    name: str
    database: str | None
    library: tuple[Path, ...]
    locale: str
    speed: float
    instruments: dict[str, InstrumentConfig]
    references: dict[str, ReferenceConfig]
    simulation: SimulationConfig
    text: str = ""
    """The file's text as read, stored with each run so a resume uses the same bench."""

    @property
    def database_url(self) -> str | None:
        return os.environ.get("BENCHCTL_DATABASE_URL") or self.database

    def with_resources(self, resources: dict[str, str]) -> BenchConfig:
        """The same bench with some resource strings replaced (by running simulators)."""
        inst = {
            n: InstrumentConfig(
                i.name, i.driver, resources.get(n, i.resource), i.asset, i.role, i.options,
                i.simulator,
            )
            for n, i in self.instruments.items()
        }
        return BenchConfig(
            self.path, self.name, self.database, self.library, self.locale, self.speed, inst,
            self.references, self.simulation, self.text,
        )


def _expect(file: str, key: str, value: Any, kind: type | tuple[type, ...], expected: str) -> Any:
    if isinstance(value, bool) and kind is not bool and bool not in (
        kind if isinstance(kind, tuple) else (kind,)
    ):
        raise ConfigError(file, key, expected, got=value)
    if not isinstance(value, kind):
        raise ConfigError(file, key, expected, got=value)
    return value


def load_bench(path: str | Path) -> BenchConfig:
    p = Path(path)
    f = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f, "", "a bench file (TOML) at this path; it does not exist") from None
    except OSError as exc:
        raise ConfigError(f, "", f"a readable bench file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f, "", f"a text file in UTF-8 (byte {exc.start} is not)") from None
    return parse_bench(text, p)


def parse_bench(text: str, path: Path) -> BenchConfig:
    f = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f, "", f"valid TOML ({exc})") from None

    known = {"bench", "instruments", "references", "simulation"}
    for key in data:
        if key not in known:
            raise ConfigError(f, key, f"one of the tables {', '.join(sorted(known))}")

    bench = data.get("bench", {})
    _expect(f, "bench", bench, dict, "a [bench] table")
    bench_keys = {"name", "database", "library", "locale", "speed"}
    for key in bench:
        if key not in bench_keys:
            raise ConfigError(f, f"bench.{key}", f"one of {', '.join(sorted(bench_keys))}")
    name = _expect(f, "bench.name", bench.get("name", path.stem), str, "a text name")
    database = bench.get("database")
    if database is not None:
        _expect(f, "bench.database", database, str, "a database URL such as sqlite:///bench.db")
        if "://" not in database:
            raise ConfigError(f, "bench.database", "a database URL such as sqlite:///bench.db",
                              got=database)
        database = _resolve_sqlite_path(database, path.parent)
    library_raw = bench.get("library", [])
    _expect(f, "bench.library", library_raw, list, "a list of folder paths")
    library = []
    for i, item in enumerate(library_raw):
        _expect(f, f"bench.library[{i}]", item, str, "a folder path")
        folder = (path.parent / item).resolve()
        if not folder.is_dir():
            raise ConfigError(f, f"bench.library[{i}]", "an existing folder", got=item)
        library.append(folder)
    locale = bench.get("locale", "vi")
    if locale not in LOCALES:
        raise ConfigError(f, "bench.locale", " or ".join(LOCALES), got=locale)
    speed = bench.get("speed", 1.0)
    _expect(f, "bench.speed", speed, (int, float), "a number ≥ 1 (simulated time factor)")
    if not math.isfinite(speed) or speed <= 0:
        raise ConfigError(f, "bench.speed", "a positive number", got=speed)

    instruments: dict[str, InstrumentConfig] = {}
    inst_tab = data.get("instruments", {})
    _expect(f, "instruments", inst_tab, dict, "tables [instruments.NAME]")
    for iname, body in inst_tab.items():
        key = f"instruments.{iname}"
        _expect(f, key, body, dict, "a table with driver and resource")
        if not iname.isidentifier() or iname.lower() != iname:
            raise ConfigError(f, key, "a lower-case name (letters, digits, _)", got=iname)
        for required in ("driver", "resource"):
            if required not in body:
                raise ConfigError(f, f"{key}.{required}", "a value (this key is required)")
        driver = _expect(f, f"{key}.driver", body["driver"], str, "a driver name")
        resource = _expect(f, f"{key}.resource", body["resource"], str, "a resource string")
        asset = body.get("asset")
        if asset is not None:
            _expect(f, f"{key}.asset", asset, str, "an asset id from the register")
        role = body.get("role")
        if role is not None and role not in INSTRUMENT_ROLES:
            raise ConfigError(f, f"{key}.role", " or ".join(INSTRUMENT_ROLES), got=role)
        sim = body.get("simulator")
        if sim is not None:
            _expect(f, f"{key}.simulator", sim, dict, "a table [instruments.NAME.simulator]")
            if "type" not in sim:
                raise ConfigError(f, f"{key}.simulator.type", "a simulator type, e.g. mettler_sics")
        options = {k: v for k, v in body.items() if k not in INSTRUMENT_KEYS}
        instruments[iname] = InstrumentConfig(iname, driver, resource, asset, role, options, sim)

    references: dict[str, ReferenceConfig] = {}
    ref_tab = data.get("references", {})
    _expect(f, "references", ref_tab, dict, "tables [references.NAME]")
    for rname, body in ref_tab.items():
        key = f"references.{rname}"
        _expect(f, key, body, dict, "a table with asset or file")
        for k in body:
            if k not in ("asset", "file"):
                raise ConfigError(f, f"{key}.{k}", "asset or file")
        if ("asset" in body) == ("file" in body):
            raise ConfigError(f, key, "exactly one of asset = \"ID\" or file = \"PATH\"")
        if "asset" in body:
            references[rname] = ReferenceConfig(
                rname, asset=_expect(f, f"{key}.asset", body["asset"], str, "an asset id")
            )
        else:
            fp = _expect(f, f"{key}.file", body["file"], str, "a file path")
            full = (path.parent / fp).resolve()
            if not full.is_file():
                raise ConfigError(f, f"{key}.file", "an existing reference file", got=fp)
            references[rname] = ReferenceConfig(rname, file=full)

    sim_tab = data.get("simulation", {})
    _expect(f, "simulation", sim_tab, dict, "a [simulation] table")
    for k in sim_tab:
        if k not in ("control", "seed"):
            raise ConfigError(f, f"simulation.{k}", "control or seed")
    control = _expect(f, "simulation.control", sim_tab.get("control", "127.0.0.1:0"), str,
                      "HOST:PORT of the simulated world's control port")
    seed = _expect(f, "simulation.seed", sim_tab.get("seed", 0), int, "an integer seed")

    return BenchConfig(
        path=path, name=name, database=database, library=tuple(library), locale=locale,
        speed=float(speed), instruments=instruments, references=references,
        simulation=SimulationConfig(control, seed), text=text,
    )


def _resolve_sqlite_path(url: str, base: Path) -> str:
    """A relative SQLite file in bench.toml is relative to the bench file, not the shell's cwd."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix):]
        if rest and rest != ":memory:" and not rest.startswith("/"):
            return prefix + str((base / rest).resolve())
    return url


def validate_options(file: str, instrument: str, options: dict[str, Any],
                     declared: dict[str, tuple[type, Any, str]]) -> dict[str, Any]:
    """Check an instrument's extra keys against the driver's OPTIONS; fill the defaults."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in declared:
            allowed = ", ".join(sorted(declared)) or "none"
            raise ConfigError(file, f"instruments.{instrument}.{key}",
                              f"an option this driver knows ({allowed})")
        typ, _default, desc = declared[key]
        ok = isinstance(value, typ) and not (isinstance(value, bool) and typ in (int, float))
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise ConfigError(file, f"instruments.{instrument}.{key}",
                              f"{typ.__name__} ({desc})", got=value)
        out[key] = value
    for key, (_typ, default, _desc) in declared.items():
        if key not in out and default is not None:
            out[key] = default
    return out

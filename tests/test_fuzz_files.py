"""Bench files, DUT files and reference (certificate) files written by hand: any structure,
any value, any bytes. The loaders return a sane spec or raise ConfigError naming the file and
the key; a reference file they accept imports into the register without a database error.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from benchhelp import ROOT
from fuzzhelp import FUZZ, mutated, toml_document
from hypothesis import example, given, settings
from hypothesis import strategies as st

from benchctl.assets import load_dut_file, load_reference_file
from benchctl.config import load_bench, parse_bench, validate_options
from benchctl.errors import ConfigError, StoreError

DEMO = ROOT / "src/benchctl/demo_data"

BENCH: dict[str, Any] = {
    "bench": {"name": "B", "database": "sqlite:///bench.db", "locale": "en", "speed": 100.0,
              "library": []},
    "simulation": {"control": "127.0.0.1:4100", "seed": 1},
    "instruments": {
        "balance": {"driver": "mettler_sics", "resource": "socket://127.0.0.1:4001",
                    "role": "dut", "timeout": 5.0,
                    "simulator": {"type": "mettler_sics", "max": 6200.0, "d": 0.1}},
        "room": {"driver": "vaisala_ptu", "resource": "/dev/ttyUSB0", "asset": "ENV-1"},
    },
    "references": {"weights": {"file": "weights.toml"}},
}


def _demo(name: str) -> dict[str, Any]:
    return tomllib.loads((DEMO / name).read_text(encoding="utf-8"))


DUTS = [_demo("demo-balance.toml"), _demo("demo-pressure-gauge.toml"),
        _demo("demo-dispenser.toml")]
REFERENCES = [_demo("demo-weights-F1.toml"), _demo("demo-pace-reference.toml"),
              _demo("demo-measure-20L.toml"), _demo("demo-master-meter.toml")]


def _config_error(exc: ConfigError, path: Path) -> None:
    assert exc.file == str(path), exc.file
    assert str(exc).startswith(str(path)), str(exc)
    assert exc.expected, "the message says what was expected"


def _finite_numbers(value: Any, where: str) -> None:
    if isinstance(value, float):
        assert math.isfinite(value), f"{where} accepted {value!r}"
    elif isinstance(value, dict):
        for k, v in value.items():
            _finite_numbers(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _finite_numbers(v, f"{where}[{i}]")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fuzz-files")
    (d / "weights.toml").write_text("", encoding="utf-8")
    return d


# -- bench.toml ---------------------------------------------------------------------------------

@settings(FUZZ)
@given(mutated(BENCH))
@example({**BENCH, "bench": {**BENCH["bench"], "speed": float("nan")}})
@example({**BENCH, "bench": {**BENCH["bench"], "speed": float("inf")}})
@example({**BENCH, "instruments": {"Balance": {"driver": "x", "resource": "y"}}})
@example({**BENCH, "references": {"weights": {"file": "weights.toml", "asset": "W"}}})
def test_bench_file_structures(folder: Path, data: dict[str, Any]) -> None:
    path = folder / "bench.toml"
    try:
        bench = parse_bench(toml_document(data), path)
    except ConfigError as exc:
        _config_error(exc, path)
        assert exc.key, f"no key named: {exc}"
        return
    assert math.isfinite(bench.speed) and bench.speed > 0, bench.speed
    assert bench.locale in ("vi", "en")
    for name, inst in bench.instruments.items():
        assert name.isidentifier() and isinstance(inst.resource, str)


@settings(FUZZ)
@given(st.one_of(st.binary(max_size=200),
                 st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_bench_file_bytes(folder: Path, data: bytes) -> None:
    path = folder / "bytes-bench.toml"
    path.write_bytes(data)
    try:
        load_bench(path)
    except ConfigError as exc:
        _config_error(exc, path)


@settings(FUZZ)
@given(st.dictionaries(st.text(max_size=12), st.one_of(
    st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
    st.lists(st.integers(), max_size=2)), max_size=5))
def test_driver_options(options: dict[str, Any]) -> None:
    from replay import load_driver

    declared = load_driver("mettler_sics").OPTIONS
    try:
        out = validate_options("bench.toml", "balance", options, declared)
    except ConfigError as exc:
        assert exc.key.startswith("instruments.balance.") and exc.file == "bench.toml"
        return
    for key, (typ, _default, _desc) in declared.items():
        if key in out:
            assert isinstance(out[key], typ)


# -- DUT and reference files ----------------------------------------------------------------

@settings(FUZZ)
@given(st.sampled_from(range(len(DUTS))).flatmap(lambda i: mutated(DUTS[i])))
@example({**DUTS[2], "qmax": float("inf")})
@example({**DUTS[2], "unit_price": float("nan")})
@example({**DUTS[0], "max": float("inf")})
@example({**DUTS[1], "range": [0.0, float("nan")]})
def test_dut_files(folder: Path, data: dict[str, Any]) -> None:
    path = folder / "dut.toml"
    path.write_text(toml_document(data), encoding="utf-8")
    try:
        dut = load_dut_file(path)
    except ConfigError as exc:
        _config_error(exc, path)
        assert exc.key, f"no key named: {exc}"
        return
    _finite_numbers(dut.params, "params")
    assert dut.kind in ("balance", "pressure_gauge", "fuel_dispenser")


@settings(FUZZ)
@given(st.binary(max_size=200))
def test_dut_file_bytes(folder: Path, data: bytes) -> None:
    path = folder / "bytes-dut.toml"
    path.write_bytes(data)
    try:
        load_dut_file(path)
    except ConfigError as exc:
        _config_error(exc, path)


@pytest.fixture(scope="module")
def register(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from benchctl.store import open_database

    return open_database(f"sqlite:///{tmp_path_factory.mktemp('register') / 'r.db'}")


@settings(FUZZ)
@given(st.sampled_from(range(len(REFERENCES))).flatmap(lambda i: mutated(REFERENCES[i])))
@example({**REFERENCES[1], "certificate": {**REFERENCES[1]["certificate"], "U": float("nan")}})
@example({**REFERENCES[0], "weights": [{**REFERENCES[0]["weights"][0],
                                         "correction_mg": float("nan")}]})
def test_reference_files_and_their_import(folder: Path, register: Any,
                                          data: dict[str, Any]) -> None:
    from benchctl.engine.runner import import_reference

    path = folder / "reference.toml"
    path.write_text(toml_document(data), encoding="utf-8")
    try:
        spec = load_reference_file(path)
    except ConfigError as exc:
        _config_error(exc, path)
        assert exc.key, f"no key named: {exc}"
        return
    assert spec.certificate.due_on > spec.certificate.issued_on
    for w in spec.weights:
        for v in (w.nominal_g, w.correction_mg, w.U_mg, w.k):
            assert math.isfinite(v), w
    for v in (spec.certificate.U, spec.certificate.k):
        assert v is None or math.isfinite(v), spec.certificate
    _finite_numbers(spec.certificate.data, "certificate")
    # What the loader accepts, the register takes (a second import of the same is reused;
    # the same certificate number with other data is refused, naming both).
    try:
        import_reference(register, spec)
    except StoreError as exc:
        assert "already registered" in str(exc), str(exc)
        assert spec.asset_id in str(exc) and spec.certificate.number in str(exc)


@settings(FUZZ)
@given(st.binary(max_size=200))
def test_reference_file_bytes(folder: Path, data: bytes) -> None:
    path = folder / "bytes-reference.toml"
    path.write_bytes(data)
    try:
        load_reference_file(path)
    except ConfigError as exc:
        _config_error(exc, path)


def test_a_missing_file_is_a_config_error(folder: Path) -> None:
    for load in (load_bench, load_dut_file, load_reference_file):
        with pytest.raises(ConfigError) as info:
            load(folder / "nope.toml")
        assert str(folder / "nope.toml") in str(info.value)

"""A wrong bench file or DUT file is rejected with the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchctl.assets import load_dut_file, load_reference_file
from benchctl.cli import main
from benchctl.config import load_bench, validate_options
from benchctl.errors import ConfigError

GOOD_BENCH = """
[bench]
name = "Balance bench 1"
database = "sqlite:///bench.db"
locale = "en"

[instruments.balance]
driver = "mettler_sics"
resource = "socket://127.0.0.1:4001"
role = "dut"
timeout = 3.0

[references.weights]
asset = "WS-F1-01"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_good_bench_parses(tmp_path: Path) -> None:
    bench = load_bench(write(tmp_path, "bench.toml", GOOD_BENCH))
    assert bench.name == "Balance bench 1"
    assert bench.locale == "en"
    inst = bench.instruments["balance"]
    assert (inst.driver, inst.resource, inst.role) == ("mettler_sics",
                                                       "socket://127.0.0.1:4001", "dut")
    assert inst.options == {"timeout": 3.0}
    # A relative SQLite file is relative to the bench file, not to the shell's directory.
    assert bench.database == f"sqlite:///{tmp_path / 'bench.db'}"
    assert bench.references["weights"].asset == "WS-F1-01"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (GOOD_BENCH.replace('locale = "en"', 'locale = "fr"'), "bench.locale", "vi or en"),
        (GOOD_BENCH.replace('driver = "mettler_sics"\n', ""), "instruments.balance.driver",
         "a value (this key is required)"),
        (GOOD_BENCH.replace('role = "dut"', 'role = "master"'), "instruments.balance.role",
         "dut or reference or environment"),
        (GOOD_BENCH.replace('[references.weights]\nasset = "WS-F1-01"',
                            '[references.weights]\nasset = "A"\nfile = "b.toml"'),
         "references.weights", "exactly one of"),
        (GOOD_BENCH + "\n[bench2]\n", "bench2", "one of the tables"),
        (GOOD_BENCH.replace('name = "Balance bench 1"', "name = 12"), "bench.name",
         "a text name"),
        (GOOD_BENCH.replace("[instruments.balance]", "[instruments.Balance]"),
         "instruments.Balance", "a lower-case name"),
        (GOOD_BENCH.replace('database = "sqlite:///bench.db"', 'database = "bench.db"'),
         "bench.database", "a database URL"),
    ],
)
def test_wrong_bench_names_file_key_expectation(tmp_path: Path, text: str, key: str,
                                                expected: str) -> None:
    path = write(tmp_path, "bench.toml", text)
    with pytest.raises(ConfigError) as err:
        load_bench(path)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_bench_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "bench.toml", "[bench\nname=")
    with pytest.raises(ConfigError, match="valid TOML"):
        load_bench(path)


def test_missing_bench_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_bench(tmp_path / "nope.toml")


def test_driver_options_checked() -> None:
    declared = {"timeout": (float, 2.0, "seconds"), "baudrate": (int, 9600, "bits/s")}
    assert validate_options("b.toml", "balance", {"timeout": 3}, declared) == {
        "timeout": 3.0, "baudrate": 9600}
    with pytest.raises(ConfigError) as err:
        validate_options("b.toml", "balance", {"baud": 9600}, declared)
    assert err.value.key == "instruments.balance.baud"
    assert "baudrate, timeout" in str(err.value)
    with pytest.raises(ConfigError, match=r"int \(bits/s\), got '9600'"):
        validate_options("b.toml", "balance", {"baudrate": "9600"}, declared)


GOOD_DUT = """
kind = "balance"
maker = "Mettler Toledo"
model = "XS6002S"
serial = "B1"
unit = "g"
max = 6200.0
d = 0.1
class = "II"
"""


def test_good_dut(tmp_path: Path) -> None:
    dut = load_dut_file(write(tmp_path, "dut.toml", GOOD_DUT))
    assert dut.asset_id == "DUT-B1"
    assert dut.params == {"max": 6200.0, "d": 0.1, "e": 0.1, "class": "II"}


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (GOOD_DUT.replace('kind = "balance"', 'kind = "scale"'), "kind", "balance"),
        (GOOD_DUT.replace("max = 6200.0", 'max = "6200"'), "max", "a number"),
        (GOOD_DUT.replace("d = 0.1", "d = -0.1"), "d", "a positive number"),
        (GOOD_DUT.replace('class = "II"', ""), "class", "an accuracy class"),
        (GOOD_DUT + "colour = 'red'\n", "colour", "one of"),
        # n = Max/e = 620 000 is above class II's 100 000 (R76-1 Table 3)
        (GOOD_DUT.replace("d = 0.1", "d = 0.01"), "class/max/e/d", "R76"),
        # e = 0.3 g is not 1, 2 or 5 × 10^k
        (GOOD_DUT.replace("d = 0.1", "d = 0.3"), "class/max/e/d", "R76"),
    ],
)
def test_wrong_dut_rejected(tmp_path: Path, text: str, key: str, expected: str) -> None:
    path = write(tmp_path, "dut.toml", text)
    with pytest.raises(ConfigError) as err:
        load_dut_file(path)
    assert err.value.key == key
    assert expected in str(err.value)


WEIGHTS = """
asset = "WS-1"
kind = "weight_set"
class = "F1"
[certificate]
number = "C-1"
issuer = "VMI"
date = "2025-01-01"
due = "2027-01-01"
[[weights]]
id = "1kg"
nominal_g = 1000.0
correction_mg = 1.0
U_mg = 1.6
"""


def test_reference_file(tmp_path: Path) -> None:
    ref = load_reference_file(write(tmp_path, "w.toml", WEIGHTS))
    assert ref.certificate.number == "C-1"
    assert ref.weights[0].weight_class == "F1"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (WEIGHTS.replace('due = "2027-01-01"', 'due = "2024-01-01"'), "certificate.due"),
        (WEIGHTS.replace('date = "2025-01-01"', 'date = "1st Jan"'), "certificate.date"),
        (WEIGHTS.replace("nominal_g = 1000.0", "nominal_g = 1234.0"), "weights[0]"),
        (WEIGHTS.replace("U_mg = 1.6", ""), "weights[0].U_mg"),
    ],
)
def test_wrong_reference_rejected(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_reference_file(write(tmp_path, "w.toml", text))
    assert err.value.key == key


def test_cli_reports_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bench.toml", GOOD_BENCH.replace('locale = "en"', 'locale = "fr"'))
    code = main(["read", "balance", "--bench", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("benchctl: error: ")
    assert f"{path}: [bench.locale]: expected vi or en, got 'fr'" in err
    assert "Traceback" not in err

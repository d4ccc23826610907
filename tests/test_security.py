"""Security: user text is escaped on certificates, reports stay in their folder, database
passwords never reach a message or a log, and code loads only from the configured library.
"""

from __future__ import annotations

import html.parser
import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from benchhelp import DUT, ROOT, WEIGHTS, benchctl

from benchctl import library
from benchctl.config import load_bench
from benchctl.engine.operators import SimulatedOperator
from benchctl.engine.runner import RunOptions, start_run
from benchctl.errors import BenchctlError, StoreError
from benchctl.store import open_database
from benchctl.store.db import mask_url

# A tag, an attribute breaking out of its quotes, and a script: each must stay text.
PAYLOAD = '<x-evil id="p1">"\' onmouseover="evil()" <script>alert(1)</script>&amp;'
TAGS = {"x-evil", "script"}


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [a for a, _ in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A completed run whose DUT, customer, reference certificate and operator carry markup
    (one run for the whole module)."""
    from benchhelp import BALANCE_SIM, ROOM_SIM, bench_text

    folder = tmp_path_factory.mktemp("hostile")
    library.configure([])
    sim = library.load("simulators", "bench").start_simulation(
        {"balance": dict(BALANCE_SIM), "room": dict(ROOM_SIM)}, speed=100.0, seed=3)
    try:
        dut = DUT
        for key in ("maker", "model", "serial", "customer"):
            dut = "\n".join(f"{key} = {_toml_str(PAYLOAD + key)}" if line.startswith(f"{key} =")
                            else line for line in dut.splitlines())
        (folder / "dut.toml").write_text(dut, encoding="utf-8")
        weights = WEIGHTS.replace('issuer = "', f'issuer = {_toml_str(PAYLOAD)[:-1]}', 1)
        (folder / "weights.toml").write_text(weights, encoding="utf-8")
        (folder / "bench.toml").write_text(bench_text(
            dict(sim.resources), control=sim.control_address,
            db=f"sqlite:///{folder / 'bench.db'}"), encoding="utf-8")
        bench = load_bench(folder / "bench.toml")
        db = open_database(bench.database)
        opts = RunOptions(bench=bench, operator=SimulatedOperator(sim.control_address),
                          db=db, speed=100.0, handle_signals=False)
        outcome = start_run("nawi_balance", str(folder / "dut.toml"), "calibrate",
                            ["loads=5,6200", "rep_n=2"], opts,
                            performed_by=PAYLOAD + "operator")
        assert outcome.state == "completed", outcome.message
    finally:
        sim.stop()
    return db, outcome.run_id


def test_certificate_html_escapes_every_user_text(hostile_run: tuple[Any, int],
                                                  tmp_path: Path) -> None:
    from benchctl.reports import render_report
    from benchctl.reports.laboratory import Laboratory

    db, run_id = hostile_run
    lab = Laboratory(name=PAYLOAD + "lab", name_en=PAYLOAD + "lab", address=PAYLOAD,
                     phone=PAYLOAD, email=PAYLOAD, code=PAYLOAD)
    for lang in ("vi", "en"):
        data, _ = render_report(db, run_id, "html", lang=lang, laboratory=lab)
        page = data.decode("utf-8")
        parsed = _Collect()
        parsed.feed(page)
        assert not TAGS & set(parsed.tags), f"markup from user text became tags ({lang})"
        assert "onmouseover" not in parsed.attrs, "user text broke out of an attribute"
        text = "".join(parsed.text)
        for what in ("maker", "model", "serial", "customer", "lab"):
            assert PAYLOAD + what in text, f"{what} is not shown as text"
        assert "<script>alert(1)</script>" not in page


def test_dcc_xml_keeps_user_text_as_text(hostile_run: tuple[Any, int]) -> None:
    from benchctl.reports import render_report

    db, run_id = hostile_run
    data, _ = render_report(db, run_id, "dcc", lang="en")
    root = ET.fromstring(data)  # well-formed despite the markup
    assert not any(el.tag.split("}")[-1] in TAGS for el in root.iter())
    assert any((el.text or "").startswith(PAYLOAD) for el in root.iter())


# -- report and export paths ------------------------------------------------------------------

@pytest.mark.parametrize("output", [
    "../escape.html", "sub/../../escape.html", "/tmp/escape-benchctl.html",
    "..", "link/escape.html", "linkfile.html",
])
def test_report_paths_cannot_leave_the_folder(output: str, hostile_run: tuple[Any, int],
                                              tmp_path: Path) -> None:
    from benchctl.reports import write_report
    from benchctl.reports.paths import OutputPathError

    db, run_id = hostile_run
    folder = tmp_path / "reports"
    outside = tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "sub").mkdir()
    (folder / "link").symlink_to(outside, target_is_directory=True)
    (folder / "linkfile.html").symlink_to(outside / "target.html")
    before = set(outside.iterdir()) | set(tmp_path.iterdir())
    for fmt in ("html", "csv"):
        with pytest.raises(OutputPathError) as info:
            write_report(db, run_id, fmt, output, folder=folder)
        assert str(folder) in str(info.value)
    assert set(outside.iterdir()) | set(tmp_path.iterdir()) == before
    assert not Path("/tmp/escape-benchctl.html").exists()


def test_report_cli_refuses_a_climbing_path(hostile_run: tuple[Any, int],
                                            tmp_path: Path) -> None:
    db, run_id = hostile_run
    folder = tmp_path / "reports"
    folder.mkdir()
    r = benchctl("report", str(run_id), "--format", "html", "-o", "../../x.html",
                 "--reports-dir", str(folder), "--db", db.url.render_as_string(False))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "../../x.html" in r.stderr and str(folder) in r.stderr
    ok = benchctl("report", str(run_id), "--format", "html", "-o", "cert.html",
                  "--reports-dir", str(folder), "--db", db.url.render_as_string(False))
    assert ok.returncode == 0, ok.stderr
    assert (folder / "cert.html").is_file()


# -- passwords in database URLs -----------------------------------------------------------------

SECRET = "s3cr%40t-P4ss"  # %40 is "@": the decoded form must not leak either
URLS = [
    f"postgresql://metro:{SECRET}@127.0.0.1:1/benchctl",
    f"postgresql+psycopg://metro:{SECRET}@127.0.0.1:1/benchctl?connect_timeout=2",
    "postgresql://metro:p@ss:w/rd@127.0.0.1:1/benchctl",  # unencoded @ and / in it
]
LEAKS = ("s3cr", "P4ss", "p@ss", "w/rd")


def _no_leak(text: str) -> None:
    for secret in LEAKS:
        assert secret not in text, f"password leaked: {text!r}"


@pytest.mark.parametrize("url", URLS)
def test_password_masked_when_the_server_is_down(url: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    assert "***" in mask_url(url)
    _no_leak(mask_url(url))
    caplog.set_level(logging.DEBUG)
    with pytest.raises((StoreError, BenchctlError)) as info:
        open_database(url)
    message = f"{info.value} {getattr(info.value, 'detail', '') or ''}"
    assert "***" in message or "invalid database URL" in message
    _no_leak(message)
    _no_leak(repr(info.value))
    _no_leak(caplog.text)


@pytest.mark.parametrize("how", ["--db", "env", "bench"])
def test_password_masked_on_the_command_line(how: str, tmp_path: Path) -> None:
    url = URLS[0]
    bench = tmp_path / "bench.toml"
    bench.write_text(f'[bench]\nname = "b"\ndatabase = "{url}"\n', encoding="utf-8")
    env = {**os.environ}
    args = ["runs", "list"]
    if how == "--db":
        args += ["--db", url]
    elif how == "env":
        env["BENCHCTL_DATABASE_URL"] = url
    else:
        args = ["run", "nawi_balance", "--bench", str(bench), "--dut", str(tmp_path / "d.toml"),
                "--operator", "terminal"]
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "benchctl.cli", *args], capture_output=True,
                       text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert "***" in r.stderr and "Traceback" not in r.stderr
    _no_leak(r.stdout + r.stderr)


def test_masked_url_in_the_database_repr() -> None:
    db = open_database("sqlite://")
    assert "sqlite" in repr(db)
    from sqlalchemy.engine import make_url

    assert mask_url(make_url(URLS[0])).count("***") == 1
    _no_leak(mask_url(make_url(URLS[0])))


# -- code only from the configured library --------------------------------------------------------

@pytest.fixture
def evil(tmp_path: Path) -> Path:
    root = tmp_path / "evil"
    for kind in ("drivers", "procedures", "simulators"):
        (root / kind).mkdir(parents=True)
        (root / kind / "pwned.py").write_text(
            "raise SystemExit('loaded from an unconfigured folder')\n", encoding="utf-8")
    return root


def test_library_loads_nothing_from_unconfigured_folders(evil: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    library.configure([])
    monkeypatch.chdir(evil)  # a drivers/ folder in the working directory is not the library
    monkeypatch.syspath_prepend(str(evil))
    try:
        for kind in library.KINDS:
            with pytest.raises(library.LibraryError, match=r"no .* named 'pwned'"):
                library.load(kind, "pwned")
        with pytest.raises(library.LibraryError, match="not in a configured procedures folder"):
            library.load_file("procedures", evil / "procedures" / "pwned.py")
        for name in ("../evil/drivers/pwned", "os.path", "pwned; import os", ""):
            with pytest.raises(library.LibraryError, match="not a module name"):
                library.load("drivers", name)
    finally:
        library.configure([])


def test_a_bench_cannot_name_a_driver_outside_the_library(tmp_path: Path, evil: Path) -> None:
    bench = tmp_path / "bench.toml"
    bench.write_text('[bench]\nname = "b"\n[instruments.x]\ndriver = "pwned"\n'
                     'resource = "socket://127.0.0.1:1"\n', encoding="utf-8")
    r = benchctl("read", "x", "--bench", str(bench), cwd=str(evil))
    assert r.returncode == 2 and "no driver named 'pwned'" in r.stderr
    assert "loaded from an unconfigured folder" not in r.stderr


def test_a_procedure_path_outside_the_library_is_refused(tmp_path: Path, evil: Path,
                                                         bench_dir: Path) -> None:
    r = benchctl("run", str(evil / "procedures" / "pwned.py"), "--bench",
                 str(bench_dir / "bench.toml"), "--dut", str(bench_dir / "dut.toml"),
                 "--operator", "terminal", stdin=None)
    assert r.returncode == 2
    assert "not in a configured procedures folder" in r.stderr
    assert "loaded from an unconfigured folder" not in r.stderr


def test_simulators_listen_on_localhost_only() -> None:
    library.configure([])
    sim_bench = library.load("simulators", "bench")
    sim = sim_bench.start_simulation({"b": {"type": "mettler_sics", "max": 200.0, "d": 0.01}})
    try:
        assert sim.resources["b"].startswith("socket://127.0.0.1:")
        assert sim.control_address.startswith("127.0.0.1:")
    finally:
        sim.stop()
    assert ROOT.is_dir()

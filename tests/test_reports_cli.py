"""``benchctl report``: every format through the command line, and the reports folder that a
path cannot leave (``..``, absolute paths elsewhere, symlinks out)."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import pytest
from benchhelp import benchctl
from reportshelp import Runs, dcc_schema

from benchctl.cli import main
from benchctl.errors import ConfigError
from benchctl.reports.laboratory import load_laboratory
from benchctl.reports.paths import OutputPathError, safe_output_path, write_output

#: The session fixture ``runs`` (real balance runs, made once for all report tests).
pytest_plugins = ("reportsplugin",)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """benchctl in this process (the same parser and error printing, without the start-up)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_format_from_the_command_line(runs: Runs, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    lab = tmp_path / "lab.toml"
    lab.write_text('name = "Trung tâm Kỹ thuật TCĐLCL Thừa Thiên Huế"\n'
                   'name_en = "Thua Thien Hue Technical Centre"\ncity = "Huế"\n'
                   'email = "tdc@example.vn"\ncode = "VILAS 999"\n', encoding="utf-8")
    run_id = str(runs.calibrate)
    args = ["--db", runs.db_url, "--reports-dir", str(out), "--lab", str(lab), "--lang", "en"]
    # One through a separate process, as automation calls it; the rest in this process.
    r = benchctl("report", run_id, "--format", "pdf", "-o", "cert/run.pdf", *args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (f"certificate (pdf, DRAFT: the run is not approved, en) "
                                f"written to {out / 'cert' / 'run.pdf'}")
    for fmt in ("html", "dcc", "csv", "xlsx"):
        code, stdout, err = cli(capsys, "report", run_id, "--format", fmt, "-o",
                                f"cert/run.{fmt}", *args)
        assert code == 0, err
        assert str(out / "cert" / f"run.{fmt}") in stdout
        if fmt in ("html", "dcc"):
            assert "DRAFT: the run is not approved" in stdout
        else:
            assert "points" in stdout and "readings" in stdout
    html = (out / "cert" / "run.html").read_text(encoding="utf-8")
    assert "Thua Thien Hue Technical Centre" in html and "VILAS 999" in html
    pdf = pdfium.PdfDocument(str(out / "cert" / "run.pdf"))
    first = " ".join(pdf[0].get_textpage().get_text_range().split())
    assert "CALIBRATION CERTIFICATE / GIẤY CHỨNG NHẬN HIỆU CHUẨN" in first
    assert "Trung tâm Kỹ thuật TCĐLCL Thừa Thiên Huế" in first
    assert list(dcc_schema().iter_errors((out / "cert" / "run.dcc").read_text())) == []
    assert (out / "cert" / "run.xlsx").read_bytes()[:2] == b"PK"
    assert "reading_id" in (out / "cert" / "run.csv").read_text(encoding="utf-8-sig")
    # No temporary file is left behind.
    assert sorted(p.name for p in (out / "cert").iterdir()) == sorted(
        f"run.{f}" for f in ("html", "pdf", "dcc", "csv", "xlsx"))


def test_paths_out_of_the_reports_folder_are_refused(runs: Runs, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "reports"
    base.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (base / "link").symlink_to(outside, target_is_directory=True)
    (base / "cert.pdf").symlink_to(outside / "planted.pdf")
    cases = {
        "../escape.pdf": "climbs out with '..'",
        "sub/../../escape.pdf": "climbs out with '..'",
        str(outside / "abs.pdf"): "is outside the reports folder",
        "link/x.pdf": "through a symlink",
        "cert.pdf": "through a symlink",
    }
    for target, message in cases.items():
        code, _, err = cli(capsys, "report", str(runs.calibrate), "--format", "pdf", "-o",
                           target, "--db", runs.db_url, "--reports-dir", str(base))
        assert code == 2, (target, err)
        assert message in err and str(base) in err, (target, err)
    assert list(outside.iterdir()) == []  # nothing was written outside
    # The same through a separate process: exit status 2, one clear line, no traceback.
    r = benchctl("report", str(runs.calibrate), "--format", "pdf", "-o", "../x.pdf", "--db",
                 runs.db_url, "--reports-dir", str(base))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("benchctl: error: report path ../x.pdf climbs out with '..'")


def test_the_reports_folder_defaults_to_the_environment_then_the_current_directory(
        runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("BENCHCTL_REPORTS_DIR", str(env_dir))
    code, _, err = cli(capsys, "report", str(runs.verify), "-o", "a.html", "--db", runs.db_url)
    assert code == 0, err
    assert (env_dir / "a.html").is_file() and not (cwd / "a.html").exists()
    monkeypatch.delenv("BENCHCTL_REPORTS_DIR")
    code, _, err = cli(capsys, "report", str(runs.verify), "-o", "b.html", "--db", runs.db_url)
    assert code == 0, err
    assert (cwd / "b.html").is_file()
    code, _, err = cli(capsys, "report", str(runs.verify), "-o", str(env_dir / "c.html"),
                       "--db", runs.db_url)
    assert code == 2 and "is outside the reports folder" in err
    assert safe_output_path("x/y.pdf") == cwd.resolve() / "x" / "y.pdf"
    with pytest.raises(OutputPathError, match="does not exist"):
        safe_output_path("y.pdf", tmp_path / "missing")
    with pytest.raises(OutputPathError, match="is a folder"):
        safe_output_path(".", cwd)
    with pytest.raises(OutputPathError, match="is a folder"):
        safe_output_path("cwd", tmp_path)


def test_a_symlinked_subfolder_inside_the_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    written = write_output("alias/c.html", b"<p>ok</p>", tmp_path)
    assert written == (tmp_path / "real" / "c.html").resolve()
    assert (tmp_path / "real" / "c.html").read_bytes() == b"<p>ok</p>"
    # Overwriting replaces the file atomically.
    write_output("real/c.html", b"<p>new</p>", tmp_path)
    assert (tmp_path / "real" / "c.html").read_bytes() == b"<p>new</p>"


def test_laboratory_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "lab.toml"
    bad.write_text('name = "X"\ncountry = "Vietnam"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"lab.toml: \[country\]: expected an ISO 3166-1"):
        load_laboratory(bad)
    bad.write_text('name = "X"\nfax = "1"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[fax\]: expected one of the keys"):
        load_laboratory(bad)
    bad.write_text('name_en = "X"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[name\]"):
        load_laboratory(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_laboratory(tmp_path / "none.toml")


def test_unknown_run_is_a_clear_error(runs: Runs, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "report", "9999", "--format", "pdf", "-o", "x.pdf", "--db",
                       runs.db_url, "--reports-dir", str(tmp_path))
    assert code == 2 and "run 9999 does not exist" in err
    assert not (tmp_path / "x.pdf").exists()

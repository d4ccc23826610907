"""The bundled drivers, procedures, simulators, demo data and migrations are found from a
non-editable install (a wheel), not only from a source checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from benchhelp import ROOT

CHECK = """
import sys
sys.path.insert(0, sys.argv[1])
import benchctl, benchctl.library as lib
from pathlib import Path
assert Path(benchctl.__file__).is_relative_to(sys.argv[1]), benchctl.__file__
root = lib.bundled_root()
assert root.name == "_bundled", root
assert lib.load("drivers", "mettler_sics").ROLE == "balance"
assert lib.load("procedures", "nawi_balance").ID == "nawi_balance"
assert hasattr(lib.load("simulators", "bench"), "start_simulation")
from benchctl.demo import demo_jobs
assert demo_jobs()[0]["name"] == "balance"
from benchctl.store import open_database
db = open_database("sqlite:///" + sys.argv[2])
assert db.is_at_head()
print("ok", root)
"""


@pytest.mark.slow
def test_wheel_carries_the_library(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("benchctl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for required in ("benchctl/_bundled/drivers/mettler_sics.py",
                     "benchctl/_bundled/procedures/nawi_balance.py",
                     "benchctl/_bundled/simulators/bench.py",
                     "benchctl/demo_data/demos.toml",
                     "benchctl/store/migrations/script.py.mako",
                     "benchctl/reports/templates/certificate.html.j2"):
        assert required in names, required
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    r = subprocess.run([sys.executable, "-c", CHECK, str(site), str(tmp_path / "w.db")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok")

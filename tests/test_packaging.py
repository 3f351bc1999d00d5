"""A built wheel carries the runtime, the generated code, the generator, its templates and the
specs; it installs into a fresh venv and works there without the source tree."""

from __future__ import annotations

import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.generated_pkg import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = out.glob("daqwire-*.whl")
    return path


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "daqwire/__init__.py",
        "daqwire/py.typed",
        "daqwire/errors.py",
        "daqwire/generated/aartfaac.py",
        "daqwire/generated/aartfaac_construct.py",
        "daqwire/generated/aartfaac_strategies.py",
        "daqwire/generated/py.typed",
        "daqwire/codegen/templates/binary.py.j2",
        "daqwire/specs/aartfaac.yaml",
        "daqwire/specs/spec.schema.json",
    ):
        assert expected in names, expected
    assert not any(n.startswith(("tests/", "runtime/", "generated/")) for n in names)


def test_wheel_installs_and_imports_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    # the dependencies come from this environment's site-packages, but not daqwire: its
    # editable install is a .pth hook, which PYTHONPATH entries do not run
    deps = ":".join(site.getsitepackages())
    script = (
        "import daqwire, daqwire.generated.aartfaac as a, daqwire.codegen as c;"
        "print(daqwire.__file__); print(a.WINDOW_MAGIC == 0x47494A53484F4D4F);"
        "print(len(c.render_all(c.render.default_specs_dir())))"
        ";import daqwire.pyexplabsys as p; print(p.OLD_DATA)"
        ";import daqwire.constellation as k; print(k.DataReceiver.__name__)"
        ";import daqwire.lsst.m2, daqwire.lsst.mtmount as t; print(t.TelemetryClient.__name__)"
    )
    run = subprocess.run(
        [str(python), "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": deps, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    where, magic_ok, n_files, old_data, receiver, telemetry = run.stdout.split()
    assert where.startswith(str(env_dir)), where
    assert magic_ok == "True" and old_data == "OLD_DATA" and receiver == "DataReceiver"
    assert telemetry == "TelemetryClient"
    # aartfaac, chirp: codec, construct oracle, strategies; pyexplabsys, cdtp1, cdtp2,
    # cscp1, lsst_tcpip, m2, mtmount_telemetry: codec, strategies
    assert n_files == "20"
    check = subprocess.run(
        [str(python), "-m", "daqwire.codegen", "--check"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": deps, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stdout + check.stderr

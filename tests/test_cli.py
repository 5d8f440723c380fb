"""Command plumbing shared by every bin (annpal.cli, bin/_annpal_env.py): versions.yml ownership and the one-line
error outside the project's environment; ``nextflow run`` from another folder with the environment active."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import BIN, REPO, load_bin, nextflow_bin, nextflow_env


def test_versions_yml__keyed_by_versions_process(tmp_path):
    report = load_bin("annpal-report")
    results = tmp_path / "R" / "prepared"
    results.mkdir(parents=True)
    (results / "qc.json").write_text("{}")
    args = ["--results", str(tmp_path / "R"), "--out-dir", str(tmp_path / "O"), "--versions"]
    res = CliRunner().invoke(report, [*args, str(tmp_path / "own.yml")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(report, [*args, str(tmp_path / "nf.yml"), "--versions-process", "ANNPAL:REPORT"])
    assert res.exit_code == 0, res.output
    own, nf = (yaml.safe_load((tmp_path / name).read_text()) for name in ("own.yml", "nf.yml"))
    assert list(own) == ["REPORT"] and list(nf) == ["ANNPAL:REPORT"]
    assert own["REPORT"] == nf["ANNPAL:REPORT"] and "annpal" in own["REPORT"]


def test_modules__no_second_owner_of_the_versions_key():
    for module in sorted((REPO / "modules" / "local").glob("*/main.nf")):
        text = module.read_text()
        assert "sed -i" not in text, module
        assert "--versions-process '${task.process}'" in text, module


def _python_without_annpal() -> str | None:
    """A Python interpreter on this machine that cannot import annpal (the system one), if any."""
    for candidate in ("/usr/bin/python3", shutil.which("python3", path="/usr/bin:/bin")):
        if candidate and Path(candidate).is_file():
            probe = subprocess.run([candidate, "-c", "import annpal"], capture_output=True,
                                   env={"PATH": "/usr/bin:/bin"})
            if probe.returncode != 0:
                return candidate
    return None


@pytest.mark.parametrize("command", sorted(p.name for p in BIN.glob("annpal-*")))
def test_bin__outside_the_environment_one_line_with_the_fix(command, tmp_path):
    python = _python_without_annpal()
    if python is None:
        pytest.skip("no Python without annpal on this machine")
    # run from another folder, as Nextflow does, with a bare environment
    res = subprocess.run([python, str(BIN / command), "--help"], capture_output=True, text=True, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith("[ERROR] Python module ") and "-profile docker" in lines[0] and "make setup" in lines[0]


def test_bin__with_the_environment_runs_from_another_folder(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run([str(BIN / "annpal-report"), "--help"], capture_output=True, text=True, cwd=tmp_path,
                         env=env)
    assert res.returncode == 0 and "--results" in res.stdout, res.stderr


@pytest.mark.skipif(nextflow_bin() is None, reason="Nextflow not installed (make setup)")
def test_nextflow_run__from_another_folder_with_the_environment_active(tmp_path):
    """A stub run of the whole DAG from a folder outside the repository, the venv first on PATH."""
    cmd = [nextflow_bin(), "run", str(REPO / "main.nf"), "-profile", "test", "-stub-run", "-work-dir",
           str(tmp_path / "work"), "--outdir", str(tmp_path / "results")]
    res = subprocess.run(cmd, cwd=tmp_path, env=nextflow_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (tmp_path / "results" / "pipeline_info").is_dir()

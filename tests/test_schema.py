"""nextflow_schema.json against nextflow.config, the profiles and docs/usage.md; parameter validation
and ``--help`` of main.nf (Nextflow runs that stop before any task, a few seconds each)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, nextflow_bin, nextflow_env

SCHEMA = json.loads((REPO / "nextflow_schema.json").read_text())
PROPERTIES = {name: spec for group in SCHEMA["definitions"].values()
              for name, spec in group["properties"].items()}
needs_nextflow = pytest.mark.skipif(nextflow_bin() is None, reason="Nextflow not installed (make setup)")


def config_params(text: str) -> dict[str, str]:
    """``name -> value text`` of the ``params { ... }`` blocks and ``params.x = ...`` lines of a config."""
    out: dict[str, str] = {}
    for block in re.findall(r"^params\s*\{(.*?)^\}", text, flags=re.S | re.M):
        for name, value in re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*(?://.*)?$", block, flags=re.M):
            out[name] = value
    for name, value in re.findall(r"^\s*params\.(\w+)\s*=\s*(.+?)\s*(?://.*)?$", text, flags=re.M):
        out[name] = value
    return out


def groovy_value(text: str):
    """A Groovy literal from nextflow.config as Python (null, booleans, numbers, quoted strings)."""
    if text == "null":
        return None
    if text in ("true", "false"):
        return text == "true"
    if text[0] in "'\"":
        return text[1:-1]
    return float(text) if re.search(r"[.eE]", text) else int(text)


def test_schema__every_parameter_has_type_and_help():
    assert len(PROPERTIES) > 50
    for name, spec in PROPERTIES.items():
        assert spec.get("type") in {"string", "integer", "number", "boolean"}, name
        assert len(spec.get("description", "")) > 10, name


def test_schema__defaults_match_nextflow_config():
    defaults = {name: groovy_value(value) for name, value in
                config_params((REPO / "nextflow.config").read_text()).items()}
    profile_only = {"container_image", "sif", "slurm_queue", "slurm_account", "slurm_cluster_options"}
    assert set(defaults) == set(PROPERTIES) - profile_only
    for name, value in defaults.items():
        assert PROPERTIES[name].get("default") == value, name


def test_schema__every_profile_parameter_is_known():
    for config in sorted((REPO / "conf").glob("*.config")) + [REPO / "tests" / "pipeline_small.config"]:
        unknown = set(config_params(config.read_text())) - set(PROPERTIES)
        assert not unknown, f"{config.name} sets parameters missing from nextflow_schema.json: {unknown}"


def test_schema__usage_documents_every_parameter():
    usage = (REPO / "docs" / "usage.md").read_text()
    missing = [name for name in PROPERTIES if f"--{name}" not in usage]
    assert not missing


def test_schema__usage_has_bad_inputs_table():
    usage = (REPO / "docs" / "usage.md").read_text()
    assert "## Bad inputs" in usage and "| input | message |" in usage


def run_main(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [nextflow_bin(), "run", str(REPO / "main.nf"), "-work-dir", str(tmp_path / "work"), *args]
    return subprocess.run(cmd, cwd=tmp_path, env=nextflow_env(tmp_path), capture_output=True, text=True,
                          timeout=300)


@needs_nextflow
def test_main__help_prints_every_parameter_with_default(tmp_path):
    proc = run_main(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    for name, spec in PROPERTIES.items():
        line = next((ln for ln in proc.stdout.splitlines() if ln.strip().startswith(f"--{name} ")), None)
        assert line is not None, name
        if "default" in spec:
            shown = re.search(r"\[default: ([^\]]*)\]", line).group(1)
            default = spec["default"]
            if isinstance(default, bool):
                assert shown == str(default).lower(), line
            elif isinstance(default, (int, float)):
                assert float(shown) == pytest.approx(default), line
            else:
                assert shown == default, line
    for group in SCHEMA["definitions"].values():
        assert group["title"] in proc.stdout


BAD = [
    (["--n_model", "3"], "--n_model", "did you mean --n_models"),
    (["--methods", "ig,xx"], "--methods", "comma-separated list of ig, sm, pm, dl, sg"),
    (["--methods", "ig,ig"], "--methods", "more than once"),
    (["--thresholds", "99.99,abc"], "--thresholds", "percentiles"),
    (["--epochs", "1.5"], "--epochs", "integer"),
    (["--lr", "-0.1"], "--lr", "auto or a positive number"),
    (["--device", "tpu"], "--device", "one of auto, cpu, cuda"),
    (["--simulate", "maybe"], "--simulate", "true or false"),
    (["--bfile", "/nonexistent/cohort"], "--bfile", "/nonexistent/cohort.bed"),
    (["--max_memory", "lots"], "--max_memory", "memory size"),
    (["--pfile", "/nonexistent/cohort"], "--pfile", "/nonexistent/cohort.pgen"),
    (["--vcf", "/nonexistent/cohort.vcf.gz"], "--vcf", "does not exist"),
    (["--bfile", str(REPO / "assets" / "testdata" / "cohort"), "--pfile", "/nonexistent/cohort"], "--pfile",
     "exactly one genotype input"),
    (["--bgen_sample", "/nonexistent/c.sample"], "--bgen_sample", "belongs to --bgen"),
    (["--bgen", "/nonexistent/c.bgen"], "--simulate", "pass --bfile PREFIX"),
]


@needs_nextflow
@pytest.mark.parametrize(("args", "name", "phrase"), BAD, ids=[b[1] + "=" + b[0][-1] for b in BAD])
def test_main__bad_parameter_stops_before_any_task(tmp_path, args, name, phrase):
    proc = run_main(tmp_path, "-profile", "test", "--outdir", str(tmp_path / "out"), *args)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert any(name in ln and phrase in ln for ln in output.splitlines()), output
    assert "executor >" not in output
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


@needs_nextflow
def test_main__valid_unusual_spellings_pass_validation(tmp_path):
    # Nextflow turns 99.9 into a Double and leaves 1e-4 a String: both are fine values here.
    proc = run_main(tmp_path, "-profile", "test", "-preview", "--outdir", str(tmp_path / "out"),
                    "--thresholds", "99.9", "--lr", "1e-4", "--n_models", "2", "--sim_noise", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr

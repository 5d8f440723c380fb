"""No network at run time (docs/architecture.md): no Nextflow plugins, no downloads in any step, and a pipeline run
with networking removed still completes.

The run goes into a new network namespace (`unshare -n`, root or user namespaces), where only a
loopback interface exists; where namespaces are not allowed, every proxy variable points at a closed
local port instead and Nextflow runs with NXF_OFFLINE=true, so any attempt to reach out fails.
"""

from __future__ import annotations

import ast
import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, nextflow_bin, nextflow_env

NEXTFLOW_FILES = ["nextflow.config", "main.nf", "conf/*.config", "workflows/**/*.nf",
                  "subworkflows/**/*.nf", "modules/**/*.nf"]
# Python modules whose only use here would be fetching something over the network.
NETWORK_MODULES = {"urllib.request", "urllib3", "requests", "httpx", "http.client", "aiohttp", "ftplib",
                   "pooch", "wget", "huggingface_hub", "torch.hub"}

# Small settings on top of -profile test (the same DAG, fewer and shorter tasks).
QUICK = ["--n_models", "2", "--n_null_models", "2", "--epochs", "5", "--methods", "ig",
         "--ig_steps", "4", "--null_draws", "5"]

# An address outside this machine: connecting to it must fail inside the isolated run.
PROBE = ("import socket,sys\n"
         "try:\n    socket.create_connection(('192.0.2.1', 443), timeout=3)\n"
         "except OSError:\n    sys.exit(0)\n"
         "sys.exit(1)\n")


def _nextflow_files() -> list[Path]:
    files: list[Path] = []
    for pattern in NEXTFLOW_FILES:
        files += sorted(REPO.glob(pattern))
    return files


def _python_files() -> list[Path]:
    files = sorted((REPO / "src").rglob("*.py"))
    files += sorted(p for p in (REPO / "bin").glob("*") if p.is_file()
                    and p.read_text(errors="replace").startswith("#!/usr/bin/env python"))
    return files


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, with its parents (``import a.b`` gives a and a.b)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for mod in mods:
            parts = mod.split(".")
            names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return names


def test_configs__no_plugins_block():
    files = _nextflow_files()
    assert any(p.name == "nextflow.config" for p in files) or not (REPO / "nextflow.config").exists()
    offenders = []
    for path in files:
        text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        for n, line in enumerate(text.splitlines(), 1):
            code = line.split("//", 1)[0]
            if re.search(r"^\s*plugins\s*\{|^\s*plugins\s*\.\s*id|\bid\s+'nf-", code):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, "Nextflow plugins are downloaded at run time:\n" + "\n".join(offenders)


def test_configs__containers_are_local_or_versioned():
    """Container profiles never pull a moving tag or from a URL by default."""
    for name in ("docker", "podman", "singularity", "apptainer"):
        text = (REPO / "conf" / f"{name}.config").read_text()
        assert "docker://" not in text and "https://" not in text and ":latest" not in text, name


def test_code__no_network_imports():
    files = _python_files()
    assert files, "no Python code found"
    offenders = {str(p.relative_to(REPO)): sorted(_imported_modules(p) & NETWORK_MODULES) for p in files}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"network modules imported (no downloads at run time): {offenders}"
    for path in files:
        text = path.read_text()
        for pattern in (r"\burlopen\s*\(", r"torch\.hub\.", r"load_state_dict_from_url", r"https?://[^\s\"')]+\.(pt|pth|bin|gz|zip)\b"):
            assert not re.search(pattern, text), f"{path.relative_to(REPO)} looks like it downloads: {pattern}"


def test_modules__no_download_commands_in_scripts():
    for path in sorted(REPO.glob("modules/**/*.nf")):
        text = path.read_text()
        assert not re.search(r"\b(wget|curl|pip install|conda install|git clone)\b", text), path


def _namespace_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-n", sys.executable, "-c", PROBE], capture_output=True, timeout=30)
    return probe.returncode == 0


def _offline_command(cmd: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str], str]:
    """``cmd`` without network: in a new network namespace, else behind dead proxies."""
    if _namespace_works():
        # loopback up (Java resolves localhost); nothing else exists in the namespace
        script = 'ip link set lo up 2>/dev/null || true; exec "$@"'
        return ["unshare", "-n", "bash", "-c", script, "offline", *cmd], env, "unshare -n"
    env = dict(env)
    dead = "http://127.0.0.1:9"  # discard port: nothing listens, every connection is refused
    for var in ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy",
                "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "ALL_PROXY"):
        env[var] = dead
    env["no_proxy"] = env["NO_PROXY"] = ""
    env["NXF_OFFLINE"] = "true"
    env["NXF_OPTS"] = (env.get("NXF_OPTS", "") + " -Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=9"
                       " -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=9 -DsocksProxyHost=127.0.0.1"
                       " -DsocksProxyPort=9").strip()
    return cmd, env, "closed proxies"


@pytest.mark.pipeline
@pytest.mark.slow
def test_pipeline__completes_without_network(tmp_path):
    nxf = nextflow_bin()
    if nxf is None:
        pytest.skip("Nextflow not installed (make setup)")
    if not (REPO / "main.nf").exists():
        pytest.skip("main.nf not written yet")
    outdir = tmp_path / "results"
    cmd = [nxf, "run", str(REPO / "main.nf"), "-profile", "test", "--outdir", str(outdir),
           "-w", str(tmp_path / "work"), *QUICK]
    cmd, env, how = _offline_command(cmd, nextflow_env(tmp_path))
    if how == "unshare -n":
        # the isolation is real: nothing outside answers in there
        check = subprocess.run(["unshare", "-n", sys.executable, "-c", PROBE], timeout=30)
        assert check.returncode == 0
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    log = tmp_path / ".nextflow.log"
    assert run.returncode == 0, (
        f"offline run ({how}) failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}\n"
        f"{log.read_text()[-4000:] if log.exists() else ''}")
    traces = sorted((outdir / "pipeline_info").glob("execution_trace_*.txt"))
    assert traces
    with traces[-1].open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert rows and all(r["status"] == "COMPLETED" for r in rows)
    assert list(outdir.rglob("pvalues.tsv")), "no P-values written"

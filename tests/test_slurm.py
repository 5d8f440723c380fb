"""-profile slurm against a real one-node Slurm started for the test.

scripts/slurm-local.sh installs Debian's slurm-wlm and munge when missing (root + apt-get), writes a
localhost slurm.conf (proctrack/linuxproc, task/none, no accounting, select/cons_tres with this
machine's real CPUs and memory, all state under a temporary folder) and starts munged, slurmctld and
slurmd, recording their PIDs. The pipeline then runs with `-profile test,slurm`; every task of its
trace must carry a Slurm job id (`native_id`) that slurmctld knows as a completed job of this run.
The fixture's teardown stops exactly the recorded PIDs and checks that they are gone.
The whole file is skipped, with the reason, only where Slurm cannot be installed or started.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, nextflow_bin, nextflow_env

pytestmark = [pytest.mark.slurm]

SCRIPT = REPO / "scripts" / "slurm-local.sh"
DAEMONS = ("munged", "slurmctld", "slurmd")

# Quick settings on top of -profile test: Slurm adds seconds per job (scheduling, polling), so fewer
# and shorter tasks; the DAG (every process) is the same as in -profile test.
QUICK = ["--n_models", "2", "--n_null_models", "2", "--epochs", "5", "--methods", "ig",
         "--ig_steps", "4", "--null_draws", "5"]

# Nextflow polls Slurm every 15 s by default in conf/slurm.config (right for a real cluster); a one-node
# test cluster answers at once, so poll often.
FAST_POLLING = """
executor.pollInterval      = '1 sec'
executor.queueStatInterval = '2 sec'
executor.submitRateLimit   = '50sec'
"""


def _tail(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) counts as stopped
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


def _read_pids(state: Path) -> dict[str, int]:
    pids = {}
    path = state / "pids"
    if path.exists():
        for line in path.read_text().splitlines():
            name, pid = line.split()
            pids[name] = int(pid)
    return pids


def _installed() -> bool:
    return all(shutil.which(x) for x in ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol"))


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A running one-node Slurm: yields the environment to reach it (SLURM_CONF) and its state folder."""
    if not Path("/proc").is_dir() or shutil.which("bash") is None:
        pytest.skip("one-node Slurm needs Linux with bash")
    if not _installed():
        inst = subprocess.run([str(SCRIPT), "install"], capture_output=True, text=True, timeout=900)
        if inst.returncode != 0 or not _installed():
            pytest.skip(f"Slurm not installable here: {_tail(inst.stderr, 3) or 'slurm-wlm/munge missing'}")
    # A short path: munged's socket path must fit in a sockaddr_un (108 bytes).
    state = Path(tmp_path_factory.mktemp("slurm"))
    # one fake GPU (backed by /dev/null) so that -profile gpu's `--gres=gpu:1` jobs can be scheduled
    start = subprocess.run([str(SCRIPT), "start", str(state)], capture_output=True, text=True, timeout=180,
                           env=dict(os.environ, SLURM_LOCAL_FAKE_GPU="1"))
    pids = _read_pids(state)
    try:
        if start.returncode != 0:
            pytest.skip(f"one-node Slurm did not start here: {_tail(start.stderr, 12)}")
        assert set(pids) == set(DAEMONS), f"slurm-local.sh start recorded {pids}"
        env = dict(os.environ, SLURM_CONF=str(state / "etc" / "slurm.conf"))
        yield {"env": env, "state": state, "pids": pids}
    finally:
        subprocess.run([str(SCRIPT), "stop", str(state)], capture_output=True, text=True, timeout=120)
        left = {name: pid for name, pid in pids.items() if _alive(pid)}
        for pid in left.values():  # last resort, still only the PIDs this fixture started
            os.kill(pid, 9)
        assert not left, f"slurm-local.sh stop left these daemons running: {left}"


def _slurm_jobs(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Every job slurmctld still holds (MinJobAge=300 keeps finished ones): id -> fields."""
    out = subprocess.run(["scontrol", "-o", "show", "job"], env=env, capture_output=True, text=True,
                         timeout=30, check=True).stdout
    jobs = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" in fields:
            jobs[fields["JobId"]] = fields
    return jobs


def test_slurm_local__node_is_idle_and_runs_sbatch(slurm_cluster, tmp_path):
    env = slurm_cluster["env"]
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%T %c %m"], env=env, capture_output=True,
                          text=True, timeout=30, check=True).stdout.split()
    assert node[0] == "idle"
    assert int(node[1]) == os.cpu_count()
    out = tmp_path / "job.out"
    sub = subprocess.run(["sbatch", "--parsable", "--wait", "-c", "1", "--mem", "50M", "-o", str(out),
                          "--wrap", "echo job-ran-on $(hostname -s)"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert sub.returncode == 0, sub.stderr
    assert out.read_text().startswith("job-ran-on ")
    assert _slurm_jobs(env)[sub.stdout.strip().split(";")[0]]["JobState"] == "COMPLETED"


GPU_WORKFLOW = """
process ON_GPU {
    label 'process_gpu'
    cpus 1
    memory '100 MB'
    output: stdout
    script: 'echo "gpus=${CUDA_VISIBLE_DEVICES:-none}"'
}
process ON_CPU {
    label 'process_single'
    cpus 1
    memory '100 MB'
    output: stdout
    script: 'echo "gpus=${CUDA_VISIBLE_DEVICES:-none}"'
}
workflow { ON_GPU(); ON_CPU() }
"""


def test_slurm_gpu_profiles__process_gpu_tasks_get_one_gres_gpu(slurm_cluster, tmp_path):
    """`-profile slurm,gpu` with the project's own conf files: a process_gpu task is submitted with
    --gres=gpu:1 (Slurm then exports CUDA_VISIBLE_DEVICES), a CPU task asks for no GPU."""
    nxf = nextflow_bin()
    if nxf is None:
        pytest.skip("Nextflow not installed (make setup)")
    (tmp_path / "main.nf").write_text(GPU_WORKFLOW)
    (tmp_path / "nextflow.config").write_text(
        "params.device = 'auto'\n"
        "profiles {\n"
        f"    slurm {{ includeConfig '{REPO}/conf/slurm.config' }}\n"
        f"    gpu   {{ includeConfig '{REPO}/conf/gpu.config' }}\n"
        "}\n"
        "trace { enabled = true; file = 'trace.txt'; fields = 'name,native_id,status' }\n")
    # -c is read after the profiles, so it overrides conf/slurm.config's 15 s polling
    (tmp_path / "fast-polling.config").write_text(FAST_POLLING)
    env = nextflow_env(tmp_path)
    env["SLURM_CONF"] = slurm_cluster["env"]["SLURM_CONF"]
    run = subprocess.run([nxf, "run", "main.nf", "-profile", "slurm,gpu", "-c", "fast-polling.config"],
                         cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, _tail(run.stdout, 30)
    with (tmp_path / "trace.txt").open() as fh:
        native = {row["name"]: row["native_id"] for row in csv.DictReader(fh, delimiter="\t")}
    jobs = _slurm_jobs(env)
    assert jobs[native["ON_GPU"]].get("TresPerNode") == "gres:gpu:1"
    assert "gpu" not in jobs[native["ON_CPU"]].get("TresPerNode", "")
    outputs = {p.parent.name: p.read_text() for p in tmp_path.glob("work/*/*/.command.out")}
    assert sorted(outputs.values()) == ["gpus=0\n", "gpus=none\n"], outputs


@pytest.mark.pipeline
@pytest.mark.slow
def test_slurm_profile__every_task_is_a_slurm_job(slurm_cluster, tmp_path):
    nxf = nextflow_bin()
    if nxf is None:
        pytest.skip("Nextflow not installed (make setup)")
    if not (REPO / "main.nf").exists():
        pytest.skip("main.nf not written yet")
    env = nextflow_env(tmp_path)
    env["SLURM_CONF"] = slurm_cluster["env"]["SLURM_CONF"]
    fast = tmp_path / "fast-polling.config"
    fast.write_text(FAST_POLLING)
    outdir = tmp_path / "results"
    run = subprocess.run(
        [nxf, "run", str(REPO / "main.nf"), "-profile", "test,slurm", "-c", str(fast),
         "--outdir", str(outdir), "-w", str(tmp_path / "work"), *QUICK],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    log = (tmp_path / ".nextflow.log")
    assert run.returncode == 0, (
        f"nextflow failed:\n{_tail(run.stdout, 30)}\n{_tail(run.stderr)}\n"
        f"{_tail(log.read_text() if log.exists() else '', 30)}")

    traces = sorted((outdir / "pipeline_info").glob("execution_trace_*.txt"))
    assert traces, "no trace file in pipeline_info/"
    with traces[-1].open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert rows, "empty trace"
    jobs = _slurm_jobs(env)
    for row in rows:
        assert row["status"] == "COMPLETED", f"{row['name']}: {row['status']}"
        # the Slurm executor records the sbatch job id; the local executor would record a PID instead,
        # so the id must also be a job slurmctld ran, named by Nextflow and completed.
        assert re.fullmatch(r"\d+", row["native_id"]), f"{row['name']}: native_id {row['native_id']!r}"
        job = jobs.get(row["native_id"])
        assert job is not None, f"{row['name']}: job {row['native_id']} unknown to slurmctld"
        assert job["JobName"].startswith("nf-") and job["JobState"] == "COMPLETED", job
    processes = {row["name"].split(" (")[0].rsplit(":", 1)[-1] for row in rows}
    assert {"PREPARE", "TRAIN", "ATTRIBUTE"} <= processes, processes

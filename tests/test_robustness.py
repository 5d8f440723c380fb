"""Crashes and kills never cost finished work (issue 11, items 2-4).

* Atomic outputs: every write of every ``bin/`` command happens inside ``annpal.cli.atomic_path``
  (checked on the source), and a failure injected half-way through writing leaves neither the output
  folder nor a file that looks finished (checked by running commands).
* Pipeline kills: a run is stopped by SIGTERM to Nextflow during training, resumed, the resumed run is
  killed with SIGKILL (the whole process group: Nextflow and its tasks), and resumed again to the
  end; every task that had completed before a kill comes back CACHED. Inside the first run one
  TRAIN task's Python is SIGKILLed (exit 137): the retry continues from the checkpoint and ends
  with the weights of an uninterrupted ``annpal-train`` run.
* Resource escalation: tests/nf/retry.nf (a test double with TRAIN's label) under the real
  conf/base.config: exits 137 and 140 are retried with more memory and time, other exits are not.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import BIN, REPO, load_bin, make_prepared, nextflow_bin, nextflow_env
from helpers_input import case_control, random_counts, write_fileset

from annpal.model import load_model

needs_nextflow = pytest.mark.skipif(nextflow_bin() is None, reason="Nextflow not installed (make setup)")

# --------------------------------------------------------------------------------------------------
# 2. Atomic outputs
# --------------------------------------------------------------------------------------------------

#: Calls that create or fill a file. In a bin/ command each must sit inside `with atomic_path(...) as
#: tmp` and write under `tmp` (or be one of annpal.cli's own atomic writers, which are safe anywhere).
WRITERS = {"to_csv", "write_text", "write_bytes", "save", "savez", "savez_compressed", "save_model",
           "write_prepared", "to_bed", "savefig", "dump", "annotate_results", "build_report", "copy",
           "copyfile", "touch"}
ATOMIC_WRITERS = {"write_json", "write_tsv", "write_versions_yml", "write_plink"}


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def unsafe_writes(source: str) -> list[str]:
    """``line: call`` for every file write of a bin script that is not under an atomic temporary."""
    problems: list[str] = []

    def visit(node: ast.AST, temporaries: frozenset[str]) -> None:
        if isinstance(node, ast.With):
            names = set(temporaries)
            for item in node.items:
                expr = item.context_expr
                if isinstance(expr, ast.Call) and _call_name(expr) == "atomic_path" and item.optional_vars:
                    names |= {n.id for n in ast.walk(item.optional_vars) if isinstance(n, ast.Name)}
            temporaries = frozenset(names)
        if isinstance(node, ast.Call):
            name = _call_name(node)
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            opens_for_writing = name == "open" and any(
                isinstance(a, ast.Constant) and isinstance(a.value, str) and set(a.value) & set("wax")
                for a in [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "mode")])
            if (name in WRITERS or opens_for_writing) and not (used & temporaries):
                problems.append(f"{node.lineno}: {ast.unparse(node)[:80]}")
        for child in ast.iter_child_nodes(node):
            visit(child, temporaries)

    visit(ast.parse(source), frozenset())
    return problems


BIN_SCRIPTS = sorted(p for p in BIN.iterdir() if p.name.startswith("annpal-"))


@pytest.mark.parametrize("script", BIN_SCRIPTS, ids=[p.name for p in BIN_SCRIPTS])
def test_atomic__every_bin_write_goes_through_a_temporary(script: Path) -> None:
    assert not unsafe_writes(script.read_text()), f"{script.name} writes outside atomic_path"


def test_atomic__audit_catches_a_direct_write() -> None:
    bad = ("def main(out):\n    frame.to_csv(out / 'x.tsv')\n"
           "    with atomic_path(out) as tmp:\n        np.save(tmp / 'a.npy', a)\n")
    assert unsafe_writes(bad) == ["2: frame.to_csv(out / 'x.tsv')"]


class InjectedFailure(RuntimeError):
    """Raised by a patched writer half-way through a command's outputs."""


def fail_on_call(monkeypatch, owner, name: str, *, at: int) -> None:
    """Let ``owner.name`` run normally ``at - 1`` times, then raise (a crash after the first files)."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def patched(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= at:
            raise InjectedFailure(f"injected failure in {name} call {calls['n']}")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, patched)


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("atomic")
    fileset = write_fileset(root / "cohort", random_counts(80, 30, seed=5), pheno=case_control(80, n_cases=30, seed=5))
    dataset = root / "prepared"
    make_prepared(dataset, n_samples=120, n_snps=40, causal=(3,), n_val_per_class=10)
    mas = np.random.default_rng(0).random((3, 40))
    np.save(root / "mas_matrix.npy", mas / mas.sum(axis=1, keepdims=True))
    for seed in (1, 2):
        folder = root / f"sm_real_s{seed}"
        folder.mkdir()
        np.save(folder / "mas.npy", mas[seed - 1])
        (folder / "attr.json").write_text(json.dumps({"method": "sm", "kind": "real", "seed": seed}))
    return {"root": root, "fileset": fileset, "dataset": dataset}


# (command, arguments, which DataFrame.to_csv call fails): each fails after at least one file of the
# output was written (prepare: genotypes.npy and samples.tsv; train: model.pt; merge: mas_matrix.npy;
# call-pal: scores.tsv; simulate: phenotype.tsv; gwas: gwas.tsv).
INJECTIONS = [
    ("annpal-prepare", lambda d: ["--bfile", d["fileset"], "--val-cases", "5", "--val-controls", "5",
                                  "--allow-few-samples"], 2),  # 25 training cases: deliberately tiny
    ("annpal-train", lambda d: ["--dataset", d["dataset"], "--seed", "1", "--epochs", "2", "--h1", "4", "--h2", "2",
                                "--device", "cpu"], 1),
    ("annpal-merge-mas", lambda d: ["--method", "sm", "--kind", "real", d["root"] / "sm_real_s2",
                                    d["root"] / "sm_real_s1"], 1),
    ("annpal-call-pal", lambda d: ["--dataset", d["dataset"], "--mas", d["root"] / "mas_matrix.npy", "--method", "sm"],
     2),
    ("annpal-simulate", lambda d: ["--bfile", d["fileset"], "--n-causal", "4", "--n-cases", "20"], 2),
    ("annpal-gwas", lambda d: ["--dataset", d["dataset"], "--n-pcs", "1"], 2),
]


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "over_old_output"])
@pytest.mark.parametrize(("name", "args", "at"), INJECTIONS, ids=[i[0] for i in INJECTIONS])
def test_atomic__failure_mid_write_leaves_no_finished_output(monkeypatch, small_inputs, tmp_path, name, args, at,
                                                             existing) -> None:
    out = tmp_path / "out"
    if existing:  # an older complete output must survive a failed rerun untouched
        out.mkdir()
        (out / "old.txt").write_text("old\n")
    fail_on_call(monkeypatch, pd.DataFrame, "to_csv", at=at)
    result = CliRunner().invoke(load_bin(name), [*map(str, args(small_inputs)), "--out-dir", str(out),
                                                 "--versions", str(tmp_path / "versions.yml")])
    assert isinstance(result.exception, InjectedFailure), (result.exception, result.output)
    if existing:
        assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    else:
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out"] if existing else [])


def test_atomic__sigkill_mid_write_leaves_only_a_temporary_name(small_inputs, tmp_path) -> None:
    """A process killed while writing cannot clean up: what remains must not look finished."""
    out = tmp_path / "out"
    argv = [str(BIN / "annpal-train"), "--dataset", str(small_inputs["dataset"]), "--seed", "1", "--epochs", "2",
            "--h1", "4", "--h2", "2", "--device", "cpu", "--out-dir", str(out)]
    driver = (
        "import os, runpy, signal, sys, pandas\n"
        "def die(*a, **k): os.kill(os.getpid(), signal.SIGKILL)\n"
        "pandas.DataFrame.to_csv = die\n"  # model.pt is written, history.tsv never
        f"sys.argv = {argv!r}\n"
        f"sys.path.insert(0, {str(BIN)!r})\n"  # as when the script runs: its folder is on sys.path
        f"runpy.run_path({str(BIN / 'annpal-train')!r}, run_name='__main__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists()
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".out.tmp-")
    assert (leftovers[0] / "model.pt").exists()  # the crash came after the first file


# --------------------------------------------------------------------------------------------------
# 4. Resource escalation (tests/nf/retry.nf under conf/base.config)
# --------------------------------------------------------------------------------------------------

NF_DIR = REPO / "tests" / "nf"
UNIT_BYTES = {"MB": 2**20, "GB": 2**30, "TB": 2**40}
UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def label_rule(label: str) -> dict[str, float]:
    """Per-attempt requests of a label in conf/base.config: ``{cpus: n, memory: bytes, time: ms}`` per
    attempt (the factor in front of ``task.attempt``)."""
    text = (REPO / "conf" / "base.config").read_text()
    block = re.search(rf"withLabel:\s*'{label}'\s*\{{(.*?)\n    \}}", text, flags=re.S).group(1)
    cpus = re.search(r"cpus\s*=\s*\{[^\n]*?(\d+)\s*\*\s*task\.attempt", block)
    memory = re.search(r"memory\s*=\s*\{[^\n]*?(\d+)\.(MB|GB|TB)\s*\*\s*task\.attempt", block)
    duration = re.search(r"time\s*=\s*\{[^\n]*?(\d+)\.(m|h|d)\s*\*\s*task\.attempt", block)
    return {"cpus": int(cpus.group(1)), "memory": int(memory.group(1)) * UNIT_BYTES[memory.group(2)],
            "time": int(duration.group(1)) * UNIT_MS[duration.group(2)]}


def run_retry_double(tmp_path: Path, codes: str) -> tuple[subprocess.CompletedProcess, list[dict[str, str]]]:
    cmd = [nextflow_bin(), "run", str(NF_DIR / "retry.nf"), "-c", str(NF_DIR / "retry.config"), "--codes", codes,
           "-work-dir", str(tmp_path / "work")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=nextflow_env(tmp_path), capture_output=True, text=True, timeout=300)
    with open(tmp_path / "trace.txt", newline="") as fh:
        return proc, list(csv.DictReader(fh, delimiter="\t"))


def expected_requests(base: int, observed: list[int]) -> list[int]:
    """``base × attempt``, except where the local executor fitted a request to this machine (base.config's
    fitLocal*): then every later attempt gets that same machine-sized cap."""
    last = len(observed)
    cap = observed[-1] if observed[-1] < base * last else None
    return [base * k if cap is None else min(base * k, cap) for k in range(1, last + 1)]


@pytest.mark.pipeline
@needs_nextflow
def test_retry__exit_137_then_140_retried_with_more_memory_and_time(tmp_path) -> None:
    proc, trace = run_retry_double(tmp_path, "137,140")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = sorted(trace, key=lambda r: int(r["attempt"]))
    assert [(r["attempt"], r["status"], r["exit"]) for r in rows] == [
        ("1", "FAILED", "137"), ("2", "FAILED", "140"), ("3", "COMPLETED", "0")]
    rule = label_rule("process_gpu")
    times = [int(r["time"]) for r in rows]
    assert times == [rule["time"] * k for k in (1, 2, 3)]  # time is never fitted to the machine
    for key in ("memory", "cpus"):
        observed = [int(r[key]) for r in rows]
        assert observed == expected_requests(rule[key], observed), (key, observed)
        assert observed == sorted(observed)
    memory = [int(r["memory"]) for r in rows]
    if rule["memory"] * 2 <= memory[-1]:  # a machine with room to show the escalation
        assert memory[1] == 2 * memory[0]


@pytest.mark.pipeline
@needs_nextflow
def test_retry__exit_codes_outside_130_145_are_not_retried(tmp_path) -> None:
    proc, trace = run_retry_double(tmp_path, "1;129;146")
    assert proc.returncode != 0
    assert sorted((r["tag"], r["attempt"], r["status"], r["exit"]) for r in trace) == [
        ("exit_1", "1", "FAILED", "1"), ("exit_129", "1", "FAILED", "129"), ("exit_146", "1", "FAILED", "146")]
    assert "Re-submitted" not in proc.stdout


# --------------------------------------------------------------------------------------------------
# 3. Pipeline kills and -resume, TRAIN killed and retried from its checkpoint
# --------------------------------------------------------------------------------------------------

EPOCHS, CHECKPOINT_EVERY = 600, 50  # ~5 s per TRAIN task on one core, a checkpoint every ~0.4 s


def pipeline_args(root: Path) -> list[str]:
    return ["-profile", "test", "--bfile", str(root / "data" / "cohort"), "--outdir", str(root / "results"),
            "--sim_n_causal", "10", "--sim_n_cases", "150", "--val_cases", "30", "--val_controls", "30",
            "--n_models", "2", "--n_null_models", "2", "--methods", "sm", "--skip_gwas", "--null_draws", "5",
            "--epochs", str(EPOCHS), "--h1", "32", "--h2", "8",
            "--checkpoint_dir", str(root / "checkpoints"), "--checkpoint_every", str(CHECKPOINT_EVERY)]


PIPELINE_CODE = ("main.nf", "nextflow.config", "nextflow_schema.json", "pyproject.toml", "conf", "modules",
                 "subworkflows", "workflows", "bin", "src")


def snapshot_pipeline(dest: Path) -> Path:
    """A copy of the pipeline code: its code version (hashed into every task) stays fixed for the three
    runs even if the working tree changes meanwhile; tasks still import annpal from the environment."""
    dest.mkdir()
    for name in PIPELINE_CODE:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / name)
    return dest / "main.nf"


def start(root: Path, name: str, *extra: str) -> subprocess.Popen:
    """``nextflow run`` in the background, in its own process group (the launcher execs java)."""
    cmd = [nextflow_bin(), "run", str(root / "code" / "main.nf"), "-work-dir", str(root / "work"), *pipeline_args(root),
           "-with-trace", str(root / f"{name}.trace.txt"), *extra]
    log = open(root / f"{name}.out.txt", "w")
    return subprocess.Popen(cmd, cwd=root, env=nextflow_env(root), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def train_tasks(root: Path) -> list[dict]:
    """TRAIN task folders in the work dir: tag, folder, state (running / ok / failed), last logged epoch."""
    tasks = []
    for script in (root / "work").glob("*/*/.command.sh"):
        text = script.read_text()
        if "annpal-train" not in text:
            continue
        folder = script.parent
        code = folder / ".exitcode"
        exit_text = code.read_text().strip() if code.exists() else ""
        state = "running" if not exit_text and (folder / ".command.begin").exists() else (
            "ok" if exit_text == "0" else "failed" if exit_text else "pending")
        log = folder / ".command.err"
        epochs = re.findall(r"epoch (\d+)/", log.read_text()) if log.exists() else []
        tasks.append({"tag": re.search(r"--out-dir (\S+)", text).group(1), "dir": folder, "state": state,
                      "epoch": int(epochs[-1]) if epochs else 0,
                      "finished_at": code.stat().st_mtime if exit_text else None})
    return tasks


def task_processes(root: Path) -> dict[int, str]:
    """pid -> command line of the processes working in this test's work dir (its tasks, nothing else)."""
    work = str(root / "work")
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.readlink(proc / "cwd").startswith(work):
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def wait_until(condition, *, proc: subprocess.Popen, timeout: float = 240.0, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"Nextflow ended ({proc.returncode}) before: {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for: {what}")


def wait_for_no_tasks(root: Path, timeout: float = 60.0) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while (left := task_processes(root)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def read_trace(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def short(row: dict[str, str]) -> str:
    return f"{row['process'].split(':')[-1]} ({row['tag']})"


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory) -> dict:
    """Run 1: SIGKILL one TRAIN's Python after a checkpoint, then SIGTERM Nextflow while other TRAIN
    tasks run. Run 2 (-resume): SIGKILL the process group while TRAIN tasks run. Run 3 (-resume): to
    the end. Kept in one chain so the suite pays for one pipeline's worth of tasks."""
    root = tmp_path_factory.mktemp("kills")
    write_fileset(root / "data" / "cohort", random_counts(400, 600, seed=11), chrom=[1] * 300 + [2] * 300,
                  bp=list(range(1000, 1000 + 300 * 500, 500)) * 2)
    snapshot_pipeline(root / "code")
    started: list[subprocess.Popen] = []
    try:
        return _kill_chain(root, started)
    finally:  # a failed wait must not leave a pipeline running in the background
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
        for pid in task_processes(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _kill_chain(root: Path, started: list[subprocess.Popen]) -> dict:
    info: dict = {"root": root}

    # -- run 1 ------------------------------------------------------------------------------------
    proc = start(root, "run1")
    started.append(proc)
    victim = wait_until(lambda: next((t for t in train_tasks(root) if t["state"] == "running"
                                      and 2 * CHECKPOINT_EVERY <= t["epoch"] <= EPOCHS // 2), None),
                        proc=proc, what="a TRAIN task past its first checkpoint, in its first half")
    pids = [pid for pid, cmd in task_processes(root).items()
            if "annpal-train" in cmd and "python" in cmd and f"--out-dir {victim['tag']}" in cmd
            and os.readlink(f"/proc/{pid}/cwd") == str(victim["dir"])]
    assert len(pids) == 1, task_processes(root)
    os.kill(pids[0], signal.SIGKILL)
    info["victim"] = victim["tag"]

    def others_running_after_one_completed():
        tasks = train_tasks(root)
        done = [t for t in tasks if t["state"] == "ok"]
        running = [t for t in tasks if t["state"] == "running"]
        return done and running and (done, running)

    done, running = wait_until(others_running_after_one_completed, proc=proc,
                               what="one TRAIN completed while others run")
    time.sleep(0.5)  # let Nextflow register what has finished (the local executor polls every 100 ms)
    proc.send_signal(signal.SIGTERM)
    info["run1_rc"] = proc.wait(timeout=120)
    info["run1_left"] = wait_for_no_tasks(root)
    info["run1_running_at_kill"] = {t["tag"] for t in running}

    # -- run 2 (-resume), killed hard ------------------------------------------------------------
    before = {t["dir"] for t in train_tasks(root)}
    proc = start(root, "run2", "-resume")
    started.append(proc)

    def new_completed_while_others_run():
        tasks = train_tasks(root)
        new_done = [t for t in tasks if t["dir"] not in before and t["state"] == "ok"]
        # another TRAIN still running; should the last two have finished in the same instant, the
        # ATTRIBUTE tasks that follow them do as well
        running = [t for t in tasks if t["state"] == "running"] or [
            p for p in (root / "work").glob("*/*/.command.begin") if not (p.parent / ".exitcode").exists()]
        return new_done and running and (new_done, running)

    wait_until(new_completed_while_others_run, proc=proc, what="a resumed run's TRAIN completed while others run")
    time.sleep(1.5)
    settled = time.time() - 1.0  # tasks finished before this have surely been registered by Nextflow
    info["run2_done_before_kill"] = {t["tag"] for t in train_tasks(root)
                                     if t["state"] == "ok" and t["finished_at"] < settled}
    # SIGKILL to the whole group: java and every task it started. Killing only java would leave the
    # tasks' bash and python running as orphans, finishing (or still writing checkpoints) beside the
    # resumed run; with the group gone nothing of the old run remains.
    os.killpg(proc.pid, signal.SIGKILL)
    info["run2_rc"] = proc.wait(timeout=60)
    info["run2_left"] = wait_for_no_tasks(root, timeout=10)
    for pid in info["run2_left"]:  # our own tasks, should any have left the group: end them
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    # -- run 3 (-resume), to the end ---------------------------------------------------------------
    proc = start(root, "run3", "-resume")
    started.append(proc)
    info["run3_rc"] = proc.wait(timeout=600)
    return info


@pytest.mark.pipeline
@pytest.mark.slow
@needs_nextflow
def test_kill__sigterm_then_resume_reuses_completed_tasks(killed_runs) -> None:
    root = killed_runs["root"]
    assert killed_runs["run1_rc"] != 0
    assert not killed_runs["run1_left"], f"tasks outlived SIGTERM: {killed_runs['run1_left']}"
    run1 = read_trace(root / "run1.trace.txt")
    completed = {short(r) for r in run1 if r["status"] == "COMPLETED"}
    assert any(name.startswith("TRAIN ") for name in completed)
    assert {short(r) for r in run1 if r["status"] in ("ABORTED", "FAILED") and "TRAIN" in r["process"]}
    # the resumed run reports each reused task as "Cached process > ... NAME (tag)" when it starts
    out2 = (root / "run2.out.txt").read_text()
    cached2 = {re.sub(r"^.*:", "", m) for m in re.findall(r"Cached process > (\S+ \([^)]*\))", out2)}
    assert completed <= cached2, completed - cached2
    # the final run completes, reusing them again
    assert killed_runs["run3_rc"] == 0, (root / "run3.out.txt").read_text()[-3000:]
    run3 = {short(r): r["status"] for r in read_trace(root / "run3.trace.txt")}
    assert all(run3[name] == "CACHED" for name in completed)
    assert (root / "results" / "pvalues" / "sm" / "pvalues.tsv").exists()


@pytest.mark.pipeline
@pytest.mark.slow
@needs_nextflow
def test_kill__sigkill_process_group_then_resume_reuses_completed_tasks(killed_runs) -> None:
    root = killed_runs["root"]
    assert killed_runs["run2_rc"] == -signal.SIGKILL
    assert not killed_runs["run2_left"], f"tasks outside Nextflow's process group: {killed_runs['run2_left']}"
    done = killed_runs["run2_done_before_kill"]
    assert done
    assert killed_runs["run3_rc"] == 0, (root / "run3.out.txt").read_text()[-3000:]
    run3 = read_trace(root / "run3.trace.txt")
    status = {short(r): r["status"] for r in run3}
    assert all(status[f"TRAIN ({tag})"] == "CACHED" for tag in done), status
    assert {r["status"] for r in run3} <= {"CACHED", "COMPLETED"}
    assert sum(r["status"] == "COMPLETED" for r in run3 if "TRAIN" in r["process"]) >= 1
    published = sorted(p.name for p in (root / "results" / "train").iterdir())
    assert published == ["null_s1", "null_s2", "real_s1", "real_s2"]


def task_script_args(folder: Path) -> list[str]:
    """The ``annpal-train`` arguments of a TRAIN task's ``.command.sh``."""
    text = (folder / ".command.sh").read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("annpal-train"))
    return shlex.split(line)[1:]


@pytest.mark.pipeline
@pytest.mark.slow
@needs_nextflow
def test_kill__train_task_killed_resumes_from_checkpoint_with_same_weights(killed_runs, tmp_path) -> None:
    root, victim = killed_runs["root"], killed_runs["victim"]
    out1 = (root / "run1.out.txt").read_text()
    assert re.search(rf"TRAIN \({victim}\)` terminated with an error exit status \(137\) -- Execution is retried",
                     out1), out1[-3000:]
    assert killed_runs["run3_rc"] == 0
    train_json = json.loads((root / "results" / "train" / victim / "train.json").read_text())
    assert 0 < train_json["resumed_from_epoch"] <= EPOCHS
    # the retry after the kill resumed mid-run; a later attempt (its run stopped by the SIGTERM or the
    # group kill after training had ended) may resume from the last checkpoint, which is what train.json
    # then says
    logs = [t["dir"] / ".command.err" for t in train_tasks(root) if t["tag"] == victim]
    resumed_at = [int(e) for log in logs if log.exists()
                  for e in re.findall(r"resuming from \S+ at epoch (\d+)", log.read_text())]
    assert any(0 < e < EPOCHS for e in resumed_at), resumed_at
    history = pd.read_csv(root / "results" / "train" / victim / "history.tsv", sep="\t")
    assert history["epoch"].tolist() == list(range(1, EPOCHS + 1))

    # the same task uninterrupted: the final attempt's own arguments, without checkpoints
    final = max((t for t in train_tasks(root) if t["tag"] == victim and t["state"] == "ok"),
                key=lambda t: t["finished_at"])
    args = task_script_args(final["dir"])
    keep, skip = [], {"--checkpoint-dir", "--checkpoint-root", "--checkpoint-every", "--out-dir", "--versions"}
    it = iter(args)
    for a in it:
        if a in skip:
            next(it)
        else:
            keep.append(a)
    keep[keep.index("--dataset") + 1] = str((final["dir"] / keep[keep.index("--dataset") + 1]).resolve())
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(BIN / "annpal-train"), *keep, "--out-dir", str(tmp_path / "plain")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    resumed, _ = load_model(root / "results" / "train" / victim / "model.pt")
    plain, _ = load_model(tmp_path / "plain" / "model.pt")
    a, b = resumed.state_dict(), plain.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "plain" / "train.json").read_text())["resumed_from_epoch"] == 0

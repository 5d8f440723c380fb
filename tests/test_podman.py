"""The image built for real, and `-profile test,podman` end to end (issue 19).

The test tree is a snapshot of the checkout (tracked and untracked, non-ignored files), so the image,
the tag Nextflow computes and both pipeline runs see the same code even while the checkout changes.
``scripts/build-image.sh --local-base`` builds the image from it (on a Debian base made with mmdebstrap,
no registry needed), or finds it already built when lock and code are unchanged. Then:

* the image holds exactly requirements.lock + annpal (+ the venv's pip), runs as a non-root user, has the
  version label, the lock's Python, ``bin/`` on PATH, and its CUDA torch falls back to CPU under
  ``--device auto`` where there is no GPU;
* ``nextflow run main.nf -profile test,podman`` runs every task through ``podman run`` of that image,
  each ``versions.yml`` comes from inside it (it names the image), and every result file (tables,
  model weights, MAS, PAL, P-values) equals, byte for byte, that of the same run without containers
  (same seeds, ``--device auto`` in both, so the image's CUDA torch must fall back to the CPU); only
  run records (pipeline_info, versions, JSON provenance, the report) and wall-clock columns differ.

Podman's defaults fail on some hosts (crun on hybrid cgroups, refused ulimits): when the first build fails
there, the test retries with containers/podman-hosts-without-crun.conf via CONTAINERS_CONF, as a user would.
The module skips, with the reason, only where podman is missing and cannot be installed.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, nextflow_bin, nextflow_env, snapshot_checkout

pytestmark = [pytest.mark.container, pytest.mark.pipeline, pytest.mark.slow]

HOSTS_CONF = "containers/podman-hosts-without-crun.conf"
SMALL = "tests/pipeline_small.config"


def _tail(text: str, n: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _ensure_podman() -> None:
    if shutil.which("podman") is None:
        subprocess.run([str(REPO / "scripts" / "install-system-deps.sh")], capture_output=True, timeout=1800)
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed and could not be (scripts/install-system-deps.sh needs root "
                    "and apt-get: apt-get install podman runc mmdebstrap)")
    if shutil.which("mmdebstrap") is None:
        pytest.skip("mmdebstrap is not installed and could not be (apt-get install mmdebstrap)")


def _build(tree: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["nice", "-n", "10", str(tree / "scripts" / "build-image.sh"), "--local-base", "--prune"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=3600)


def _build_and_run(tree: Path, env: dict[str, str]) -> tuple[str | None, str]:
    """Build (or find) the image and start it once: (tag, "") when both work, else (None, why)."""
    build = _build(tree, env)
    if build.returncode != 0:
        return None, f"build-image.sh failed:\n{_tail(build.stderr)}"
    tag = build.stdout.strip().splitlines()[-1]
    run = subprocess.run(["podman", "run", "--rm", tag, "true"], env=env, capture_output=True, text=True,
                         timeout=300)
    if run.returncode != 0:
        return None, f"podman run {tag} failed:\n{_tail(run.stderr)}"
    return tag, ""


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> dict:
    """The image of a snapshot of the checkout: {"tree", "tag", "env"} (env: how podman works here)."""
    _ensure_podman()
    tree = snapshot_checkout(tmp_path_factory.mktemp("tree"))
    env = dict(os.environ)
    tag, why = _build_and_run(tree, env)
    if tag is None and "CONTAINERS_CONF" not in os.environ:
        # e.g. "error setting rlimits" or a crun cgroup error: the settings of containers/README.md
        env["CONTAINERS_CONF"] = str(tree / HOSTS_CONF)
        tag, why_conf = _build_and_run(tree, env)
        why = f"with Podman's defaults: {why}\nwith {HOSTS_CONF}: {why_conf}"
    assert tag is not None, why
    assert re.fullmatch(r"annpal:\d+\.\d+\.\d+\S*-[0-9a-f]{12}", tag), tag
    return {"tree": tree, "tag": tag, "env": env}


def _podman_run(image: dict, *cmd: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", "run", "--rm", *options, image["tag"], *cmd], env=image["env"],
                          capture_output=True, text=True, timeout=300)


def _lock_pins(tree: Path) -> dict[str, str]:
    pins = {}
    for line in (tree / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_image__holds_exactly_the_lock_and_annpal(image):
    listing = ("import importlib.metadata as m, json, re; print(json.dumps(sorted("
               "[re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(), d.version] for d in m.distributions())))")
    proc = _podman_run(image, "python", "-c", listing)
    assert proc.returncode == 0, proc.stderr
    installed = {name: version for name, version in json.loads(proc.stdout)}
    assert installed.pop("pip", None), "the venv's own pip is expected"
    version = re.search(r'(?m)^version = "([^"]+)"', (image["tree"] / "pyproject.toml").read_text()).group(1)
    assert installed.pop("annpal") == version
    assert installed == _lock_pins(image["tree"])


def test_image__non_root_user_label_python_and_bin_on_path(image):
    proc = _podman_run(image, "bash", "-c",
                       "id -un; python -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'; "
                       "command -v annpal-prepare ps; echo $ANNPAL_IMAGE; annpal-prepare --help >/dev/null")
    assert proc.returncode == 0, proc.stderr
    user, python, prepare, ps, tag = proc.stdout.split()
    assert user == "annpal"
    lock_python = re.search(r"Python (\d+\.\d+)", (image["tree"] / "requirements.lock").read_text()).group(1)
    assert python == lock_python
    assert prepare == "/opt/annpal/bin/annpal-prepare" and ps.endswith("/ps")
    assert tag == image["tag"]
    label = subprocess.run(["podman", "image", "inspect", "--format",
                            '{{index .Labels "org.opencontainers.image.version"}}', image["tag"]],
                           env=image["env"], capture_output=True, text=True, timeout=60)
    assert label.stdout.strip() == tag.split(":", 1)[1].rsplit("-", 1)[0]


def test_image__cuda_torch_falls_back_to_cpu_with_device_auto(image):
    """The image's torch is the CUDA build; with no GPU passed in, --device auto gives the CPU quietly,
    and --device cuda is a one-line error (exit 2 from the CLI), not a crash."""
    probe = ("import torch, warnings; warnings.simplefilter('error'); "
             "from annpal.device import resolve_device; "
             "print(torch.version.cuda is not None, torch.cuda.is_available(), resolve_device('auto'))")
    proc = _podman_run(image, "python", "-c", probe)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "False", "cpu"]


def test_image__tag_is_the_one_nextflow_config_names(image):
    env = nextflow_env(image["tree"])
    proc = subprocess.run([nextflow_bin(), "config", "-flat", "-profile", "test,podman", str(image["tree"])],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"process.container = '{image['tag']}'" in proc.stdout


def _run_pipeline(image: dict, root: Path, profile: str, *extra: str, env: dict[str, str]) -> Path:
    tree = image["tree"]
    cmd = [nextflow_bin(), "run", str(tree / "main.nf"), "-profile", profile, "-c", str(tree / SMALL),
           "--outdir", str(root / "results"), "-work-dir", str(root / "work"),
           "-with-trace", str(root / "trace.txt"), *extra]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, f"nextflow {profile} failed:\n{_tail(proc.stdout, 40)}\n{_tail(proc.stderr)}"
    return root


@pytest.fixture(scope="module")
def runs(image, tmp_path_factory) -> dict[str, Path]:
    if nextflow_bin() is None:
        pytest.skip("Nextflow not installed (make setup)")
    # both runs with --device auto (the CUDA torch of the image must fall back to the CPU, as the
    # host's does), so that the device recorded in each model file is the same
    # the container run; env as the build found podman working
    podman_root = tmp_path_factory.mktemp("podman_run")
    env = dict(nextflow_env(podman_root), **{k: v for k, v in image["env"].items() if k == "CONTAINERS_CONF"})
    _run_pipeline(image, podman_root, "test,podman", "--device", "auto", env=env)
    # the plain run: the host venv, importing the snapshot's library (not the checkout's editable install)
    plain_root = tmp_path_factory.mktemp("plain_run")
    env = nextflow_env(plain_root)
    env["PYTHONPATH"] = str(image["tree"] / "src")
    _run_pipeline(image, plain_root, "test", "--device", "auto", env=env)
    return {"podman": podman_root, "plain": plain_root}


def _trace(root: Path) -> list[dict[str, str]]:
    with open(root / "trace.txt", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _task_dir(root: Path, short_hash: str) -> Path:
    prefix, rest = short_hash.split("/")
    (found,) = (root / "work" / prefix).glob(f"{rest}*")
    return found


def test_podman_profile__every_task_ran_in_the_image(image, runs):
    trace = _trace(runs["podman"])
    assert trace and all(row["status"] == "COMPLETED" for row in trace), [row["status"] for row in trace]
    assert sorted(r["process"] for r in trace) == sorted(r["process"] for r in _trace(runs["plain"]))
    for row in trace:
        task = _task_dir(runs["podman"], row["hash"])
        wrapper = (task / ".command.run").read_text()
        assert re.search(rf"podman run .*\b{re.escape(image['tag'])}\b", wrapper), (row["name"], task)
        versions = task / "versions.yml"
        if versions.exists():  # written by the step inside the container: it names the image
            assert f"image: {image['tag']}" in versions.read_text(), row["name"]
    processes = {r["process"].split(":")[-1] for r in trace}
    with_versions = {r["process"].split(":")[-1] for r in trace
                     if (_task_dir(runs["podman"], r["hash"]) / "versions.yml").exists()}
    assert {"PREPARE", "TRAIN", "ATTRIBUTE", "CALL_PAL", "PVALUES"} <= with_versions <= processes


# Files whose bytes legitimately differ between the two runs: run records (times, paths, the image
# tag in the versions), and the HTML/PNG report that embeds them.
RUN_RECORDS = re.compile(r"(^|/)pipeline_info/|\.(json|yml|yaml|html|png|svg|log)$")
# Wall-clock columns of result tables (training history): everything else in them is compared.
TIMING_COLUMNS = {"seconds"}


def _without_timing(name: str, data: bytes) -> bytes:
    if not name.endswith(".tsv"):
        return data
    rows = [line.split("\t") for line in data.decode().split("\n")]
    drop = {i for i, column in enumerate(rows[0]) if column in TIMING_COLUMNS}
    return "\n".join("\t".join(f for i, f in enumerate(row) if i not in drop) for row in rows).encode()


def test_podman_profile__results_equal_a_run_without_containers(runs):
    def tables(root: Path) -> dict[str, bytes]:
        results = root / "results"
        return {name: _without_timing(name, p.read_bytes()) for p in sorted(results.rglob("*"))
                if p.is_file() and not RUN_RECORDS.search(name := str(p.relative_to(results)))}

    podman, plain = tables(runs["podman"]), tables(runs["plain"])
    assert podman.keys() == plain.keys()
    assert any(name.startswith("pal") or "/pal" in name for name in podman), sorted(podman)
    differ = sorted(name for name in podman if podman[name] != plain[name])
    assert not differ, f"differ between the podman and the plain run: {differ}"


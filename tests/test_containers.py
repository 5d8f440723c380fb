"""The container recipes agree with the tested lock file and the package version.

containers/Dockerfile and containers/apptainer.def are parsed here (tests/test_podman.py builds and
runs the Dockerfile): every ``pip install`` must install exactly the lock file (``--no-deps -r``) or the
annpal package itself (``--no-deps``), never a package by name; the file installed with ``-r`` is the
COPY of requirements.lock; bash and procps are installed; the Python is the lock's; image version
label and SIF name equal pyproject's version; the docker/podman image tag that scripts/build-image.sh
computes is the one nextflow.config names, and it follows the code; and the lock pins every dependency
pyproject names.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import nextflow_bin, nextflow_env, snapshot_checkout

try:  # Python >= 3.11; the lock and the images are 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
CONTAINERS = REPO / "containers"
CONF = REPO / "conf"


def _version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def _lock() -> dict[str, str]:
    """``{canonical name: version}`` of requirements.lock; every non-comment line must be ``name==version``."""
    pins: dict[str, str] = {}
    for raw in (REPO / "requirements.lock").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", line)
        assert m, f"requirements.lock line is not an exact pin: {raw!r}"
        pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of containers/Dockerfile, continuation lines joined."""
    text = (CONTAINERS / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            instr, _, args = line.strip().partition(" ")
            out.append((instr.upper(), args.strip()))
    return out


def _apptainer() -> dict[str, list[str]]:
    """Header (``Key: value`` lines, under ``header``) and ``%section`` bodies of apptainer.def."""
    sections: dict[str, list[str]] = {"header": []}
    current = "header"
    for raw in (CONTAINERS / "apptainer.def").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("%"):
            current = line[1:].split()[0]
            sections[current] = []
        else:
            sections[current].append(line)
    return sections


def _commands(shell_text: str) -> list[list[str]]:
    """Shell commands in ``shell_text`` (split at ``&&``, ``;``, ``||``, ``|`` and new lines outside
    quotes), as argv lists; redirections are left as tokens."""
    commands = []
    for line in shell_text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        argv: list[str] = []
        for token in lexer:
            if token in (";", "&&", "||", "|", "&"):
                commands.append(argv)
                argv = []
            else:
                argv.append(token)
        commands.append(argv)
    return [argv for argv in commands if argv]


def _pip_installs(commands: list[list[str]]) -> list[list[str]]:
    """Arguments after ``pip install`` (also ``python -m pip install``) of every such command."""
    out = []
    for argv in commands:
        for i in range(len(argv) - 1):
            if Path(argv[i]).name in ("pip", "pip3") and argv[i + 1] == "install":
                out.append(argv[i + 2:])
                break
            if argv[i] == "-m" and argv[i + 1] == "pip" and i + 2 < len(argv) and argv[i + 2] == "install":
                out.append(argv[i + 3:])
                break
    return out


def _check_pip_installs(installs: list[list[str]], *, lock_dest: str, package_dest: str) -> None:
    """Exactly one ``pip install --no-deps -r <lock>`` and one ``pip install --no-deps <package>``."""
    # $PIP_CACHE_OPTION is --no-cache-dir unless the build mounts a pip cache (checked below)
    harmless = {"--no-cache-dir", "--disable-pip-version-check", "-q", "--quiet", "--no-compile",
                "$PIP_CACHE_OPTION"}
    kinds = []
    for args in installs:
        flags = [a for a in args if a not in harmless]
        if "-r" in flags or "--requirement" in flags:
            assert sorted(flags) == sorted(["--no-deps", "-r", lock_dest]), (
                f"pip install -r must install exactly the lock (--no-deps): {args}")
            kinds.append("lock")
        else:
            assert flags == ["--no-deps", package_dest], (
                f"pip install other than the lock must be the annpal package with --no-deps: {args}")
            kinds.append("package")
    assert kinds == ["lock", "package"], f"expected the lock, then the package; got {kinds}"


def _copy_dest(copies: list[tuple[list[str], str]], source: str) -> str:
    dests = [dest for sources, dest in copies if source in sources]
    assert len(dests) == 1, f"{source} must be copied into the image exactly once: {dests}"
    return dests[0]


def _dockerfile_copies() -> list[tuple[list[str], str]]:
    copies = []
    for instr, args in _dockerfile():
        if instr in ("COPY", "ADD"):
            assert instr == "COPY", "ADD can fetch URLs; use COPY"
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            copies.append((parts[:-1], parts[-1]))
    return copies


def test_dockerfile__pip_installs_only_the_lock_and_the_package():
    copies = _dockerfile_copies()
    lock_dest = _copy_dest(copies, "requirements.lock")
    pkg_dir = _copy_dest(copies, "pyproject.toml").rstrip("/")
    assert _copy_dest(copies, "src").rstrip("/") == f"{pkg_dir}/src"
    installs = _pip_installs(_commands(_recipe_shell("Dockerfile")))
    _check_pip_installs(installs, lock_dest=lock_dest, package_dest=pkg_dir)


def test_apptainer_def__pip_installs_only_the_lock_and_the_package():
    sec = _apptainer()
    files = {}
    for line in sec["files"]:
        src, dest = line.split()
        files[src] = dest
    pkg_dir = str(Path(files["pyproject.toml"]).parent)
    assert files["src"] == f"{pkg_dir}/src"
    installs = _pip_installs(_commands(_recipe_shell("apptainer.def")))
    _check_pip_installs(installs, lock_dest=files["requirements.lock"], package_dest=pkg_dir)


def _recipe_shell(recipe: str) -> str:
    """All shell code a recipe runs: the Dockerfile's RUN instructions, or apptainer.def's %post."""
    if recipe == "Dockerfile":
        return " ; ".join(args for instr, args in _dockerfile() if instr == "RUN")
    return "\n".join(_apptainer()["post"])


@pytest.mark.parametrize("recipe", ["Dockerfile", "apptainer.def"])
def test_recipe__installs_bash_and_procps_with_apt(recipe):
    apt = [argv for argv in _commands(_recipe_shell(recipe)) if argv[:2] == ["apt-get", "install"]]
    assert len(apt) == 1, f"{recipe}: one apt-get install expected, got {apt}"
    packages = {a for a in apt[0][2:] if not a.startswith("-")}
    assert {"bash", "procps"} <= packages, f"{recipe}: bash and procps (ps for Nextflow's trace) missing"


def _dockerfile_args() -> dict[str, str]:
    """Default values of the Dockerfile's ARGs (``""`` for an ARG without one)."""
    return dict((args.split("=", 1) + [""])[:2] for instr, args in _dockerfile() if instr == "ARG")


def test_recipes__same_python_base_image_as_the_lock():
    froms = [args for instr, args in _dockerfile() if instr == "FROM"]
    assert froms == ["${BASE_IMAGE}"], "one build stage, from the BASE_IMAGE argument"
    args = _dockerfile_args()
    header = dict(line.split(":", 1) for line in _apptainer()["header"])
    assert {k.strip().lower(): v.strip() for k, v in header.items()}["bootstrap"] == "docker"
    apptainer_from = {k.strip().lower(): v.strip() for k, v in header.items()}["from"]
    assert args["BASE_IMAGE"] == apptainer_from, "Dockerfile and apptainer.def must default to the same image"
    m = re.search(r"Python (\d+\.\d+)", (REPO / "requirements.lock").read_text())
    assert m, "requirements.lock should state the Python it was frozen with"
    assert args["BASE_IMAGE"].startswith(f"python:{m.group(1)}-"), f"base is not Python {m.group(1)}"
    # any other base (the local mmdebstrap one) is checked at build time against the same version
    assert args["PYTHON_MINOR"] == m.group(1)
    assert "sys.version_info[:2]" in _recipe_shell("Dockerfile") and "${PYTHON_MINOR}" in _recipe_shell("Dockerfile")


def test_dockerfile__pip_cache_stays_out_of_the_image_and_user_is_not_root():
    args = _dockerfile_args()
    assert args["PIP_CACHE_OPTION"] == "--no-cache-dir"
    assert args["PIP_CERT"] == "", "no CA bundle unless the build passes one"
    users = [a for instr, a in _dockerfile() if instr == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"
    # the lock is checked for completeness inside the image (--no-deps installs only its lines)
    assert ["pip", "check"] in _commands(_recipe_shell("Dockerfile"))


def test_recipes__version_label_is_the_package_version():
    version = _version()
    labels = " ".join(args for instr, args in _dockerfile() if instr == "LABEL")
    assert f'org.opencontainers.image.version="{version}"' in labels
    assert f"org.opencontainers.image.version {version}" in _apptainer()["labels"]
    # the image's self-test checks the installed package's version too
    assert any(f"== '{version}'" in line for line in _apptainer()["test"])


@pytest.mark.parametrize("config", ["docker.config", "podman.config"])
def test_profile__docker_image_is_the_one_built_from_this_checkout(config):
    text = (CONF / config).read_text()
    assert re.search(r'container_image\s*=\s*"annpal:\$\{annpal\.image_tag\}"', text), (
        f"{config}: params.container_image must default to the tag scripts/build-image.sh gives")
    assert re.search(r"^process\.container\s*=\s*params\.container_image", text, re.M)


@pytest.mark.parametrize("config", ["singularity.config", "apptainer.config"])
def test_profile__sif_name_carries_the_package_version(config):
    text = (CONF / config).read_text()
    m = re.search(r'sif\s*=\s*"([^"]+)"', text)
    assert m, f"{config}: params.sif default missing"
    assert Path(m.group(1)).name == f"annpal-{_version()}.sif"
    assert re.search(r"^process\.container\s*=\s*params\.sif", text, re.M)
    # the README's build command writes the file the profile looks for
    assert f"annpal-{_version()}.sif" in (CONTAINERS / "README.md").read_text()


def test_profile__gpu_passes_the_devices_into_each_container_engine():
    text = (CONF / "gpu.config").read_text()
    assert "'--nv'" in text and "'--gpus all'" in text and "'--device nvidia.com/gpu=all'" in text
    assert re.search(r"^params\s*\{[^}]*device\s*=\s*'cuda'", text, re.M | re.S)
    assert "withLabel:process_gpu'.accelerator = 1" in text


def test_lock__pins_every_dependency_of_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _lock()
    named = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        named += extra
    for spec in named:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"pyproject names {req.name} but requirements.lock does not pin it"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name]}, outside pyproject's {req.specifier}")


def test_dockerignore__keeps_every_copied_source_in_the_build_context():
    """BuildKit reads containers/Dockerfile.dockerignore; it must not filter out what the recipe COPYs
    (and should leave out .venv/.tools, which are gigabytes)."""
    patterns = [ln.strip() for ln in (CONTAINERS / "Dockerfile.dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    assert patterns[0] == "*", "exclude everything, then allow what is copied"
    allowed = {p[1:].split("/")[0] for p in patterns if p.startswith("!")}
    for sources, _ in _dockerfile_copies():
        for src in sources:
            assert src.split("/")[0] in allowed, f"{src} is COPYed but excluded by the .dockerignore"


def _image_tags(tree: Path) -> tuple[str, str]:
    """(the tag scripts/build-image.sh gives, the image -profile podman runs) for the checkout ``tree``."""
    script = subprocess.run([str(tree / "scripts" / "build-image.sh"), "--print-tag"], capture_output=True,
                            text=True, timeout=60, check=True).stdout.strip()
    config = subprocess.run([nextflow_bin(), "config", "-flat", "-profile", "podman", str(tree)],
                            env=nextflow_env(tree), capture_output=True, text=True, timeout=300)
    assert config.returncode == 0, config.stderr
    m = re.search(r"^process\.container = '([^']+)'", config.stdout, re.M)
    assert m, config.stdout
    return script, m.group(1)


@pytest.mark.pipeline
def test_image_tag__script_and_nextflow_config_agree_and_follow_the_code(tmp_path):
    """The image -profile docker/podman runs is the one build-image.sh made from the same code: both
    hash the same files the same way, a code change gives a new tag, byte code does not."""
    if nextflow_bin() is None:
        pytest.skip("Nextflow not installed (make setup)")
    tree = snapshot_checkout(tmp_path / "tree")
    script, config = _image_tags(tree)
    assert script == config
    assert re.fullmatch(rf"annpal:{re.escape(_version())}-[0-9a-f]{{12}}", script), script
    (tree / "src" / "annpal" / "__pycache__").mkdir(exist_ok=True)
    (tree / "src" / "annpal" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"not code")
    init = tree / "src" / "annpal" / "__init__.py"
    init.write_text(init.read_text() + "\n# a code change\n")
    changed_script, changed_config = _image_tags(tree)
    assert changed_script == changed_config != script
    init.write_text(init.read_text().replace("\n# a code change\n", ""))
    back = subprocess.run([str(tree / "scripts" / "build-image.sh"), "--print-tag"], capture_output=True,
                          text=True, timeout=60, check=True).stdout.strip()
    assert back == script, "byte code must not change the tag"

"""Plumbing shared by the ``bin/annpal-*`` executables: logging, error handling, atomic outputs.

No science lives here. Conventions (``docs/architecture.md``): ``--help`` shows defaults, ``-v/--verbose``,
logs go to stderr as ``[LEVEL] message``, bad data exits 1 with one clear line, usage errors exit 2
(Click's own), never 130-145; outputs are written under a temporary name and renamed when complete,
so a crashed or killed task never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from annpal.errors import InputError
from annpal.provenance import versions

log = logging.getLogger("annpal")

_VERSIONS_PROCESS_KEY = "annpal.versions_process"
CONTEXT_SETTINGS = {"show_default": True, "help_option_names": ["-h", "--help"], "max_content_width": 100}


def default_of(owner: Any, name: str) -> Any:
    """The library's default for option ``name``: a field of a config dataclass or a keyword of a function.

    Click options take their defaults from here, so a default is written once, in the library
    (nextflow.config and nextflow_schema.json are checked against the same values by a test).
    """
    if dataclasses.is_dataclass(owner):
        field = {f.name: f for f in dataclasses.fields(owner)}[name]
        if field.default is dataclasses.MISSING:
            raise ValueError(f"{owner.__name__}.{name} has no default")
        return field.default
    default = inspect.signature(owner).parameters[name].default
    if default is inspect.Parameter.empty:
        raise ValueError(f"{owner.__name__}({name}=...) has no default")
    return default


def setup_logging(verbose: int = 0) -> None:
    """Log to stderr as ``[LEVEL] message``; ``-v`` gives DEBUG."""
    level = logging.DEBUG if verbose > 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("matplotlib", "PIL", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def one_line(message: str) -> str:
    """Collapse a message to one line (the user sees exactly one line per error)."""
    return " ".join(str(message).split())


def command(**click_kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """Declare an annpal bin command: Click command with ``-v/--verbose`` and the error contract.

    ``InputError`` (bad data) becomes ``[ERROR] <message>`` and exit status 1. Other exceptions are not
    swallowed: they propagate with their traceback (exit status 1), because they are bugs.
    """

    def decorate(func: Callable[..., Any]) -> click.Command:
        @functools.wraps(func)
        def wrapper(*args: Any, verbose: int = 0, versions_process: str | None = None, **kwargs: Any) -> Any:
            setup_logging(verbose)
            click.get_current_context().meta[_VERSIONS_PROCESS_KEY] = versions_process
            try:
                return func(*args, **kwargs)
            except InputError as exc:
                click.echo(f"[ERROR] {one_line(str(exc))}", err=True)
                raise click.exceptions.Exit(1) from None

        wrapper = click.option("-v", "--verbose", count=True, help="More log output (DEBUG).")(wrapper)
        wrapper = click.option("--versions-process", default=None, metavar="NAME",
                               help="Key of the versions.yml entry (the pipeline passes its process name, "
                                    "${task.process}); default: the command's own step name.")(wrapper)
        return click.command(context_settings=CONTEXT_SETTINGS, **click_kwargs)(wrapper)

    return decorate


def _tmp_sibling(path: Path, *, directory: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds.

    With ``directory=True`` the temporary is a folder (write several files, publish them together).
    On any exception the temporary is removed and ``path`` is left as it was.
    """
    final = Path(path)
    tmp = _tmp_sibling(final, directory=directory)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        raise
    if directory and final.exists():
        shutil.rmtree(final)
    if not directory:
        os.chmod(tmp, 0o644)
    os.replace(tmp, final)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_tsv(path: str | os.PathLike[str], frame: Any, **to_csv_kwargs: Any) -> None:
    """Write a pandas DataFrame as TSV (no index), atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, **to_csv_kwargs)


def write_versions_yml(path: str | os.PathLike[str], process: str) -> None:
    """Write an nf-core style ``versions.yml`` (``"PROCESS":\\n  tool: version``), its one writer.

    The key is ``--versions-process`` when given (the pipeline passes ``${task.process}``), else
    ``process``, the step's own name; nothing rewrites the file afterwards.
    """
    ctx = click.get_current_context(silent=True)
    key = (ctx.meta.get(_VERSIONS_PROCESS_KEY) if ctx is not None else None) or process
    lines = [f'"{key}":'] + [f"  {k}: {v}" for k, v in versions().items()]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")

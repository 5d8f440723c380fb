"""Imported first by every ``bin/annpal-*`` command: outside the project's environment, one line saying what to do.

Without it a task run by a Python that lacks annpal (or click, numpy, ...) ends in a bare
``ModuleNotFoundError`` traceback. Python puts this folder first on ``sys.path`` when it runs a
script from it, so the import works however the command was found (Nextflow's PATH, a relative path).
"""

import sys

try:
    import click  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    import annpal  # noqa: F401
except ModuleNotFoundError as exc:
    sys.stderr.write(
        f"[ERROR] Python module {exc.name!r} is not installed for {sys.executable}: run the pipeline with a "
        "container profile (-profile docker, podman, singularity or apptainer), or set up and activate the "
        "project's environment (make setup, then source .venv/bin/activate)\n"
    )
    raise SystemExit(1) from None

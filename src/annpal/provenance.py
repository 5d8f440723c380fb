"""Versions and provenance recorded in every output (``versions.yml``, ``*.json``)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

_PACKAGES = ("torch", "captum", "numpy", "scipy", "pandas", "bed-reader", "matplotlib")


def versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    """Return ``{name: version}`` for annpal, Python and the given installed packages.

    Packages that are not installed are reported as ``"not installed"`` rather than failing. Inside
    the annpal container image (containers/Dockerfile) the image's tag is reported too, as ``image``.
    """
    import annpal

    out = {"annpal": annpal.__version__, "python": platform.python_version()}
    if os.environ.get("ANNPAL_IMAGE"):
        out["image"] = os.environ["ANNPAL_IMAGE"]
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def command_line() -> str:
    """The command line of this process, for provenance records."""
    return " ".join(sys.argv)

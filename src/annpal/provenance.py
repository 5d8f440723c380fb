"""Versions and provenance recorded in every output (``versions.yml``, ``*.json``)."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

_PACKAGES = ("torch", "captum", "numpy", "scipy", "pandas", "bed-reader", "statsmodels", "matplotlib")


def versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    """Return ``{name: version}`` for annpal, Python and the given installed packages.

    Packages that are not installed are reported as ``"not installed"`` rather than failing.
    """
    import annpal

    out = {"annpal": annpal.__version__, "python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def command_line() -> str:
    """The command line of this process, for provenance records."""
    return " ".join(sys.argv)

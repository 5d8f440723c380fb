"""Errors that end a run with one clear line for the user."""

from __future__ import annotations


class InputError(Exception):
    """Bad input data or parameters.

    The message is shown to the user as a single line, so it must name the offending file or
    parameter *and* say how to fix it, e.g.
    ``"cohort.fam: 12 lines but cohort.bed holds 10 samples; regenerate the fileset with plink --make-bed"``.
    Bin commands turn it into ``[ERROR] <message>`` on stderr and exit status 1.
    """

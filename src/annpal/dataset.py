"""From a PLINK file set and a phenotype to the prepared dataset (docs/method.md §1).

Phenotype parsing (fam or TSV, 1/2 or 0/1 coding detected), sample intersection, chromosome selection
and ordering, QC (monomorphic SNPs, SNP and sample missing rates, MAF), the −1/0/1 int8 matrix with
missing calls → 0, the validation split, and the class balancing of the training set.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from annpal.errors import InputError
from annpal.genome import chromosome_rank, is_autosome
from annpal.io.blocks import GenotypeBlockStats, GenotypeSource, stream_genotypes
from annpal.io.plink import make_unique_ids, open_bfile
from annpal.prepared import PreparedDataset, create_genotypes_npy, shrink_genotypes_npy

log = logging.getLogger(__name__)

#: Trait types (``--trait-type``): case/control or quantitative; never guessed from the values.
TRAIT_TYPES = ("binary", "quantitative")
#: Tokens read as a missing phenotype in the fam or a phenotype TSV (0 too, under 1/2 coding).
MISSING_TOKENS = frozenset({"-9", "-9.0", "na", "nan", "", ".", "none", "null"})
#: Paper's validation set (docs/method.md §1): 150 cases and 150 controls.
DEFAULT_VAL_PER_CLASS = 150
#: Fewest training samples per class annpal accepts without ``--allow-few-samples`` (docs/usage.md).
#: A judgement, not a number from the paper (which trained on 1 664 cases and 7 175 controls): with
#: fewer than 50 samples of a class, a network with thousands of inputs fits the labels of the
#: training rows by chance, so its attributions, PAL and P-values carry no information about the trait.
MIN_TRAIN_PER_CLASS = 50


@dataclass(frozen=True)
class QCOptions:
    """QC thresholds (docs/method.md §1): all off by default except removal of monomorphic SNPs.

    Attributes
    ----------
    max_snp_missing
        Remove SNPs whose missing-call rate exceeds this (``None``: off).
    min_maf
        Remove SNPs whose minor allele frequency is below this (``None``: off).
    max_sample_missing
        Remove samples whose missing-call rate exceeds this (``None``: off); applied first, as PLINK
        applies ``--mind`` before ``--geno``/``--maf``.
    remove_monomorphic
        Remove SNPs without variation among called genotypes (MAF 0, all heterozygous, or no calls).
    keep_non_autosomal
        Keep X, Y, XY, MT and other non-autosomal contigs (dropped and counted otherwise).
    """

    max_snp_missing: float | None = None
    min_maf: float | None = None
    max_sample_missing: float | None = None
    remove_monomorphic: bool = True
    keep_non_autosomal: bool = False


# --------------------------------------------------------------------------------------------------
# Phenotype
# --------------------------------------------------------------------------------------------------

def parse_binary_phenotype(values: pd.Series, *, source: str) -> tuple[np.ndarray, str, int]:
    """Case/control labels from PLINK 1/2 or 0/1 coded text (docs/method.md §1).

    Coding is detected from the non-missing values: any ``2`` means PLINK 1/2 coding (1 = control,
    2 = case, 0 and −9 missing); values only in {0, 1} mean 0/1 coding (0 = control, 1 = case,
    −9 missing). ``NA``, ``nan``, ``.`` and empty are missing under both.

    Returns
    -------
    labels, coding, n_zero_as_missing
        float64 labels (1 case, 0 control, NaN missing), ``"1/2"`` or ``"0/1"``, and how many zeros
        were read as missing under 1/2 coding.

    Raises
    ------
    InputError
        Values other than these (a quantitative trait, text labels).
    """
    text = values.astype(str).str.strip()
    missing = text.str.lower().isin(MISSING_TOKENS).to_numpy()
    numeric = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~missing & ~np.isin(numeric, [0.0, 1.0, 2.0])
    if bad.any():
        examples = ", ".join(repr(v) for v in pd.unique(text[bad])[:3])
        raise InputError(
            f"{source}: non-binary phenotype values ({examples}); for a quantitative trait pass --trait-type "
            f"quantitative, else recode the trait as 0/1 (control/case) or PLINK 1/2, with -9 or NA for missing"
        )
    present = set(numeric[~missing].tolist())
    labels = np.full(len(text), np.nan)
    n_zero_missing = 0
    if 2.0 in present:
        coding = "1/2"
        labels[numeric == 1.0] = 0.0
        labels[numeric == 2.0] = 1.0
        n_zero_missing = int(np.sum(numeric == 0.0))
        if n_zero_missing:
            log.info("%s: 1/2 coding; %d values of 0 read as missing (PLINK convention)", source, n_zero_missing)
    else:
        coding = "0/1"
        labels[numeric == 0.0] = 0.0
        labels[numeric == 1.0] = 1.0
    return labels, coding, n_zero_missing


def parse_quantitative_phenotype(values: pd.Series, *, source: str) -> np.ndarray:
    """Trait values of a quantitative phenotype (``--trait-type quantitative``; docs/method.md §1).

    Every non-missing value must be a finite number. ``-9`` is read as missing, as PLINK does for
    quantitative phenotypes too (with ``NA``, ``nan``, ``.`` and empty). A trait that looks binary (only
    values from {0, 1, 2}: both case/control codings) or has fewer than 3 distinct values is refused
    rather than guessed: the user says which it is.

    Returns
    -------
    numpy.ndarray
        float64 values, NaN where missing.

    Raises
    ------
    InputError
        Text or non-finite values, a binary-looking trait, or fewer than 3 distinct values.
    """
    text = values.astype(str).str.strip()
    missing = text.str.lower().isin(MISSING_TOKENS).to_numpy()
    numeric = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~missing & ~np.isfinite(numeric)
    if bad.any():
        examples = ", ".join(repr(v) for v in pd.unique(text[bad])[:3])
        raise InputError(f"{source}: non-numeric phenotype values ({examples}); a quantitative trait needs "
                         f"numbers, with -9 or NA for missing")
    present = np.unique(numeric[~missing])
    if present.size and np.isin(present, [0.0, 1.0, 2.0]).all():
        raise InputError(
            f"{source}: only the values {', '.join(f'{v:g}' for v in present)}, a case/control coding; pass "
            f"--trait-type binary (a quantitative trait coded only with 0/1/2 is refused as ambiguous)")
    if present.size < 3:
        raise InputError(f"{source}: {present.size} distinct phenotype values; a quantitative trait needs at "
                         f"least 3 (for a case/control trait pass --trait-type binary)")
    return np.where(missing, np.nan, numeric)


def parse_phenotype(values: pd.Series, *, source: str, trait_type: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Phenotype values of ``trait_type`` (:data:`TRAIT_TYPES`) and what ``qc.json`` records about them.

    Raises
    ------
    InputError
        An unknown trait type, or values that do not fit it (the message names the option to pass).
    """
    if trait_type == "binary":
        labels, coding, zeros = parse_binary_phenotype(values, source=source)
        return labels, {"trait_type": trait_type, "coding": coding, "n_zero_read_as_missing": zeros}
    if trait_type == "quantitative":
        return parse_quantitative_phenotype(values, source=source), {"trait_type": trait_type, "coding": "numeric"}
    raise InputError(f"--trait-type {trait_type}: unknown; use one of {', '.join(TRAIT_TYPES)}")


def _read_pheno_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: cannot be parsed ({' '.join(str(exc).split())[:100]}); it needs whitespace-separated "
            f"columns FID IID <trait> with the same number of fields on every line"
        ) from None
    if raw.shape[1] < 3:
        raise InputError(f"{path}: {raw.shape[1]} columns; a phenotype file needs FID IID <trait> (3 or more)")
    first = raw.iloc[0].str.lstrip("#").str.upper()
    if first.iloc[0] == "FID" and first.iloc[1] == "IID":
        columns = ["FID", "IID"] + raw.iloc[0, 2:].tolist()
        raw = raw.iloc[1:].reset_index(drop=True)
    else:  # headerless PLINK style: FID IID P1 P2 ...
        columns = ["FID", "IID"] + [f"P{k}" for k in range(1, raw.shape[1] - 1)]
    raw.columns = columns
    return raw


def _fam_phenotype(fam: pd.DataFrame, *, fam_path: str | os.PathLike[str], trait_type: str
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """The phenotype of the .fam's column 6 (:func:`load_phenotype` without a phenotype file)."""
    labels, parsed = parse_phenotype(fam["PHENO"], source=f"{fam_path} (column 6)", trait_type=trait_type)
    info = {"source": "fam", "column": "PHENO", **parsed}
    if np.isnan(labels).all():
        raise InputError(
            f"{fam_path}: no {'case/control' if trait_type == 'binary' else 'quantitative'} phenotype in "
            f"column 6 (all missing); give one with "
            f"--pheno FILE.tsv (columns FID IID <trait>), e.g. from annpal-simulate"
        )
    return labels, info


def load_phenotype(
    fam: pd.DataFrame,
    *,
    fam_path: str | os.PathLike[str] = "fam",
    pheno_path: str | os.PathLike[str] | None = None,
    pheno_col: str | None = None,
    trait_type: str = "binary",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Labels for every .fam row (NaN where missing or absent) from the fam or a phenotype TSV.

    ``trait_type`` (:data:`TRAIT_TYPES`) says how the values are read (:func:`parse_phenotype`): 0/1 or
    1/2 case/control labels, or the numbers of a quantitative trait.

    A TSV has columns ``FID IID <trait> ...`` with a header (``FID IID`` first) or, PLINK style,
    without one (columns then named ``P1 P2 ...``). Samples are matched on the (FID, IID) pair.

    Returns
    -------
    labels, info
        float64 labels aligned with ``fam`` and a dict of counts for ``qc.json`` (no IDs).

    Raises
    ------
    InputError
        Unknown column, duplicated IDs, no overlap with the fam, or non-binary values.
    """
    # A repeated (FID, IID) in the .fam would silently give two samples the same phenotype row
    # (PLINK itself refuses such a file set).
    fam_dup = (fam["FID"] + "\t" + fam["IID"]).duplicated()
    if fam_dup.any():
        raise InputError(
            f"{fam_path}: {int(fam_dup.sum())} duplicated (FID, IID) pairs; give every sample a unique ID "
            f"(e.g. plink --bfile PREFIX --remove dups.txt --make-bed)"
        )
    if pheno_path is None:
        return _fam_phenotype(fam, fam_path=fam_path, trait_type=trait_type)
    table = _read_pheno_table(pheno_path)
    traits = [c for c in table.columns[2:]]
    if pheno_col is None:
        if len(traits) != 1:
            raise InputError(
                f"{pheno_path}: {len(traits)} trait columns ({', '.join(traits[:5])}); choose one with --pheno-col"
            )
        pheno_col = traits[0]
    elif pheno_col not in traits:
        raise InputError(
            f"{pheno_path}: no column {pheno_col!r} (columns: {', '.join(traits[:10])}); fix --pheno-col"
        )
    key = table["FID"] + "\t" + table["IID"]
    if key.duplicated().any():
        raise InputError(
            f"{pheno_path}: {int(key.duplicated().sum())} duplicated (FID, IID) pairs; keep one line per sample"
        )
    fam_key = fam["FID"] + "\t" + fam["IID"]
    in_fam = key.isin(set(fam_key))
    if not in_fam.any():
        iid_overlap = int(table["IID"].isin(set(fam["IID"])).sum())
        hint = (f" ({iid_overlap} IIDs match but their FIDs differ; make the FID column match the fam)"
                if iid_overlap else "")
        raise InputError(
            f"{pheno_path}: none of its {len(table)} (FID, IID) pairs is in {fam_path}{hint}; "
            f"the first two columns must be the fam's FID and IID"
        )
    values, parsed = parse_phenotype(table[pheno_col], source=f"{pheno_path} column {pheno_col}",
                                     trait_type=trait_type)
    lookup = pd.Series(values, index=key.to_numpy())
    labels = fam_key.map(lookup).to_numpy(dtype=np.float64)
    info = {
        "source": "tsv", "file": os.path.basename(str(pheno_path)), "column": pheno_col, **parsed,
        "n_pheno_rows": len(table),
        "n_fam_samples_without_pheno_row": int((~fam_key.isin(set(key))).sum()),
        "n_pheno_rows_not_in_fam": int((~in_fam).sum()),
    }
    if info["n_pheno_rows_not_in_fam"] or info["n_fam_samples_without_pheno_row"]:
        log.warning("%s: %d of its samples are not in %s; %d fam samples have no phenotype row",
                    pheno_path, info["n_pheno_rows_not_in_fam"], fam_path,
                    info["n_fam_samples_without_pheno_row"])
    return labels, info


def check_both_classes(labels: np.ndarray, *, source: str) -> None:
    """Raise when cases or controls are absent (docs/method.md §1: both classes must be present)."""
    n_cases, n_controls = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    if n_cases == 0 or n_controls == 0:
        raise InputError(
            f"{source}: only one class ({n_cases} cases, {n_controls} controls among samples with a "
            f"phenotype); a case/control trait needs both, check the phenotype coding or column"
        )


def check_trait_values(labels: np.ndarray, *, source: str, trait_type: str) -> None:
    """Binary: both classes present (:func:`check_both_classes`); quantitative: the values vary."""
    if trait_type != "quantitative":
        check_both_classes(labels, source=source)
    elif np.unique(labels).size < 2:
        raise InputError(f"{source}: the quantitative trait has a single value among samples with a phenotype; "
                         f"check the phenotype column")


def trait_summary(labels: np.ndarray, *, trait_type: str) -> dict[str, Any]:
    """Counts for ``qc.json``: cases and controls, or the mean, SD, minimum and maximum of the trait."""
    labels = np.asarray(labels)
    out: dict[str, Any] = {"n_kept": int(labels.size)}
    if trait_type == "quantitative":
        out.update(trait_mean=float(labels.mean()), trait_sd=float(labels.std(ddof=1)) if labels.size > 1 else 0.0,
                   trait_min=float(labels.min()), trait_max=float(labels.max()))
    else:
        out.update(n_cases=int((labels == 1).sum()), n_controls=int((labels == 0).sum()))
    return out


def check_training_size(split_info: dict[str, Any], *, minimum: int, allow_few: bool = False,
                        source: str) -> None:
    """Refuse fewer than ``minimum`` training samples of either class (:data:`MIN_TRAIN_PER_CLASS`).

    ``split_info`` is the info of :func:`validation_split`, or of :func:`random_validation_split` for a
    quantitative trait (then at least ``2 · minimum`` training samples). With ``allow_few``
    (``--allow-few-samples``) a shortfall is only logged as a warning.

    Raises
    ------
    InputError
        A class has fewer than ``minimum`` training samples and ``allow_few`` is not set.
    """
    if "n_train_samples" in split_info:  # quantitative trait: one group, twice the per-class minimum
        groups = [("samples", "--val-cases + --val-controls", 2 * minimum, f"{2 * minimum} samples")]
    else:
        groups = [(name, option, minimum, f"{minimum} of each class")
                  for name, option in (("cases", "--val-cases"), ("controls", "--val-controls"))]
    for name, option, least, need in groups:
        n_train, n_val = split_info[f"n_train_{name}"], split_info[f"n_val_{name}"]
        if n_train >= least:
            continue
        if allow_few:
            log.warning("only %d training %s (minimum %d), accepted because of --allow-few-samples: PAL and "
                        "P-values from so few samples are not evidence of association", n_train, name, least)
            continue
        total = n_train + n_val
        fix = (f"lower {option} to {total - least} or less, add samples" if total > least else "add samples")
        raise InputError(
            f"{source}: {n_train} training {name} after holding out {n_val} for validation; annpal needs at "
            f"least {need} to train networks whose attributions mean anything; {fix}, or "
            f"pass --allow-few-samples (expert override)"
        )


def random_validation_split(n_samples: int, *, n_val: int, seed: int, strict: bool = False, warn: bool = True
                            ) -> tuple[np.ndarray, dict[str, Any]]:
    """Seeded validation set of a quantitative trait: ``n_val`` samples drawn at random (docs/method.md §1).

    A quantitative trait has no classes to stratify on; the pipeline asks for ``--val-cases +
    --val-controls`` samples (the paper's 300). At most half the samples (rounded down) are taken; a
    larger request is capped with a warning, or refused when ``strict``.

    Returns
    -------
    is_val, info
        Boolean mask of validation samples and a dict with requested and used counts
        (``n_val_samples``, ``n_train_samples``).

    Raises
    ------
    InputError
        Fewer than 2 samples, ``n_val`` below 1, or a strict request above the cap.
    """
    option = "--val-cases + --val-controls"
    cap = n_samples // 2
    if n_val < 1:
        raise InputError(f"{option} {n_val}: the validation set needs at least 1 sample; use 1 or more")
    if cap < 1:
        raise InputError(f"too few samples for a validation split ({n_samples}); at least 2 are needed, add samples")
    if n_val > cap:
        if strict:
            raise InputError(f"{option} {n_val}: too few samples for the validation split, the data have "
                             f"{n_samples} and at least half must stay in training; lower the sum to {cap} or less")
        if warn:
            log.warning("validation samples capped at %d (asked %d; %d samples, half stay in training)",
                        cap, n_val, n_samples)
    used = min(n_val, cap)
    is_val = np.zeros(n_samples, dtype=bool)
    is_val[np.random.default_rng(seed).permutation(n_samples)[:used]] = True
    info = {"seed": seed, "n_val_samples_requested": int(n_val), "n_val_samples": int(used),
            "n_train_samples": int(n_samples - used), "capped": bool(used < n_val)}
    return is_val, info


def split_samples(labels: np.ndarray, *, trait_type: str, n_val_cases: int, n_val_controls: int, seed: int,
                  strict: tuple[bool, bool] = (False, False), warn: bool = True
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    """The validation split of ``trait_type``: :func:`validation_split` per class for a binary trait,
    :func:`random_validation_split` of ``n_val_cases + n_val_controls`` samples for a quantitative one."""
    if trait_type == "quantitative":
        return random_validation_split(len(labels), n_val=n_val_cases + n_val_controls, seed=seed,
                                       strict=any(strict), warn=warn)
    return validation_split(labels, n_val_cases=n_val_cases, n_val_controls=n_val_controls, seed=seed,
                            strict=strict, warn=warn)


# --------------------------------------------------------------------------------------------------
# Validation split and class balancing
# --------------------------------------------------------------------------------------------------

def validation_split(
    labels: np.ndarray,
    *,
    n_val_cases: int = DEFAULT_VAL_PER_CLASS,
    n_val_controls: int = DEFAULT_VAL_PER_CLASS,
    seed: int,
    strict: tuple[bool, bool] = (False, False),
    warn: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Seeded validation set of cases and controls (docs/method.md §1; paper: 150 + 150).

    Each class gives at most half of its samples (rounded down), so at least half stays in training;
    larger requests are capped with a warning, or refused when ``strict`` is set for that class (the
    user asked for that number explicitly).

    Parameters
    ----------
    labels
        0/1 per sample.
    n_val_cases, n_val_controls
        Requested validation cases and controls.
    seed
        Split seed; the same labels and seed give the same split.
    strict
        ``(cases, controls)``: raise instead of capping.
    warn
        Log a warning when a request is capped.

    Returns
    -------
    is_val, info
        Boolean mask of validation samples and a dict with requested and used counts.

    Raises
    ------
    InputError
        Fewer than 2 samples in a class, or a strict request above the cap.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(labels), dtype=bool)
    info: dict[str, Any] = {"seed": seed}
    for cls, name, option, requested, is_strict in (
        (1, "cases", "--val-cases", n_val_cases, strict[0]),
        (0, "controls", "--val-controls", n_val_controls, strict[1]),
    ):
        members = np.flatnonzero(labels == cls)
        cap = len(members) // 2
        if requested < 1:
            raise InputError(f"{option} {requested}: the validation set needs at least 1 of the {name}; use 1 or more")
        if cap < 1:
            raise InputError(
                f"too few {name} for a validation split ({len(members)}); at least 2 are needed "
                f"(one for training, one for validation), add samples or check the phenotype"
            )
        if requested > cap:
            if is_strict:
                raise InputError(
                    f"{option} {requested}: too few samples for the validation split, the data have "
                    f"{len(members)} {name} and at least half must stay in training; lower it to "
                    f"{option} {cap} or less"
                )
            if warn:
                log.warning("validation %s capped at %d (asked %d; %d %s, half stay in training)",
                            name, cap, requested, len(members), name)
        used = min(requested, cap)
        is_val[rng.permutation(members)[:used]] = True
        info[f"n_val_{name}_requested"] = int(requested)
        info[f"n_val_{name}"] = int(used)
        info[f"n_train_{name}"] = int(len(members) - used)
    info["capped"] = bool(info["n_val_cases"] < n_val_cases or info["n_val_controls"] < n_val_controls)
    return is_val, info


#: Class-balancing rules for the training rows (``--balance``).
BALANCE_RULES = ("auto", "paper", "equal", "none")
#: ``auto`` keeps the paper's rule when it gives a case share inside this closed interval.
AUTO_CASE_SHARE = (0.4, 0.6)


def _paper_index(cases: np.ndarray, controls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's rule: every case twice and a seeded half of the controls (at least one kept)."""
    n_keep = max(1, len(controls) // 2) if len(controls) else 0
    kept = rng.choice(controls, size=n_keep, replace=False) if n_keep else controls
    return np.concatenate([cases, cases, kept])


def _equal_index(cases: np.ndarray, controls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Equal classes: each class gets ``T = min(2·minority, majority)`` rows.

    The majority class is subsampled to ``T`` without replacement; the minority class is taken once and
    a seeded ``T − minority`` of its samples a second time. When the majority is at least twice the
    minority this is "minority twice, majority subsampled to match"; when the classes are already
    equal nothing is duplicated or dropped.
    """
    minority, majority = (cases, controls) if len(cases) <= len(controls) else (controls, cases)
    target = min(2 * len(minority), len(majority))
    extra = rng.choice(minority, size=target - len(minority), replace=False)
    kept = rng.choice(majority, size=target, replace=False)
    return np.concatenate([minority, extra, kept])


def paper_case_share(n_cases: int, n_controls: int) -> float:
    """Share of cases in the paper's balanced set: ``2·cases / (2·cases + max(1, controls // 2))``."""
    n_kept = max(1, n_controls // 2) if n_controls else 0
    return 2 * n_cases / (2 * n_cases + n_kept)


def resolve_balance_rule(rule: str, n_cases: int, n_controls: int) -> str:
    """The rule actually applied: ``auto`` becomes ``paper`` when that gives 40–60 % cases, else ``equal``.

    Raises
    ------
    InputError
        An unknown rule.
    """
    if rule not in BALANCE_RULES:
        raise InputError(f"--balance {rule}: unknown rule; use one of {', '.join(BALANCE_RULES)}")
    if rule != "auto":
        return rule
    low, high = AUTO_CASE_SHARE
    return "paper" if low <= paper_case_share(n_cases, n_controls) <= high else "equal"


def balanced_training_index(labels: np.ndarray, *, seed: int, rule: str = "paper") -> np.ndarray:
    """Row indices of the class-balanced training set, sorted (a duplicated row appears twice).

    Rules (``--balance``):

    * ``paper``: the paper's balancing (Materials and methods, "Neural network model"): every case
      twice and a seeded half of the controls (half rounded down, at least one kept). It balances only
      near the paper's prevalence (1 814 cases among 9 139 samples: 48 % cases after the 150 + 150
      validation split); with 1 000 cases among 3 000 samples it trains on 65 % cases.
    * ``equal``: both classes the same size (see :func:`_equal_index`), seeded.
    * ``auto``: ``paper`` when it yields 40–60 % cases, ``equal`` otherwise
      (:func:`resolve_balance_rule`).
    * ``none``: every training row once.

    Parameters
    ----------
    labels
        0/1 label of each training row.
    seed
        The model seed (a different subsample per model).
    rule
        One of :data:`BALANCE_RULES`.

    Returns
    -------
    numpy.ndarray
        int64 indices into ``labels``.

    Raises
    ------
    InputError
        An unknown rule.
    """
    labels = np.asarray(labels)
    cases = np.flatnonzero(labels == 1)
    controls = np.flatnonzero(labels == 0)
    used = resolve_balance_rule(rule, len(cases), len(controls))
    rng = np.random.default_rng(seed)
    if used == "none":
        index = np.concatenate([cases, controls])
    elif used == "paper" or not len(cases) or not len(controls):
        index = _paper_index(cases, controls, rng)
    else:
        index = _equal_index(cases, controls, rng)
    return np.sort(index).astype(np.int64)


def balance_summary(labels: np.ndarray, index: np.ndarray, *, rule: str) -> dict[str, Any]:
    """Class counts and case shares before and after balancing, for ``train.json``.

    ``rule`` is the requested rule; ``rule_used`` what ``auto`` resolved to.
    """
    labels = np.asarray(labels)
    n_cases, n_controls = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    after = labels[np.asarray(index)]
    n_cases_after, n_controls_after = int(np.sum(after == 1)), int(np.sum(after == 0))
    share = lambda a, b: a / (a + b) if a + b else float("nan")  # noqa: E731
    return {
        "rule": rule, "rule_used": resolve_balance_rule(rule, n_cases, n_controls),
        "before": {"n_cases": n_cases, "n_controls": n_controls, "case_share": share(n_cases, n_controls)},
        "after": {"n_cases": n_cases_after, "n_controls": n_controls_after,
                  "case_share": share(n_cases_after, n_controls_after)},
    }


# --------------------------------------------------------------------------------------------------
# Variants and QC
# --------------------------------------------------------------------------------------------------

def select_variants(bim: pd.DataFrame, *, keep_non_autosomal: bool, bim_path: str = "bim"
                    ) -> tuple[np.ndarray, pd.DataFrame, dict[str, Any]]:
    """Choose and order the SNPs to read: autosomes (unless asked), sorted by chromosome and position.

    Returns the .bim row indices in output order, the matching variant table (with unique IDs) and
    counts for ``qc.json``.
    """
    auto = is_autosome(bim["CHR"])
    info: dict[str, Any] = {}
    if keep_non_autosomal:
        keep = np.ones(len(bim), dtype=bool)
        info["non_autosomal_kept"] = int((~auto).sum())
    else:
        keep = auto
        dropped = bim.loc[~auto, "CHR"].value_counts().sort_index()
        info["non_autosomal_dropped"] = {str(k): int(v) for k, v in dropped.items()}
        if len(dropped):
            log.warning("%s: %d non-autosomal SNPs dropped (%s); keep them with --keep-non-autosomal",
                        bim_path, int(dropped.sum()), ", ".join(f"{k}: {v}" for k, v in dropped.items()))
    index = np.flatnonzero(keep)
    sub = bim.iloc[index]
    order = np.lexsort((sub["BP"].to_numpy(), chromosome_rank(sub["CHR"])))
    info["reordered"] = bool(np.any(order != np.arange(len(order))))
    index = index[order]
    variants = bim.iloc[index].reset_index(drop=True)
    ids, n_filled, n_dup = make_unique_ids(variants["SNP"], variants["CHR"], variants["BP"])
    if n_dup:
        log.warning("%s: %d duplicate SNP IDs made unique with a _dupN suffix", bim_path, n_dup)
    variants["SNP"] = ids.to_numpy()
    info["missing_ids_filled"] = n_filled
    info["duplicate_ids_renamed"] = n_dup
    return index, variants, info


def snp_statistics(snp_missing: np.ndarray, snp_sum: np.ndarray, snp_hom: np.ndarray, *, n_samples: int
                   ) -> dict[str, np.ndarray]:
    """Missing rate, A1 frequency, MAF and monomorphic flag from the integer block statistics.

    ``snp_sum`` is the sum of (A1 count − 1) over called genotypes, so A1 count = sum + called.
    """
    called = n_samples - snp_missing
    with np.errstate(invalid="ignore", divide="ignore"):
        af = (snp_sum + called) / (2.0 * called)
    af = np.where(called > 0, af, np.nan)
    maf = np.minimum(af, 1.0 - af)
    monomorphic = (called == 0) | (maf == 0) | (snp_hom == 0)
    return {"missing_rate": snp_missing / max(n_samples, 1), "a1_freq": af, "maf": np.nan_to_num(maf),
            "monomorphic": monomorphic}


def _compact_in_place(g: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, block_rows: int = 64) -> np.ndarray:
    """``g[rows][:, cols]`` as a C-contiguous view on ``g``'s own buffer (no second matrix).

    Rows and columns are increasing, so kept row ``i`` (source row ``rows[i] ≥ i``) is written to
    ``[i·k, (i+1)·k)`` of the flat buffer, which never reaches a source row not yet copied.
    """
    n, m = g.shape
    if len(rows) == n and len(cols) == m:
        return g
    k = len(cols)
    flat = g.reshape(-1)
    for a in range(0, len(rows), block_rows):
        b = min(a + block_rows, len(rows))
        flat[a * k:b * k] = g[np.ix_(rows[a:b], cols)].reshape(-1)
    return flat[: len(rows) * k].reshape(len(rows), k)


def adopt_family_ids(samples: pd.DataFrame, pheno_path: str | os.PathLike[str], *, genotype_file: str
                     ) -> pd.DataFrame:
    """FIDs for a genotype input with single sample IDs (VCF, BGEN without .sample), from the phenotype file.

    Those IDs are IIDs; each sample takes the FID of the phenotype row with its IID (its own IID when it
    has no row), so the (FID, IID) matching of :func:`load_phenotype` then works as for a .fam.

    Raises
    ------
    InputError
        An IID repeated in the phenotype file, or no IID in common with the genotype input.
    """
    table = _read_pheno_table(pheno_path)
    dup = table["IID"].duplicated()
    if dup.any():
        raise InputError(
            f"{pheno_path}: IID {table['IID'][dup].iloc[0]} is on {int(table['IID'].eq(table['IID'][dup].iloc[0]).sum())} "
            f"lines; {genotype_file} has single sample IDs, matched on IID alone, so keep one line per IID")
    fid = samples["IID"].map(pd.Series(table["FID"].to_numpy(), index=table["IID"].to_numpy()))
    if fid.isna().all():
        raise InputError(
            f"{pheno_path}: none of its {len(table)} IIDs is a sample of {genotype_file} (e.g. "
            f"{table['IID'].iloc[0]!r} vs {samples['IID'].iloc[0]!r}); the IID column must hold the sample IDs "
            f"of the genotype file")
    return samples.assign(FID=fid.fillna(samples["IID"]).to_numpy())


def _phenotype_of(source: GenotypeSource, pheno: str | os.PathLike[str] | None, pheno_col: str | None,
                  trait_type: str) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any], str]:
    """Samples (with FIDs), labels for every sample, phenotype counts, and the name used in messages."""
    samples = source.samples
    if pheno is None and samples["PHENO"].isna().all():
        why = {"pfile": "no PHENO1 column", "bgen": "no phenotype is read from BGEN or .sample files"}
        raise InputError(
            f"{source.sample_file}: {why.get(source.format, 'a VCF carries no phenotype')}; give the "
            f"trait with --pheno FILE.tsv (columns FID IID <trait>)")
    if pheno is not None and not source.has_family_ids:
        samples = adopt_family_ids(samples, pheno, genotype_file=str(source.path))
    labels_all, info = load_phenotype(samples, fam_path=source.sample_file, pheno_path=pheno, pheno_col=pheno_col,
                                      trait_type=trait_type)
    return samples, labels_all, info, str(pheno if pheno is not None else source.sample_file)


def _sample_qc(source: GenotypeSource, qc: QCOptions, stats: GenotypeBlockStats, sample_rows: np.ndarray,
               snp_rows: np.ndarray, labels: np.ndarray, name: str, trait_type: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """Samples kept by ``--max-sample-missing``; the SNP statistics are corrected in place to the kept ones."""
    keep = np.ones(len(sample_rows), dtype=bool)
    if qc.max_sample_missing is not None:
        keep = stats.sample_missing / len(snp_rows) <= qc.max_sample_missing
    if keep.all():
        return keep, labels
    # SNP statistics must describe the samples kept: subtract the removed samples' share, read again
    # from the input (the matrix no longer tells a missing call from a heterozygote).
    _, removed = stream_genotypes(source, sample_index=sample_rows[~keep], snp_index=snp_rows)
    stats.snp_missing -= removed.snp_missing
    stats.snp_sum -= removed.snp_sum
    stats.snp_hom -= removed.snp_hom
    log.info("%d samples removed for missing rate > %g", int((~keep).sum()), qc.max_sample_missing)
    labels = labels[keep]
    if not len(labels):
        raise InputError(f"--max-sample-missing {qc.max_sample_missing}: removes every sample; raise it")
    check_trait_values(labels, source=f"{name} after --max-sample-missing", trait_type=trait_type)
    return keep, labels


def _snp_qc(qc: QCOptions, snp: dict[str, np.ndarray], *, variant_file: str) -> tuple[np.ndarray, dict[str, int]]:
    """SNPs kept by the missing-rate, MAF and monomorphic filters (in that order, each counted)."""
    keep = np.ones(len(snp["maf"]), dtype=bool)
    removed: dict[str, int] = {}
    for reason, active, fail in (
        ("snp_missing_rate", qc.max_snp_missing is not None,
         lambda: snp["missing_rate"] > qc.max_snp_missing),
        ("maf", qc.min_maf is not None and qc.min_maf > 0, lambda: snp["maf"] < qc.min_maf),
        ("monomorphic", qc.remove_monomorphic, lambda: snp["monomorphic"]),
    ):
        if active:
            failed = keep & fail()
            removed[reason] = int(failed.sum())
            keep &= ~failed
    if keep.sum() < 2:
        raise InputError(
            f"{variant_file}: {int(keep.sum())} SNPs left after QC (removed: "
            f"{', '.join(f'{k} {v}' for k, v in removed.items()) or 'none'}); at least 2 are needed, "
            f"relax --max-snp-missing/--min-maf or check the genotypes"
        )
    for reason, count in removed.items():
        if count:
            log.info("%d SNPs removed (%s)", count, reason)
    return keep, removed


def prepare_dataset(
    genotypes: GenotypeSource | str | os.PathLike[str],
    *,
    pheno: str | os.PathLike[str] | None = None,
    pheno_col: str | None = None,
    qc: QCOptions = QCOptions(),
    n_val_cases: int = DEFAULT_VAL_PER_CLASS,
    n_val_controls: int = DEFAULT_VAL_PER_CLASS,
    split_seed: int = 1,
    strict_split: tuple[bool, bool] = (False, False),
    num_threads: int | None = None,
    genotypes_path: str | os.PathLike[str] | None = None,
    min_train_per_class: int = MIN_TRAIN_PER_CLASS,
    allow_few_samples: bool = False,
    trait_type: str = "binary",
) -> PreparedDataset:
    """Build the prepared dataset from genotypes (any :mod:`annpal.io` reader) and a phenotype.

    Order of operations: phenotype and sample intersection; chromosome selection and ordering;
    genotype reading (−1/0/1 int8, missing → 0); sample missing-rate QC; SNP QC (missing rate, MAF,
    monomorphic, in that order, each counted); validation split.

    Parameters
    ----------
    genotypes
        An opened reader (:func:`annpal.io.open_genotypes`) or a PLINK 1 prefix.
    genotypes_path
        Write the matrix straight into this ``genotypes.npy`` (memory-mapped, never held in memory as a
        second copy); the result's ``genotypes`` is then a read-only map of it. ``None``: in memory.
    min_train_per_class, allow_few_samples
        Refuse fewer training samples of a class than this (:func:`check_training_size`; checked before
        the genotypes are read and again after sample QC), unless ``allow_few_samples``.
    trait_type
        ``binary`` (0/1 or 1/2 case/control) or ``quantitative`` (:func:`parse_phenotype`); recorded in
        ``qc.json`` (``phenotype.trait_type``), from where every later step reads it.

    Raises
    ------
    InputError
        Any bad input (see the readers in :mod:`annpal.io`, :func:`load_phenotype`,
        :func:`validation_split`), fewer than 2 SNPs left after QC, or too few training samples.
    """
    size = {"minimum": min_train_per_class, "allow_few": allow_few_samples, "trait_type": trait_type}
    if isinstance(genotypes, GenotypeSource):
        return _prepare(genotypes, pheno=pheno, pheno_col=pheno_col, qc=qc, n_val=(n_val_cases, n_val_controls),
                        split_seed=split_seed, strict_split=strict_split, genotypes_path=genotypes_path, size=size)
    with open_bfile(genotypes, num_threads=num_threads) as source:
        return _prepare(source, pheno=pheno, pheno_col=pheno_col, qc=qc, n_val=(n_val_cases, n_val_controls),
                        split_seed=split_seed, strict_split=strict_split, genotypes_path=genotypes_path, size=size)


def _prepare(source: GenotypeSource, *, pheno, pheno_col, qc: QCOptions, n_val: tuple[int, int], split_seed: int,
             strict_split: tuple[bool, bool], genotypes_path, size: dict[str, Any]) -> PreparedDataset:
    trait_type = size["trait_type"]
    samples_all, labels_all, pheno_info, name = _phenotype_of(source, pheno, pheno_col, trait_type)
    has_pheno = ~np.isnan(labels_all)
    pheno_info["n_samples_without_phenotype"] = int((~has_pheno).sum())
    sample_rows = np.flatnonzero(has_pheno)
    labels = labels_all[sample_rows]
    labels = labels if trait_type == "quantitative" else labels.astype(np.int8)
    check_trait_values(labels, source=name, trait_type=trait_type)
    split = {"n_val_cases": n_val[0], "n_val_controls": n_val[1], "seed": split_seed, "strict": strict_split,
             "trait_type": trait_type}
    # Fail before the long read if the split cannot work (sample QC can only lower the counts).
    _, pre_split = split_samples(labels, **split, warn=False)
    if not size["allow_few"]:
        check_training_size(pre_split, minimum=size["minimum"], source=name)

    variant_file = str(source.variant_file)
    snp_rows, variants, variant_info = select_variants(source.variants, keep_non_autosomal=qc.keep_non_autosomal,
                                                       bim_path=variant_file)
    if len(snp_rows) < 2:
        raise InputError(f"{variant_file}: {len(snp_rows)} SNPs on the autosomes; annpal needs at least 2 "
                         f"(use --keep-non-autosomal to include other chromosomes)")
    out = None if genotypes_path is None else create_genotypes_npy(genotypes_path, (len(sample_rows), len(snp_rows)))
    genotypes, stats = stream_genotypes(source, sample_index=sample_rows, snp_index=snp_rows, out=out,
                                        sample_missing=qc.max_sample_missing is not None)
    keep_samples, labels = _sample_qc(source, qc, stats, sample_rows, snp_rows, labels, name, trait_type)
    snp = snp_statistics(stats.snp_missing, stats.snp_sum, stats.snp_hom, n_samples=int(keep_samples.sum()))
    keep_snps, removed_counts = _snp_qc(qc, snp, variant_file=variant_file)

    genotypes = _compact_in_place(genotypes, np.flatnonzero(keep_samples), np.flatnonzero(keep_snps))
    if genotypes_path is not None:
        shape = genotypes.shape
        del genotypes, out  # close the writable map before cutting the file to the kept rows and columns
        genotypes = shrink_genotypes_npy(genotypes_path, shape)
    n_missing = int(stats.snp_missing[keep_snps].sum())
    is_val, split_info = split_samples(labels, **split)
    check_training_size(split_info, minimum=size["minimum"], allow_few=size["allow_few"], source=name)
    split_info.update(min_train_per_class=size["minimum"], allow_few_samples=size["allow_few"])

    rows = sample_rows[keep_samples]
    samples = pd.DataFrame({
        "FID": samples_all["FID"].to_numpy()[rows], "IID": samples_all["IID"].to_numpy()[rows], "label": labels,
        "split": np.where(is_val, "val", "train"),
    })
    variants = variants.loc[keep_snps].reset_index(drop=True)
    variants["MAF"] = snp["maf"][keep_snps]
    variants["MISSING"] = snp["missing_rate"][keep_snps]
    variants["index"] = np.arange(len(variants))
    n_cells = genotypes.size
    qc_info: dict[str, Any] = {
        "input": {"format": source.format, source.format: os.path.basename(_input_name(source)),
                  "n_samples": source.n_samples, "n_variants": source.n_snps},
        "options": asdict(qc),
        "phenotype": pheno_info,
        "samples": {"n_with_phenotype": len(sample_rows), "removed_sample_missing_rate": int((~keep_samples).sum()),
                    **trait_summary(labels, trait_type=trait_type)},
        "variants": {**variant_info, "n_candidates": len(snp_rows), "removed": removed_counts,
                     "n_kept": int(keep_snps.sum())},
        "missing_calls": {"n_set_to_zero": n_missing, "rate": n_missing / n_cells if n_cells else 0.0},
        "split": split_info,
        "encoding": ENCODING[source.format],
    }
    if source.format == "bgen":
        qc_info["input"]["bgen_min_prob"] = source.min_prob
    if n_missing:
        log.info("%d missing calls (%.3g%%) set to 0", n_missing, 100 * n_missing / n_cells)
    return PreparedDataset(genotypes=genotypes, samples=samples, variants=variants, qc=qc_info,
                           path=None if genotypes_path is None else Path(genotypes_path).parent)


def _input_name(source: GenotypeSource) -> str:
    """What the user passed: the prefix for PLINK file sets, the file otherwise."""
    return str(source.path.with_suffix("")) if source.format in ("bfile", "pfile") else str(source.path)


#: How each input's genotypes become the −1/0/1 matrix (for ``qc.json``).
ENCODING = {
    "bfile": "A1 allele count - 1 (bed-reader count_A1); missing -> 0",
    "pfile": "ALT allele count - 1 (pgenlib hard calls; A1 = ALT); missing -> 0",
    "bgen": "first-allele count - 1 from the most probable genotype when its probability >= the threshold "
            "(A1 = first allele); below it or missing -> 0",
    "vcf": "ALT allele count - 1 from GT (A1 = ALT); any missing allele -> 0",
}


__all__ = [
    "AUTO_CASE_SHARE", "BALANCE_RULES", "MIN_TRAIN_PER_CLASS", "QCOptions", "TRAIT_TYPES", "balance_summary",
    "check_trait_values", "parse_phenotype", "parse_quantitative_phenotype", "random_validation_split",
    "split_samples", "trait_summary",
    "balanced_training_index", "check_both_classes", "check_training_size", "paper_case_share", "resolve_balance_rule", "load_phenotype",
    "parse_binary_phenotype", "adopt_family_ids", "prepare_dataset", "select_variants", "snp_statistics", "validation_split",
]

"""One owner for every artifact passed between pipeline steps: names, columns, writer, validating reader.

Modelled on sgkit's ``variables.py``: each artifact is declared once below as a :class:`Table`
(a TSV), an :class:`Array` (a ``.npy``) or a :class:`Record` (a JSON object), with its file name, the
folder of the results layout it lives in, the command that produces it and, for tables, its columns
and their dtypes. Every step writes an artifact with :func:`write` and reads one with :func:`read`;
no other module calls ``read_csv``/``to_csv``/``np.load``/``json.loads`` on these files.

A reader checks what it reads and raises :class:`~annpal.errors.InputError` with one line naming the
file, what is wrong and the command that writes the file, e.g.::

    R/pal/ig/scores.tsv: missing columns ['mas_mean']; give the scores.tsv written by annpal-call-pal

The results layout ``R`` (what ``--outdir`` holds, and what ANNOTATE and REPORT read) is
:class:`Layout`; docs/architecture.md lists which step reads and writes which artifact.

Dtypes of table columns: ``str`` (text kept verbatim, ``NA`` included), ``str?`` (text, empty or
``NA`` read as missing), ``int``, ``float`` (``NA`` read as NaN) and ``bool`` (written 0/1, read from
``0/1/True/False``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from annpal.errors import InputError

#: Attribution methods as named on the command line and in folder names (``<m>_real``, ``pal/<m>``):
#: integrated gradients, saliency, permutation importance, DeepLIFT, SmoothGrad (over saliency).
METHODS = ("ig", "sm", "pm", "dl", "sg")

#: Spellings of a true flag accepted in a TSV column.
_TRUE_TEXT = ("true", "1", "1.0", "yes")
_FALSE_TEXT = ("false", "0", "0.0", "no")
_NA_TEXT = ["", "NA", "NaN", "nan"]
DTYPES = ("str", "str?", "int", "float", "bool")


def as_bool(values: pd.Series) -> np.ndarray:
    """A flag column as a bool array (``True``/``true``/``1``/``yes`` are true, anything else false)."""
    if values.dtype == bool:
        return values.to_numpy()
    return values.astype(str).str.strip().str.lower().isin(_TRUE_TEXT).to_numpy()


# ----------------------------------------------------------------------------------------------------
# Declarations


@dataclass(frozen=True)
class Column:
    """One column of a table: name, dtype (:data:`DTYPES`) and meaning."""

    name: str
    dtype: str
    doc: str = ""

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"column {self.name}: dtype {self.dtype!r} not one of {DTYPES}")


@dataclass(frozen=True)
class Artifact:
    """What every artifact declares: registry name, file name, layout folder, producing command."""

    name: str
    filename: str
    folder: str  #: key of :data:`FOLDERS`
    producer: str  #: the command that writes it, named in every read error
    doc: str

    def fix(self) -> str:
        """The remedy named in read errors."""
        return f"give the {self.filename} written by {self.producer}"


@dataclass(frozen=True)
class Table(Artifact):
    """A tab-separated table with a header line.

    ``columns`` come first, in this order; ``per_threshold`` columns are repeated for every PAL
    threshold θ as ``<name>_<θ>`` (θ written as given on the command line). Columns a writer adds
    beyond these are kept, after the declared ones.
    """

    columns: tuple[Column, ...] = ()
    per_threshold: tuple[Column, ...] = ()
    #: ``None``: floats written exactly (shortest round-trip form); tables meant for people round.
    float_format: str | None = None

    @property
    def names(self) -> list[str]:
        """The fixed column names, in file order."""
        return [c.name for c in self.columns]

    def threshold_columns(self, thresholds: Sequence[str]) -> list[Column]:
        """The per-threshold columns for ``thresholds``, θ by θ."""
        return [Column(f"{c.name}_{th}", c.dtype, c.doc) for th in thresholds for c in self.per_threshold]


@dataclass(frozen=True)
class Array(Artifact):
    """A ``.npy`` array of a fixed number of dimensions and dtype kind (``f`` float, ``i`` integer)."""

    ndim: int = 1
    kind: str = "f"


@dataclass(frozen=True)
class Record(Artifact):
    """A JSON object; ``keys`` must be present, ``optional`` keys are documented and may be absent."""

    keys: tuple[str, ...] = ()
    optional: tuple[str, ...] = field(default=())


def _cols(spec: str) -> tuple[Column, ...]:
    """``"index:int CHR:str …"`` → columns (compact declarations below)."""
    out = []
    for item in spec.split():
        name, dtype = item.rsplit(":", 1)
        out.append(Column(name, dtype))
    return tuple(out)


# Prepared dataset (annpal-prepare): the one input of every step after PREPARE.
GENOTYPES = Array("genotypes", "genotypes.npy", "prepared", "annpal-prepare",
                  "int8 samples × SNPs, C order, −1/0/1 (A1 count − 1; missing → 0), memory-mappable",
                  ndim=2, kind="i")
SAMPLES = Table("samples", "samples.tsv", "prepared", "annpal-prepare",
                "one row per matrix row: label 1 = case, 0 = control (quantitative trait: its value, "
                "qc.json phenotype.trait_type); split train or val",
                columns=_cols("FID:str IID:str label:float split:str"))
VARIANTS = Table("variants", "variants.tsv", "prepared", "annpal-prepare",
                 "one row per matrix column, sorted by chromosome (annpal.genome order) and position",
                 columns=_cols("index:int CHR:str BP:int SNP:str A1:str A2:str MAF:float MISSING:float"),
                 float_format="%.6g")
QC = Record("qc", "qc.json", "prepared", "annpal-prepare",
            "what was read, removed and why (counts only, never sample IDs)")

# Simulation (annpal-simulate).
PHENOTYPE = Table("phenotype", "phenotype.tsv", "simulation", "annpal-simulate",
                  "simulated case/control status (0/1) per sample, or the trait value (--trait-type quantitative)",
                  columns=_cols("FID:str IID:str phenotype:float"))
SIMULATE_RECORD = Record("simulate_record", "simulate.json", "simulation", "annpal-simulate",
                         "simulation parameters, realised variances, case count", keys=("seed", "n_causal"))
TRUTH = Table("truth", "truth.tsv", "simulation", "annpal-simulate",
              "causal SNPs: role dominant/recessive/pair/triple, interaction partners, effect weight",
              columns=_cols("SNP:str CHR:str BP:int role:str partners:str? weight:float"), float_format="%.6g")

# Test genotypes with two populations (annpal-testdata --split-generations), beside PREFIX.bed.
POPULATIONS = Table("populations", "populations.tsv", "simulation", "annpal-testdata",
                    "population (A or B) of each sample of a two-population test cohort (PREFIX.populations.tsv)",
                    columns=_cols("FID:str IID:str population:str"))

# Training (annpal-train), one folder per model.
HISTORY = Table("history", "history.tsv", "train", "annpal-train",
                "one row per epoch: losses (binary cross-entropy; quantitative trait: mean squared error on "
                "the standardised trait), validation AUC (binary; NA for a quantitative trait), validation R² "
                "(quantitative; NA for a binary trait), SD of the validation outputs, share of dead "
                "first-layer units on the validation set (collapse measures, docs/training.md), wall seconds",
                columns=_cols("epoch:int train_loss:float val_loss:float val_auc:float val_r2:float "
                              "val_output_sd:float val_dead_fraction:float seconds:float"),
                float_format="%.8g")
COVARIATES = Table("covariates", "covariates.tsv", "train", "annpal-train",
                   "raw covariates a network was trained with (--nn-covariates), one row per dataset sample "
                   "(columns after FID IID: the model's covariate names, PCs first)",
                   columns=_cols("FID:str IID:str"))
TRAIN_RECORD = Record("train_record", "train.json", "train", "annpal-train",
                      "recipe, seeds, hidden sizes, device, timings and warnings of one trained model",
                      keys=("kind", "seed", "hidden_sizes"), optional=("warnings",))

# Attribution (annpal-attribute) and the merged MAS matrix (annpal-merge-mas).
MAS = Array("mas", "mas.npy", "attribution", "annpal-attribute",
            "float64 MAS of one model, length M, sums to 1", ndim=1)
ATTR = Record("attr", "attr.json", "attribution", "annpal-attribute",
              "method, kind, seed, samples used, timings of one attribution", keys=("seed", "kind", "method"),
              optional=("degenerate", "collapsed", "collapse_epoch"))
MAS_MATRIX = Array("mas_matrix", "mas_matrix.npy", "mas", "annpal-merge-mas",
                   "float64 K × M MAS matrix, rows sorted by seed", ndim=2)
MODELS = Table("models", "models.tsv", "mas", "annpal-merge-mas",
               "one row per row of mas_matrix.npy: seed, kind, method, dead-network and collapse flags, the "
               "epoch of the collapse (NA if none) and the --collapsed-models policy applied",
               columns=_cols("row:int seed:int kind:str method:str degenerate:bool collapsed:bool "
                             "collapse_epoch:float collapsed_models:str"))
EXCLUDED = Table("excluded", "excluded.tsv", "mas", "annpal-merge-mas",
                 "models left out of mas_matrix.npy (collapsed networks under --collapsed-models exclude)",
                 columns=MODELS.columns[1:])

# PAL (annpal-call-pal).
SCORES = Table("scores", "scores.tsv", "pal", "annpal-call-pal",
               "every SNP: mean MAS, then per θ the LD-aware count, weight, AMAS and PAL / PAL-common flags",
               columns=_cols("index:int CHR:str BP:int SNP:str mas_mean:float"),
               per_threshold=_cols("count:int weight:float amas:float pal:bool pal_common:bool"))
PAL = Table("pal", "pal.tsv", "pal", "annpal-call-pal",
            "the PAL SNPs of every θ, by θ then AMAS descending",
            columns=_cols("threshold:str SNP:str CHR:str BP:int index:int mas_mean:float count:int amas:float "
                          "pal_common:bool"))
PAL_RECORD = Record("pal_record", "pal.json", "pal", "annpal-call-pal",
                    "parameters and per-θ summary of the PAL call", keys=("method", "thresholds"))

# AMAS P-values (annpal-pvalues).
PVALUES = Table("pvalues", "pvalues.tsv", "pvalues", "annpal-pvalues",
                "rank-matched AMAS P-values; p_value 0 means P < p_bound (p_text then reads '< bound')",
                columns=_cols("threshold:str index:int SNP:str CHR:str BP:int amas:float p_value:float "
                              "p_bound:float p_text:str"))
NULL_FIT = Table("null_fit", "null_fit.tsv", "pvalues", "annpal-pvalues",
                 "tail fits of the null MAS: parameters, log-likelihood, AIC, BIC, best (lowest AIC)",
                 columns=_cols("distribution:str params:str loglik:float aic:float bic:float best:bool"))
NULL_FIT_RECORD = Record(
    "null_fit_record", "null_fit.json", "pvalues", "annpal-pvalues",
    "half-normal σ, tail comparison and its warning, QQ (qq.expected/observed) and histogram "
    "(histogram.edges/density) of the null MAS; both half-normal fits (sigma_zero; sigma_free, loc_free) and "
    "which one gave sigma (halfnorm_loc); null models used and the degenerate ones left out "
    "(degenerate_null_models: row, seed); per θ n_inexact_draws and the recount settings",
    keys=("sigma", "best", "tail_fraction"),
    optional=("warning", "qq", "histogram", "halfnorm_loc", "sigma_zero", "sigma_free", "loc_free",
              "n_null_models", "n_null_models_used", "degenerate_null_models", "thresholds", "recount", "draws",
              "n_snps", "p_bound"))

# Linear comparator (annpal-gwas).
GWAS = Table("gwas", "gwas.tsv", "gwas", "annpal-gwas",
             "per-SNP logistic regression (binary trait) or linear regression (quantitative: z holds the OLS t "
             "statistic, beta the effect per A1 allele); p_value is text so P < 1e-308 is never written 0",
             columns=_cols("index:int CHR:str BP:int SNP:str A1:str A2:str beta:float se:float z:float "
                           "p_value:str neg_log10_p:float af:float n:int status:str"))
# Principal components (annpal-pca): computed once, read by annpal-gwas --pcs and annpal-train --pcs.
PCS = Table("pcs", "pcs.tsv", "pca", "annpal-pca",
            "principal-component scores per sample, unit variance (PC1, PC2, … follow FID IID)",
            columns=_cols("FID:str IID:str"))
PCA_RECORD = Record("pca_record", "pca.json", "pca", "annpal-pca",
                    "PCA method, seed, SNPs used, singular values and explained variance ratios",
                    keys=("n_pcs", "method"))
GWAS_RECORD = Record("gwas_record", "gwas.json", "gwas", "annpal-gwas",
                     "λGC, number of PCs, status counts, PCA summary, QQ data", keys=("lambda_gc", "n_pcs"))

# Evaluation against the simulation truth (annpal-evaluate).
EVALUATION = Table("evaluation", "evaluation.tsv", "evaluation", "annpal-evaluate",
                   "precision and recall per method, θ (NA for LR) and P threshold (NA when none)",
                   columns=_cols("method:str threshold:str? p_threshold:str? n_detected:int n_blocks:int tp:int "
                                 "fp:int precision:float recall:float n_causal_loci:int"),
                   float_format="%.6g")

EVALUATION_RECORD = Record("evaluation_record", "evaluation.json", "evaluation", "annpal-evaluate",
                           "window and block sizes, definitions, inputs and the rows of evaluation.tsv",
                           keys=("window_kb", "block_kb", "rows"))

# Loci (annpal-annotate).
LOCI = Table("loci", "loci.tsv", "annotate", "annpal-annotate",
             "PAL SNPs grouped into loci per method and θ, lead SNP and nearby genes",
             columns=_cols("method:str threshold:str locus:int chr:str start:int end:int n_snps:int lead_snp:str "
                           "lead_bp:int lead_p:float lead_p_text:str lead_amas:float snps:str genes:str"),
             float_format="%.6g")

ANNOTATE_RECORD = Record("annotate_record", "annotate.json", "annotate", "annpal-annotate",
                         "what ANNOTATE wrote (loci, LDtrait, FUMA, GWAS-SSF files) and what it skipped, and why",
                         keys=("build", "methods"))

# Pipeline-level records (written by main.nf, read by the report).
PARAMS = Record("params", "params.json", "pipeline", "nextflow run main.nf",
                "the parameters of the run, as Nextflow resolved them")

#: Every artifact by registry name.
ARTIFACTS: dict[str, Artifact] = {a.name: a for a in (
    GENOTYPES, SAMPLES, VARIANTS, QC, PHENOTYPE, SIMULATE_RECORD, TRUTH, POPULATIONS, HISTORY, COVARIATES, TRAIN_RECORD, MAS, ATTR, MAS_MATRIX, MODELS, EXCLUDED,
    SCORES, PAL, PAL_RECORD, PVALUES, NULL_FIT, NULL_FIT_RECORD, GWAS, PCS, PCA_RECORD, GWAS_RECORD, EVALUATION, EVALUATION_RECORD,
    LOCI, ANNOTATE_RECORD, PARAMS)}

#: Folders of the results layout ``R`` (placeholders filled by :meth:`Layout.folder`).
FOLDERS = {
    "prepared": "prepared", "simulation": "simulation", "train": "train/{model}",
    "attribution": "attribution/{method}_{model}", "mas": "mas/{method}_{kind}", "pal": "pal/{method}",
    "pvalues": "pvalues/{method}", "pca": "pca", "gwas": "gwas", "evaluation": "evaluation", "annotate": "annotate",
    "pipeline": "pipeline",
}


@dataclass(frozen=True)
class Layout:
    """The results layout ``R``: where each artifact lives (see :data:`FOLDERS`).

    Examples
    --------
    >>> str(Layout("R").path(SCORES, method="ig"))
    'R/pal/ig/scores.tsv'
    """

    root: Path

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", Path(root))

    def folder(self, key: str, **names: object) -> Path:
        """Folder ``key`` of :data:`FOLDERS` with its placeholders (``method``, ``kind``, ``model``)."""
        return self.root / FOLDERS[key].format(**names)

    def path(self, artifact: Artifact, **names: object) -> Path:
        """Where ``artifact`` lives in this layout."""
        return self.folder(artifact.folder, **names) / artifact.filename

    def methods(self) -> list[str]:
        """Attribution methods with a PAL folder holding scores.tsv or pal.tsv, sorted."""
        pal_dir = self.root / "pal"
        if not pal_dir.is_dir():
            return []
        return sorted(d.name for d in pal_dir.iterdir()
                      if d.is_dir() and ((d / SCORES.filename).is_file() or (d / PAL.filename).is_file()))

    def models(self) -> list[str]:
        """Model folders under ``train/`` (``real_s<seed>``, ``null_s<seed>``), sorted."""
        tdir = self.root / "train"
        return sorted(d.name for d in tdir.iterdir() if d.is_dir()) if tdir.is_dir() else []


# ----------------------------------------------------------------------------------------------------
# Writing


def _target(artifact: Artifact, dest: str | os.PathLike[str]) -> Path:
    """``dest`` itself, or ``dest/<file name>`` when ``dest`` is a folder."""
    p = Path(dest)
    return p / artifact.filename if p.is_dir() else p


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)  # paths, devices: their text


def write(artifact: Artifact, dest: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as ``artifact`` to ``dest`` (a file path, or a folder to put the file name in).

    Tables: the declared columns first (all must be present), then any others in ``data``'s order;
    bool columns as 0/1. Arrays: checked for dimensions and dtype kind. Records: a dict with the
    required keys. Callers writing a step's outputs do so inside :func:`annpal.cli.atomic_path`.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        ``data`` does not match the declaration (a programming error, not bad input).
    """
    path = _target(artifact, dest)
    if isinstance(artifact, Table):
        _write_table(artifact, path, data)
    elif isinstance(artifact, Array):
        arr = np.asarray(data)
        if arr.ndim != artifact.ndim or arr.dtype.kind != artifact.kind:
            raise ValueError(f"{artifact.name}: expected {artifact.ndim}-D kind {artifact.kind!r}, got "
                             f"{arr.ndim}-D {arr.dtype}")
        np.save(path, np.ascontiguousarray(arr))
    else:
        missing = [k for k in artifact.keys if k not in data]
        if missing:
            raise ValueError(f"{artifact.name}: record lacks keys {missing}")
        path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    return path


def _write_table(table: Table, path: Path, frame: pd.DataFrame) -> None:
    thresholds = thresholds_of(frame) if table.per_threshold else []
    declared = list(table.columns) + table.threshold_columns(thresholds)
    missing = [c.name for c in declared if c.name not in frame.columns]
    if missing:
        raise ValueError(f"{table.name}: frame lacks columns {missing}")
    names = [c.name for c in declared]
    out = frame[names + [c for c in frame.columns if c not in names]].copy()
    for c in declared:
        if c.dtype == "bool":
            out[c.name] = as_bool(out[c.name]).astype(np.int8)
    if isinstance(table.float_format, str) and table.float_format.startswith("%"):
        # pandas applies a float_format string one value at a time through a slow path (about 10 s
        # per million values); Python's format() gives the same text at a fraction of the cost
        spec = table.float_format[1:]
        for name in out.columns:
            if out[name].dtype.kind == "f":
                out[name] = [format(v, spec) if v == v else "NA" for v in out[name].tolist()]
    out.to_csv(path, sep="\t", index=False, float_format=table.float_format, na_rep="NA")


# ----------------------------------------------------------------------------------------------------
# Reading


def thresholds_of(frame: pd.DataFrame) -> list[str]:
    """Threshold labels θ of a per-threshold table (``amas_<θ>`` columns), in column order."""
    return [c[len("amas_"):] for c in frame.columns if str(c).startswith("amas_")]


def threshold_value(label: object) -> float:
    """A threshold label (``"99.99"``) as a number, to match labels written slightly differently; NaN if none."""
    try:
        return float(label)
    except (TypeError, ValueError):
        return float("nan")


def read(artifact: Artifact, source: str | os.PathLike[str], *, columns: Sequence[str] | None = None,
         mmap: bool = False) -> Any:
    """Read and validate ``artifact`` from ``source`` (its file, or the folder holding it).

    Parameters
    ----------
    artifact
        A declaration of this module (:data:`ARTIFACTS`).
    source
        The file, or its folder.
    columns
        Tables only: read just these declared columns (e.g. ``label split`` of samples.tsv).
    mmap
        Arrays only: memory-map read-only instead of loading.

    Returns
    -------
    pandas.DataFrame, numpy.ndarray or dict
        Tables with declared dtypes (``bool`` columns as bool, ``int`` as int64); arrays as stored;
        records as dicts.

    Raises
    ------
    InputError
        The file is missing, unreadable, or lacks a declared column, key or shape; the message names
        the file and the command that writes it.
    """
    path = _target(artifact, source)
    if not path.is_file():
        raise InputError(f"{path}: missing; {artifact.fix()}")
    if isinstance(artifact, Table):
        return _read_table(artifact, path, columns)
    if isinstance(artifact, Array):
        return _read_array(artifact, path, mmap=mmap)
    return _read_record(artifact, path)


def read_optional(artifact: Artifact, source: str | os.PathLike[str], **kwargs: Any) -> Any | None:
    """:func:`read`, or ``None`` when the file does not exist (optional parts of the layout)."""
    return read(artifact, source, **kwargs) if _target(artifact, source).is_file() else None


def _read_array(artifact: Array, path: Path, *, mmap: bool) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, OSError):
        # numpy's own message for a non-.npy file talks about pickles, which only confuses
        raise InputError(f"{path}: not a readable .npy file; {artifact.fix()}") from None
    what = {"f": "floats", "i": "integers"}[artifact.kind]
    if arr.ndim != artifact.ndim or arr.dtype.kind != artifact.kind:
        raise InputError(f"{path}: expected a {artifact.ndim}-D array of {what}, found {arr.ndim}-D {arr.dtype}; "
                         f"{artifact.fix()}")
    if artifact.kind == "f" and not mmap and not np.all(np.isfinite(arr)):
        raise InputError(f"{path}: non-finite values; {artifact.fix()}")
    return arr


def _read_record(artifact: Record, path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({getattr(exc, 'msg', exc)}); {artifact.fix()}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object; {artifact.fix()}")
    missing = [k for k in artifact.keys if k not in data]
    if missing:
        raise InputError(f"{path}: no {', '.join(repr(k) for k in missing)} field; {artifact.fix()}")
    return data


def _read_table(table: Table, path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    try:
        header = list(pd.read_csv(path, sep="\t", nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{path}: not a readable TSV ({str(exc).strip()}); {table.fix()}") from None
    thresholds = thresholds_of(pd.DataFrame(columns=header)) if table.per_threshold else []
    declared = {c.name: c for c in list(table.columns) + table.threshold_columns(thresholds)}
    wanted = list(declared) if columns is None else list(columns)
    missing = [c for c in wanted if c not in header]
    if table.per_threshold and columns is None and not thresholds:
        missing.append("amas_<θ>")
    if missing:
        raise InputError(f"{path}: missing columns {missing}; {table.fix()}")
    usecols = None if columns is None else wanted
    text = {n: str for n, c in declared.items() if c.dtype in ("str", "str?")}
    na = {n: _NA_TEXT for n, c in declared.items() if c.dtype != "str"}
    try:
        frame = pd.read_csv(path, sep="\t", usecols=usecols, dtype=text, keep_default_na=False, na_values=na)
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable TSV ({str(exc).strip()}); {table.fix()}") from None
    for name in frame.columns:
        if name in declared:
            frame[name] = _convert(frame[name], declared[name], path, table)
    return frame


def _convert(values: pd.Series, column: Column, path: Path, table: Table) -> pd.Series:
    """One column to its declared dtype, or InputError naming the column and the first bad row."""
    if column.dtype == "str":
        return values
    if column.dtype == "str?":
        return values.where(values.notna() & ~values.isin(_NA_TEXT), None)
    if column.dtype == "bool":
        text = values.astype(str).str.strip().str.lower()
        ok = text.isin(_TRUE_TEXT + _FALSE_TEXT)
        if not ok.all():
            _bad(values, ok, column, path, table, "0/1")
        return pd.Series(text.isin(_TRUE_TEXT).to_numpy(), index=values.index)
    numbers = pd.to_numeric(values, errors="coerce")
    ok = numbers.notna() | values.isna()
    if not ok.all():
        _bad(values, ok, column, path, table, "numbers")
    if column.dtype == "int":
        whole = numbers.notna() & (numbers % 1 == 0)
        if not whole.all():
            _bad(values, whole, column, path, table, "whole numbers")
        return numbers.astype(np.int64)
    return numbers.astype(np.float64)


def _bad(values: pd.Series, ok: pd.Series, column: Column, path: Path, table: Table, what: str) -> None:
    row = int(np.flatnonzero(~ok.to_numpy())[0])
    raise InputError(f"{path}: column {column.name!r} must hold {what} (row {row + 2}: {values.iloc[row]!r}); "
                     f"{table.fix()}")


def read_mas_matrix(source: str | os.PathLike[str]) -> np.ndarray:
    """A K × M MAS matrix (annpal-merge-mas) as float64, finite, checked."""
    return read(MAS_MATRIX, source).astype(np.float64)


def read_models(source: str | os.PathLike[str], n_rows: int | None = None) -> pd.DataFrame:
    """models.tsv beside a MAS matrix; with ``n_rows``, checked to have one row per matrix row."""
    models = read(MODELS, source)
    if n_rows is not None and len(models) != n_rows:
        raise InputError(f"{_target(MODELS, source)}: {len(models)} rows but the MAS matrix has {n_rows}; "
                         f"{MODELS.fix()}")
    return models


def describe(artifacts: Mapping[str, Artifact] | None = None) -> str:
    """A Markdown table of the registry (file, folder, producer, columns) for the docs."""
    rows = ["| artifact | file | folder | written by | columns / keys |", "|---|---|---|---|---|"]
    for a in (artifacts or ARTIFACTS).values():
        if isinstance(a, Table):
            cols = " ".join(f"{c.name}:{c.dtype}" for c in a.columns)
            cols += "".join(f" {c.name}_θ:{c.dtype}" for c in a.per_threshold)
        elif isinstance(a, Array):
            cols = f"{a.ndim}-D {'float64' if a.kind == 'f' else 'int8'}"
        else:
            cols = " ".join(a.keys) or "(free)"
        rows.append(f"| {a.name} | `{a.filename}` | `{FOLDERS[a.folder]}` | {a.producer} | {cols} |")
    return "\n".join(rows)


__all__ = [
    "ANNOTATE_RECORD", "ARTIFACTS", "ATTR", "Array", "Artifact", "Column", "DTYPES", "EVALUATION", "EVALUATION_RECORD", "EXCLUDED", "FOLDERS", "GENOTYPES", "GWAS",
    "GWAS_RECORD", "HISTORY", "LOCI", "Layout", "MAS", "MAS_MATRIX", "MODELS", "NULL_FIT", "NULL_FIT_RECORD", "PAL", "PARAMS", "PCS", "PCA_RECORD", "COVARIATES",
    "PAL_RECORD", "PHENOTYPE", "POPULATIONS", "PVALUES", "QC", "Record", "SAMPLES", "SCORES", "SIMULATE_RECORD", "TRAIN_RECORD", "TRUTH", "Table",
    "VARIANTS", "as_bool", "describe", "read", "read_mas_matrix", "read_models", "read_optional", "threshold_value", "thresholds_of",
    "write",
]

"""Property-based tests (hypothesis): whatever the input, it works or ends in the clear error.

The PLINK reader (random ``.bed`` bytes, random ``.bim``/``.fam`` text), the phenotype parser (random
TSV content) and the parameter parsing of the bin commands (threshold lists, numeric options) either
succeed with a sane result or raise the clear error: :class:`annpal.errors.InputError` (one line,
naming the file) for data, a Click usage error for options; never another exception, which a user
would see as a traceback.

The pipeline's own parameter validation is Groovy (subworkflows/local/utils_annpal.nf) and not
reachable from Python without starting Nextflow; it is covered by fixed cases in test_schema.py and
test_bad_inputs.py.
"""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import load_bin, make_prepared
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from annpal.dataset import QCOptions, load_phenotype, parse_binary_phenotype, prepare_dataset
from annpal.errors import InputError
from annpal.evaluate import parse_p_thresholds
from annpal.io.plink import BED_MAGIC, open_fileset, read_bim, read_fam, read_genotypes
from annpal.pal import parse_thresholds

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one_line_error(exc: InputError) -> None:
    """The clear error: a single non-empty line."""
    text = str(exc)
    assert text.strip() and "\n" not in text.strip()


# --------------------------------------------------------------------------------------------------
# PLINK reader
# --------------------------------------------------------------------------------------------------

def fam_text(n: int) -> str:
    return "".join(f"F{i} I{i} 0 0 1 {1 + i % 2}\n" for i in range(n))


def bim_text(m: int) -> str:
    return "".join(f"1 rs{j} 0 {1000 + 10 * j} A G\n" for j in range(m))


@st.composite
def bed_bytes(draw) -> tuple[int, int, bytes]:
    """Sample and SNP counts and a .bed that is often valid and otherwise broken in one of many ways."""
    n, m = draw(st.integers(1, 9)), draw(st.integers(1, 6))
    magic = draw(st.sampled_from([BED_MAGIC, BED_MAGIC, b"\x6c", b"", b"\x00\x00", b"\x1b\x6c"]))
    mode = draw(st.sampled_from([b"\x01", b"\x01", b"\x00", b"\x02", b""]))
    size = m * ((n + 3) // 4)
    body_len = draw(st.sampled_from([size, size, size - 1, size + 1, 0, size * 2]))
    body = draw(st.binary(min_size=max(body_len, 0), max_size=max(body_len, 0)))
    return n, m, magic + mode + body


@SETTINGS
@given(case=bed_bytes())
def test_plink__random_bed_bytes_read_or_input_error(case) -> None:
    n, m, data = case
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "x"
        Path(f"{prefix}.bed").write_bytes(data)
        Path(f"{prefix}.fam").write_text(fam_text(n))
        Path(f"{prefix}.bim").write_text(bim_text(m))
        try:
            fileset = open_fileset(prefix)
            genotypes, stats = read_genotypes(fileset)
        except InputError as exc:
            one_line_error(exc)
            return
        assert genotypes.shape == (n, m) and genotypes.dtype == np.int8
        assert set(np.unique(genotypes)) <= {-1, 0, 1}
        assert (stats.snp_missing >= 0).all() and (stats.snp_missing <= n).all()


TOKENS = ["1", "2", "22", "X", "chr3", "0", "23", "MT", "rs1", ".", "-9", "NA", "A", "G", "1000", "12.5",
          "-3", "1e3", "x y", "#", "é", "\t", ""]


@st.composite
def table_text(draw, *, min_lines: int = 0, max_lines: int = 8) -> str:
    """Whitespace-separated lines of a random number of PLINK-ish or junk tokens."""
    lines = draw(st.lists(st.lists(st.sampled_from(TOKENS) | st.text(string.printable, max_size=4),
                                   min_size=0, max_size=8), min_size=min_lines, max_size=max_lines))
    sep = draw(st.sampled_from([" ", "\t", "  "]))
    return "".join(sep.join(tokens) + "\n" for tokens in lines)


def valid_bed(n: int, m: int) -> bytes:
    return BED_MAGIC + b"\x01" + bytes(np.random.default_rng(n * 31 + m).integers(0, 256, m * ((n + 3) // 4),
                                                                                  dtype=np.uint8))


@SETTINGS
@given(bim=table_text(min_lines=1), fam=table_text(min_lines=1), raw=st.booleans(),
       junk=st.binary(min_size=1, max_size=40))
def test_plink__random_bim_fam_text_prepare_or_input_error(bim, fam, raw, junk) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "x"
        Path(f"{prefix}.bim").write_text(bim)
        if raw:  # bytes that may not even be UTF-8
            Path(f"{prefix}.fam").write_bytes(junk)
        else:
            Path(f"{prefix}.fam").write_text(fam)
        n = (Path(f"{prefix}.fam").read_bytes().count(b"\n") + (not Path(f"{prefix}.fam").read_bytes().endswith(b"\n")))
        m = bim.count("\n")
        Path(f"{prefix}.bed").write_bytes(valid_bed(max(n, 1), max(m, 1)))
        try:
            read_fam(f"{prefix}.fam")
            read_bim(f"{prefix}.bim")
        except InputError as exc:
            one_line_error(exc)
        try:
            ds = prepare_dataset(prefix, qc=QCOptions(), n_val_cases=1, n_val_controls=1, split_seed=1,
                                 allow_few_samples=True)
        except InputError as exc:
            one_line_error(exc)
            return
        assert ds.genotypes.shape == (len(ds.samples), len(ds.variants))


# --------------------------------------------------------------------------------------------------
# Phenotype parser
# --------------------------------------------------------------------------------------------------

FAM = pd.DataFrame({"FID": [f"F{i}" for i in range(6)], "IID": [f"I{i}" for i in range(6)],
                    "PAT": "0", "MAT": "0", "SEX": "1", "PHENO": "-9"})
PHENO_TOKENS = ["FID", "IID", "trait", "#FID", "F0", "I0", "F1", "I1", "F2", "I2", "F3", "I3", "F9", "I9", "0",
                "1", "2", "-9", "NA", "nan", ".", "1.5", "case", "TRUE", "1e0", "-1", ""]


@st.composite
def pheno_text(draw) -> str:
    header = draw(st.sampled_from(["", "FID IID trait\n", "#FID\tIID\ttrait\tother\n", "FID IID\n"]))
    lines = draw(st.lists(st.lists(st.sampled_from(PHENO_TOKENS) | st.text(string.printable, max_size=3),
                                   min_size=0, max_size=5), max_size=8))
    sep = draw(st.sampled_from(["\t", " "]))
    return header + "".join(sep.join(tokens) + "\n" for tokens in lines)


@SETTINGS
@given(text=pheno_text(), column=st.sampled_from([None, "trait", "P1", "other", "nope"]),
       raw=st.none() | st.binary(max_size=30))
def test_phenotype__random_tsv_labels_or_input_error(text, column, raw) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pheno.tsv"
        if raw is not None:
            path.write_bytes(raw)
        else:
            path.write_text(text)
        try:
            labels, info = load_phenotype(FAM, fam_path="x.fam", pheno_path=path, pheno_col=column)
        except InputError as exc:
            one_line_error(exc)
            return
    assert labels.shape == (len(FAM),)
    assert set(np.unique(labels[~np.isnan(labels)])) <= {0.0, 1.0}
    assert info["coding"] in ("0/1", "1/2")


@SETTINGS
@given(values=st.lists(st.sampled_from(PHENO_TOKENS) | st.text(max_size=4), max_size=12))
def test_phenotype__random_values_parse_or_input_error(values) -> None:
    try:
        labels, coding, zeros = parse_binary_phenotype(pd.Series(values, dtype=object), source="x")
    except InputError as exc:
        one_line_error(exc)
        return
    assert labels.shape == (len(values),) and zeros >= 0
    assert set(np.unique(labels[~np.isnan(labels)])) <= {0.0, 1.0}


# --------------------------------------------------------------------------------------------------
# Parameter parsing in the bin commands
# --------------------------------------------------------------------------------------------------

NUMBERISH = st.sampled_from(["99.99", "99.95", "99", "100", "0", "-1", "1e2", "nan", "inf", "abc", "", " ", "99.9",
                             "99.90", "5e1", "0.5", "1e-3", "1.7e-7", "2"])
LISTS = st.lists(NUMBERISH | st.text(string.printable, max_size=5), max_size=5).map(",".join) | st.text(max_size=12)


@SETTINGS
@given(text=LISTS)
def test_params__thresholds_parse_or_value_error(text) -> None:
    try:
        out = parse_thresholds(text)
    except ValueError as exc:
        assert str(exc).strip()
        return
    assert out and all(0 < v < 100 for _, v in out)
    assert len({v for _, v in out}) == len(out)
    assert [label for label, _ in out] == [t.strip() for t in text.split(",")]


@SETTINGS
@given(text=LISTS)
def test_params__p_thresholds_parse_or_value_error(text) -> None:
    try:
        out = parse_p_thresholds(text)
    except ValueError as exc:
        assert str(exc).strip()
        return
    assert out and all(0 < v < 1 for _, v in out)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("params")
    make_prepared(root / "prepared", n_samples=60, n_snps=30, causal=(3,), n_val_per_class=5)
    np.save(root / "mas.npy", np.full((2, 30), 1 / 30))
    (root / "truth.tsv").write_text("SNP\tCHR\tBP\trole\tpartners\tweight\n")
    (root / "pal.tsv").write_text("threshold\tSNP\tCHR\tBP\tindex\tmas_mean\tcount\tamas\tpal_common\n")
    return {"root": root}


def parse_only(name: str, args: list[str]) -> None:
    """Click's parsing and option callbacks of a bin command, without running it."""
    load_bin(name).make_context(name, args)


# bin command -> (fixed arguments, option under test)
OPTIONS = {
    "call-pal-thresholds": ("annpal-call-pal", lambda r: ["--dataset", str(r / "prepared"), "--mas", str(r / "mas.npy"),
                                                          "--method", "sm", "--out-dir", str(r / "o")], "--thresholds"),
    "call-pal-ld-r": ("annpal-call-pal", lambda r: ["--dataset", str(r / "prepared"), "--mas", str(r / "mas.npy"),
                                                    "--method", "sm", "--out-dir", str(r / "o")], "--ld-r"),
    "evaluate-p-thresholds": ("annpal-evaluate", lambda r: ["--truth", str(r / "truth.tsv"), "--dataset",
                                                            str(r / "prepared"), "--out-dir", str(r / "o")],
                              "--p-thresholds"),
    "evaluate-pal-thresholds": ("annpal-evaluate", lambda r: ["--truth", str(r / "truth.tsv"), "--dataset",
                                                              str(r / "prepared"), "--out-dir", str(r / "o")],
                                "--pal-thresholds"),
    "pvalues-tail-fraction": ("annpal-pvalues", lambda r: ["--mas", str(r / "mas.npy"), "--null-mas", str(r / "mas.npy"),
                                                           "--scores", str(r / "truth.tsv"), "--out-dir", str(r / "o")],
                              "--tail-fraction"),
    "prepare-min-maf": ("annpal-prepare", lambda r: ["--bfile", "x", "--out-dir", str(r / "o")], "--min-maf"),
    "train-epochs": ("annpal-train", lambda r: ["--dataset", str(r / "prepared"), "--seed", "1",
                                                "--out-dir", str(r / "o")], "--epochs"),
}


@pytest.mark.parametrize("key", sorted(OPTIONS))
def test_params__bin_option_parses_or_usage_error(key, inputs) -> None:
    name, fixed, option = OPTIONS[key]
    base = fixed(inputs["root"])

    @SETTINGS
    @given(value=LISTS)
    def check(value: str) -> None:
        assume("\x00" not in value)
        try:
            parse_only(name, [*base, option, value])
        except click.UsageError as exc:  # BadParameter is a UsageError: exit 2, one "Error:" line
            assert exc.format_message().strip()

    check()


@settings(max_examples=25, deadline=None)
@given(value=st.sampled_from(["99.99,abc", "100", ",", "99.9,99.90", " ", "nan"]) | LISTS)
def test_params__call_pal_invoked_with_any_thresholds_exits_0_or_2(value) -> None:
    """The whole command (not only parsing) on a tiny dataset: success or exit 2, never a traceback."""
    root = Path(tempfile.mkdtemp())
    make_prepared(root / "prepared", n_samples=40, n_snps=20, causal=(3,), n_val_per_class=4)
    np.save(root / "mas.npy", np.random.default_rng(0).random((2, 20)))
    result = CliRunner().invoke(load_bin("annpal-call-pal"), [
        "--dataset", str(root / "prepared"), "--mas", str(root / "mas.npy"), "--method", "sm",
        "--thresholds", value, "--out-dir", str(root / "o")])
    assert result.exit_code in (0, 2), (result.exception, result.output)
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
    assert (root / "o").exists() == (result.exit_code == 0)

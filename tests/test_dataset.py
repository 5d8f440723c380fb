"""annpal.dataset: phenotype parsing, sample intersection, QC, split, balancing, prepare_dataset."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from helpers_input import case_control, random_counts, write_fileset, write_pheno

from annpal import dataset
from annpal.dataset import (
    MIN_TRAIN_PER_CLASS,
    QCOptions,
    balance_summary,
    balanced_training_index,
    check_training_size,
    paper_case_share,
    prepare_dataset,
    resolve_balance_rule,
    validation_split,
)
from annpal.errors import InputError


def _fam(n: int) -> pd.DataFrame:
    return pd.DataFrame({"FID": [f"F{i}" for i in range(n)], "IID": [f"I{i}" for i in range(n)],
                         "PAT": "0", "MAT": "0", "SEX": "1", "PHENO": "-9"})


# -- phenotype ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "coding", "expected", "zeros"), [
    (["1", "2", "2", "-9", "0", "NA"], "1/2", [0, 1, 1, np.nan, np.nan, np.nan], 1),
    (["0", "1", "1", "-9", "nan", ""], "0/1", [0, 1, 1, np.nan, np.nan, np.nan], 0),
    (["1.0", "2.0", "."], "1/2", [0, 1, np.nan], 0),
    (["1", "1"], "0/1", [1, 1], 0),
])
def test_parse_binary_phenotype__codings(values, coding, expected, zeros):
    labels, got_coding, got_zeros = dataset.parse_binary_phenotype(pd.Series(values), source="x")
    np.testing.assert_array_equal(labels, np.array(expected, dtype=float))
    assert (got_coding, got_zeros) == (coding, zeros)


@pytest.mark.parametrize("values", [["0", "1", "3"], ["1.5", "2"], ["case", "control"], ["0.2", "0.7"]])
def test_parse_binary_phenotype__non_binary(values):
    with pytest.raises(InputError, match=r"pheno\.tsv: non-binary phenotype values .*recode"):
        dataset.parse_binary_phenotype(pd.Series(values), source="pheno.tsv")


def test_load_phenotype__fam():
    fam = _fam(4)
    fam["PHENO"] = ["2", "1", "-9", "2"]
    labels, info = dataset.load_phenotype(fam, fam_path="c.fam")
    np.testing.assert_array_equal(labels, [1, 0, np.nan, 1])
    assert info["source"] == "fam" and info["coding"] == "1/2"


def test_load_phenotype__fam_all_missing():
    with pytest.raises(InputError, match=r"c\.fam: no case/control phenotype .*--pheno"):
        dataset.load_phenotype(_fam(3), fam_path="c.fam")


@pytest.mark.parametrize("header", [True, False])
def test_load_phenotype__tsv_intersection(tmp_path, header):
    fam = _fam(5)
    # rows out of fam order, one sample not in the fam, fam samples I3 and I4 without a row
    path = write_pheno(tmp_path / "p.tsv", ["F2", "F0", "FX", "F1"], ["I2", "I0", "IX", "I1"], [1, 0, 1, 1],
                       header=header)
    labels, info = dataset.load_phenotype(fam, fam_path="c.fam", pheno_path=path)
    np.testing.assert_array_equal(labels, [0, 1, 1, np.nan, np.nan])
    assert info["coding"] == "0/1"
    assert info["n_pheno_rows_not_in_fam"] == 1 and info["n_fam_samples_without_pheno_row"] == 2
    assert info["column"] == ("trait" if header else "P1")


def test_load_phenotype__tsv_column_choice(tmp_path):
    path = tmp_path / "p.tsv"
    pd.DataFrame({"FID": ["F0", "F1"], "IID": ["I0", "I1"], "a": [1, 2], "b": [0, 1]}).to_csv(path, sep="\t",
                                                                                              index=False)
    with pytest.raises(InputError, match=r"p\.tsv: 2 trait columns \(a, b\); choose one with --pheno-col"):
        dataset.load_phenotype(_fam(2), pheno_path=path)
    with pytest.raises(InputError, match=r"no column 'c' .*fix --pheno-col"):
        dataset.load_phenotype(_fam(2), pheno_path=path, pheno_col="c")
    labels, info = dataset.load_phenotype(_fam(2), pheno_path=path, pheno_col="a")
    np.testing.assert_array_equal(labels, [0, 1])
    assert info["coding"] == "1/2"


def test_load_phenotype__no_overlap(tmp_path):
    path = write_pheno(tmp_path / "p.tsv", ["A", "B"], ["X", "Y"], [0, 1])
    with pytest.raises(InputError, match=r"p\.tsv: none of its 2 \(FID, IID\) pairs is in c\.fam; "):
        dataset.load_phenotype(_fam(3), fam_path="c.fam", pheno_path=path)


def test_load_phenotype__fid_mismatch_hint(tmp_path):
    path = write_pheno(tmp_path / "p.tsv", ["0", "0"], ["I0", "I1"], [0, 1])
    with pytest.raises(InputError, match=r"2 IIDs match but their FIDs differ"):
        dataset.load_phenotype(_fam(3), fam_path="c.fam", pheno_path=path)


def test_load_phenotype__duplicated_ids(tmp_path):
    path = write_pheno(tmp_path / "p.tsv", ["F0", "F0"], ["I0", "I0"], [0, 1])
    with pytest.raises(InputError, match=r"1 duplicated \(FID, IID\) pairs"):
        dataset.load_phenotype(_fam(3), pheno_path=path)


def test_check_both_classes__one_class():
    with pytest.raises(InputError, match=r"p\.tsv: only one class \(0 cases, 3 controls"):
        dataset.check_both_classes(np.array([0, 0, 0]), source="p.tsv")


# -- validation split and balancing -------------------------------------------------------------------

def test_validation_split__counts_and_seed():
    labels = np.array([1] * 40 + [0] * 100)
    is_val, info = validation_split(labels, n_val_cases=10, n_val_controls=30, seed=7)
    assert (is_val & (labels == 1)).sum() == 10 and (is_val & (labels == 0)).sum() == 30
    again, _ = validation_split(labels, n_val_cases=10, n_val_controls=30, seed=7)
    other, _ = validation_split(labels, n_val_cases=10, n_val_controls=30, seed=8)
    np.testing.assert_array_equal(is_val, again)
    assert not np.array_equal(is_val, other)
    assert info["n_train_cases"] == 30 and not info["capped"]


def test_validation_split__capped_at_half(caplog):
    labels = np.array([1] * 41 + [0] * 1000)
    with caplog.at_level(logging.WARNING):
        is_val, info = validation_split(labels, seed=1)
    assert info["n_val_cases"] == 20 and info["n_val_controls"] == 150 and info["capped"]
    assert (is_val & (labels == 1)).sum() == 20
    assert "capped at 20" in caplog.text


def test_validation_split__strict_request_too_large():
    labels = np.array([1] * 41 + [0] * 1000)
    with pytest.raises(InputError, match=r"--val-cases 150: too few samples .*41 cases.*lower it to --val-cases 20"):
        validation_split(labels, seed=1, strict=(True, False))


def test_validation_split__class_too_small():
    with pytest.raises(InputError, match=r"too few cases for a validation split \(1\)"):
        validation_split(np.array([1, 0, 0, 0]), seed=1)


def test_check_training_size__minimum_per_class_and_override(caplog):
    labels = np.array([1] * 120 + [0] * 400)
    _, info = validation_split(labels, n_val_cases=60, n_val_controls=60, seed=1)
    check_training_size(info, minimum=MIN_TRAIN_PER_CLASS, source="p.tsv")  # 60 and 340 training: fine
    assert MIN_TRAIN_PER_CLASS == 50  # the documented number (docs/usage.md)
    _, info = validation_split(np.array([1] * 90 + [0] * 400), n_val_cases=45, seed=1)  # 45 training cases
    with pytest.raises(InputError, match=r"p\.tsv: 45 training cases after holding out 45 for validation.*"
                                         r"lower --val-cases to 40 or less, add samples, or pass --allow-few-samples"):
        check_training_size(info, minimum=50, source="p.tsv")
    _, info = validation_split(np.array([1] * 6 + [0] * 6), seed=1)  # the 12-sample cohort: 3 + 3 training
    with pytest.raises(InputError, match=r"3 training cases after holding out 3 .*; add samples, or pass"):
        check_training_size(info, minimum=50, source="p.tsv")
    with caplog.at_level("WARNING"):
        check_training_size(info, minimum=50, allow_few=True, source="p.tsv")
    assert "only 3 training cases (minimum 50), accepted because of --allow-few-samples" in caplog.text


def test_prepare_dataset__refuses_too_few_training_samples_before_reading(messy):
    prefix, *_ = messy
    with pytest.raises(InputError, match=r"training cases after holding out .* pass --allow-few-samples"):
        prepare_dataset(prefix, n_val_cases=2, n_val_controls=2)
    ds = prepare_dataset(prefix, n_val_cases=2, n_val_controls=2, allow_few_samples=True)
    assert ds.qc["split"]["allow_few_samples"] and ds.qc["split"]["min_train_per_class"] == 50


def test_balanced_training_index__cases_twice_half_controls():
    labels = np.array([0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0])  # 3 cases, 8 controls
    idx = balanced_training_index(labels, seed=3)
    counts = np.bincount(idx, minlength=len(labels))
    assert set(counts[labels == 1]) == {2}
    assert counts[labels == 0].sum() == 4 and set(counts[labels == 0]) <= {0, 1}
    assert len(idx) == 2 * 3 + 4 and idx.dtype == np.int64 and np.all(np.diff(idx) >= 0)
    np.testing.assert_array_equal(idx, balanced_training_index(labels, seed=3))
    seen = {tuple(balanced_training_index(labels, seed=s)) for s in range(10)}
    assert len(seen) > 1


def test_balanced_training_index__odd_and_single_control():
    assert np.bincount(balanced_training_index(np.array([1, 0, 0, 0]), seed=0), minlength=4)[1:].sum() == 1
    assert len(balanced_training_index(np.array([1, 0]), seed=0)) == 3  # one control kept


@pytest.mark.parametrize("n_cases, n_controls, rule, expected_cases, expected_controls", [
    # paper: cases twice, controls // 2 (hand-computed)
    (3, 8, "paper", 6, 4),
    (10, 30, "paper", 20, 15),
    # equal: T = min(2 * minority, majority) rows per class
    (3, 8, "equal", 6, 6),        # controls 8 >= 2*3: cases twice, 6 of 8 controls
    (10, 15, "equal", 15, 15),    # 15 < 2*10: cases once + 5 duplicated, every control once
    (8, 3, "equal", 6, 6),        # minority = controls: controls twice, 6 of 8 cases
    (5, 5, "equal", 5, 5),        # already equal: nothing dropped or duplicated
    (3, 8, "none", 3, 8),
    # auto: paper share 20/35 = 0.571 is inside [0.4, 0.6] -> paper
    (10, 30, "auto", 20, 15),
    # auto: paper share 20/(20+10) = 0.667 is outside -> equal
    (10, 20, "auto", 20, 20),
    # auto: paper share 2/(2+12) = 0.143 is outside -> equal
    (1, 24, "auto", 2, 2),
])
def test_balanced_training_index__rules_hand_counts(n_cases, n_controls, rule, expected_cases,
                                                    expected_controls):
    labels = np.random.default_rng(0).permutation(np.r_[np.ones(n_cases, int), np.zeros(n_controls, int)])
    idx = balanced_training_index(labels, seed=5, rule=rule)
    counts = np.bincount(idx, minlength=len(labels))
    assert counts[labels == 1].sum() == expected_cases and counts[labels == 0].sum() == expected_controls
    assert counts.max() <= 2 and np.all(np.diff(idx) >= 0) and idx.dtype == np.int64
    minority = 1 if n_cases <= n_controls else 0
    if rule in ("equal", "none"):  # the minority class is never dropped
        assert np.all(counts[labels == minority] >= 1)
    np.testing.assert_array_equal(idx, balanced_training_index(labels, seed=5, rule=rule))


def test_balanced_training_index__equal_seeded_subsample_varies():
    labels = np.r_[np.ones(3, int), np.zeros(8, int)]
    seen = {tuple(balanced_training_index(labels, seed=s, rule="equal")) for s in range(10)}
    assert len(seen) > 1


@pytest.mark.parametrize("n_cases, n_controls, expected", [
    (1664, 7175, "paper"),   # the paper's cohort after its 150 + 150 split: 3328 / 6915 = 0.481
    (850, 1850, "equal"),    # 1 000 of 3 000 after the split: 1700 / 2625 = 0.648
    (340, 540, "equal"),     # -profile test (400 of 1 000, 60 + 60 held out): 680 / 950 = 0.716
    (3, 8, "paper"),         # 6 / (6 + 4) = 0.6: the bounds are inside
    (2, 12, "paper"),        # 4 / (4 + 6) = 0.4
    (3, 7, "equal"),         # 6 / (6 + 3) = 0.667

])
def test_resolve_balance_rule__auto(n_cases, n_controls, expected):
    assert resolve_balance_rule("auto", n_cases, n_controls) == expected


def test_resolve_balance_rule__unknown():
    with pytest.raises(InputError, match="--balance best: unknown rule"):
        resolve_balance_rule("best", 3, 4)


def test_balance_summary__shares_before_after():
    labels = np.r_[np.ones(10, int), np.zeros(20, int)]
    summary = balance_summary(labels, balanced_training_index(labels, seed=1, rule="auto"), rule="auto")
    assert summary["rule_used"] == "equal"
    assert summary["before"] == {"n_cases": 10, "n_controls": 20, "case_share": pytest.approx(1 / 3)}
    assert summary["after"] == {"n_cases": 20, "n_controls": 20, "case_share": 0.5}
    assert paper_case_share(10, 20) == pytest.approx(2 / 3)


# -- QC helpers ---------------------------------------------------------------------------------------

def test_snp_statistics__hand_values():
    # SNP a: calls -1, 0, 1, missing; SNP b: all het; SNP c: all missing; SNP d: -1 -1 -1 -1
    snp_missing = np.array([1, 0, 4, 0])
    snp_sum = np.array([0, 0, 0, -4])
    snp_hom = np.array([2, 0, 0, 4])
    s = dataset.snp_statistics(snp_missing, snp_sum, snp_hom, n_samples=4)
    np.testing.assert_allclose(s["missing_rate"], [0.25, 0, 1, 0])
    np.testing.assert_allclose(s["maf"], [0.5, 0.5, 0, 0])
    np.testing.assert_array_equal(s["monomorphic"], [False, True, True, True])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compact_in_place__equals_fancy_indexing(seed):
    rng = np.random.default_rng(seed)
    g = rng.integers(-1, 2, size=(37, 29), dtype=np.int8)
    rows = np.sort(rng.choice(37, 25, replace=False))
    cols = np.sort(rng.choice(29, 11, replace=False))
    expected = g[np.ix_(rows, cols)].copy()
    got = dataset._compact_in_place(g, rows, cols, block_rows=4)
    np.testing.assert_array_equal(got, expected)
    assert got.flags.c_contiguous and np.shares_memory(got, g)


# -- prepare_dataset ----------------------------------------------------------------------------------

@pytest.fixture
def messy(tmp_path):
    """40 samples × 12 SNPs: unsorted positions, chromosomes 2/1/X/MT, a duplicate ID, a monomorphic and
    an all-heterozygous SNP, missing calls, 1/2 phenotype with 2 missing."""
    counts = random_counts(40, 12, seed=11, missing_rate=0.05)
    counts[:, 4] = 0  # monomorphic (all A1-absent)
    counts[:, 7] = 1  # all heterozygous
    chrom = ["2", "1", "1", "X", "2", "1", "MT", "2", "1", "1", "2", "1"]
    bp = [500, 300, 100, 10, 100, 200, 5, 300, 900, 400, 50, 700]
    ids = ["a", "b", "c", "d", "e", "b", "g", "h", "i", "j", "k", "l"]
    pheno = case_control(40, n_cases=14, seed=2).astype(str)
    pheno[[3, 17]] = "-9"
    prefix = write_fileset(tmp_path / "messy", counts, chrom=chrom, bp=bp, ids=ids, pheno=pheno)
    return prefix, counts, chrom, bp, pheno


def test_prepare_dataset__matrix_order_and_qc(messy):
    prefix, counts, chrom, bp, pheno = messy
    ds = prepare_dataset(prefix, n_val_cases=5, n_val_controls=5, split_seed=3, allow_few_samples=True)
    keep_rows = np.flatnonzero(pheno != "-9")
    # independent reference: autosomes sorted by (chromosome, position), minus SNPs 4 and 7
    auto = [j for j in range(12) if chrom[j] in ("1", "2")]
    order = sorted(auto, key=lambda j: (int(chrom[j]), bp[j]))
    order = [j for j in order if j not in (4, 7)]
    sub = counts[np.ix_(keep_rows, order)]
    np.testing.assert_array_equal(ds.genotypes, np.where(np.isnan(sub), 0, sub - 1).astype(np.int8))
    assert ds.variants["BP"].tolist() == [bp[j] for j in order]
    assert ds.variants["SNP"].is_unique and "b_dup2" in set(ds.variants["SNP"])
    af = np.nanmean(sub, axis=0) / 2
    np.testing.assert_allclose(ds.variants["MAF"], np.minimum(af, 1 - af))
    np.testing.assert_allclose(ds.variants["MISSING"], np.isnan(sub).mean(axis=0))
    np.testing.assert_array_equal(ds.labels, (pheno[keep_rows] == "2").astype(np.int8))
    assert ds.samples["IID"].tolist() == [f"I{i}" for i in keep_rows]
    qc = ds.qc
    assert qc["variants"]["non_autosomal_dropped"] == {"MT": 1, "X": 1}
    assert qc["variants"]["removed"] == {"monomorphic": 2}
    assert qc["variants"]["duplicate_ids_renamed"] == 1
    assert qc["phenotype"]["n_samples_without_phenotype"] == 2
    assert qc["missing_calls"]["n_set_to_zero"] == int(np.isnan(sub).sum())
    assert (ds.val_mask & (ds.labels == 1)).sum() == 5


def test_prepare_dataset__keep_non_autosomal(messy):
    prefix, *_ = messy
    ds = prepare_dataset(prefix, qc=QCOptions(keep_non_autosomal=True, remove_monomorphic=False),
                         n_val_cases=2, n_val_controls=2, allow_few_samples=True)
    assert ds.variants["CHR"].tolist()[-2:] == ["X", "MT"] and ds.n_snps == 12
    assert ds.qc["variants"]["non_autosomal_kept"] == 2


def test_prepare_dataset__qc_thresholds(tmp_path):
    counts = random_counts(60, 30, seed=4, missing_rate=0.0)
    rng = np.random.default_rng(0)
    counts[rng.random(counts.shape) < np.linspace(0, 0.3, 30)] = np.nan  # missing rate rising along SNPs
    counts[:5, :] = np.where(rng.random((5, 30)) < 0.6, np.nan, counts[:5, :])  # 5 bad samples
    counts[:, 0] = np.where(np.isnan(counts[:, 0]), np.nan, 0)
    counts[7, 0] = 1  # rare SNP: MAF tiny
    prefix = write_fileset(tmp_path / "q", counts, pheno=case_control(60, n_cases=20, seed=1))
    qc = QCOptions(max_snp_missing=0.1, min_maf=0.05, max_sample_missing=0.3)
    ds = prepare_dataset(prefix, qc=qc, n_val_cases=3, n_val_controls=3, allow_few_samples=True)
    # reference, PLINK order: --mind on all SNPs, then --geno, then --maf on the kept samples
    miss = np.isnan(counts)
    keep_s = miss.mean(axis=1) <= 0.3
    sub = counts[keep_s]
    rate = np.isnan(sub).mean(axis=0)
    af = np.nanmean(sub, axis=0) / 2
    maf = np.minimum(af, 1 - af)
    keep_v = (rate <= 0.1) & (maf >= 0.05)
    assert ds.n_samples == keep_s.sum() and ds.qc["samples"]["removed_sample_missing_rate"] == (~keep_s).sum()
    ref = sub[:, keep_v]
    np.testing.assert_array_equal(ds.genotypes, np.where(np.isnan(ref), 0, ref - 1))
    np.testing.assert_allclose(ds.variants["MISSING"], rate[keep_v])
    assert ds.qc["variants"]["removed"]["snp_missing_rate"] == int((rate > 0.1).sum())
    assert ds.qc["variants"]["removed"]["maf"] == int(((rate <= 0.1) & (maf < 0.05)).sum())


def test_prepare_dataset__fewer_than_two_snps(tmp_path):
    counts = random_counts(20, 3, seed=1)
    counts[:, 1:] = 2
    prefix = write_fileset(tmp_path / "few", counts, pheno=case_control(20, n_cases=8))
    with pytest.raises(InputError, match=r"few\.bim: 1 SNPs left after QC \(removed: monomorphic 2\).*relax"):
        prepare_dataset(prefix, n_val_cases=2, n_val_controls=2, allow_few_samples=True)


# -- quantitative traits (issue 18, item 2) --------------------------------------------------------------

def test_parse_quantitative_phenotype__values_and_missing():
    values = dataset.parse_quantitative_phenotype(pd.Series(["1.5", "-9", "NA", "0.25", "-3", "", "1e2"]),
                                                  source="p.tsv")
    np.testing.assert_array_equal(values, [1.5, np.nan, np.nan, 0.25, -3.0, np.nan, 100.0])


@pytest.mark.parametrize(("values", "message"), [
    (["0", "1", "1", "0"], r"p\.tsv: only the values 0, 1, a case/control coding; pass --trait-type binary"),
    (["1", "2", "-9", "2"], r"only the values 1, 2, a case/control coding; pass --trait-type binary"),
    (["0", "1", "2"], r"only the values 0, 1, 2, .*--trait-type binary"),
    (["0.5", "3.5", "0.5"], r"2 distinct phenotype values; a quantitative trait needs at least 3"),
    (["0.5", "tall", "1.5"], r"non-numeric phenotype values \('tall'\)"),
    (["0.5", "inf", "1.5"], r"non-numeric phenotype values \('inf'\)"),
])
def test_parse_quantitative_phenotype__refused(values, message):
    with pytest.raises(InputError, match=message):
        dataset.parse_quantitative_phenotype(pd.Series(values), source="p.tsv")


def test_parse_binary_phenotype__non_binary_names_the_quantitative_option():
    with pytest.raises(InputError, match=r"pass --trait-type quantitative"):
        dataset.parse_binary_phenotype(pd.Series(["0.5", "1.7", "2.2"]), source="p.tsv")


def test_random_validation_split__counts_seed_and_cap(caplog):
    is_val, info = dataset.random_validation_split(100, n_val=30, seed=4)
    assert is_val.sum() == 30 and info["n_train_samples"] == 70 and not info["capped"]
    np.testing.assert_array_equal(is_val, dataset.random_validation_split(100, n_val=30, seed=4)[0])
    with caplog.at_level(logging.WARNING):
        capped, info = dataset.random_validation_split(41, n_val=30, seed=4)
    assert capped.sum() == 20 and info["capped"]
    with pytest.raises(InputError, match=r"--val-cases \+ --val-controls 30: .*lower the sum to 20"):
        dataset.random_validation_split(41, n_val=30, seed=4, strict=True)


def test_check_training_size__quantitative_needs_twice_the_class_minimum():
    info = {"n_train_samples": 99, "n_val_samples": 10}
    with pytest.raises(InputError, match=r"99 training samples .*at least 100 samples.*lower --val-cases \+ "
                                         r"--val-controls to 9 or less"):
        check_training_size(info, minimum=50, source="p.tsv")
    check_training_size({"n_train_samples": 100, "n_val_samples": 10}, minimum=50, source="p.tsv")


def test_prepare_dataset__quantitative_trait(tmp_path):
    n = 300
    prefix = write_fileset(tmp_path / "c", random_counts(n, 12, seed=5), pheno=case_control(n, n_cases=100))
    trait = np.random.default_rng(5).normal(170, 10, n).round(3).astype(str)
    trait[7] = "-9"
    pheno = write_pheno(tmp_path / "p.tsv", [f"F{i}" for i in range(n)], [f"I{i}" for i in range(n)], trait)
    ds = prepare_dataset(prefix, pheno=pheno, n_val_cases=20, n_val_controls=10, trait_type="quantitative")
    assert ds.trait_type == "quantitative" and ds.labels.dtype == np.float64
    assert ds.n_samples == n - 1 and (ds.samples["split"] == "val").sum() == 30
    kept = np.delete(trait, 7).astype(float)
    np.testing.assert_array_equal(ds.labels, kept)
    assert ds.qc["samples"]["trait_mean"] == pytest.approx(kept.mean())
    assert ds.qc["phenotype"]["trait_type"] == "quantitative" and "n_cases" not in ds.qc["samples"]
    with pytest.raises(InputError, match=r"non-binary phenotype values .*--trait-type quantitative"):
        prepare_dataset(prefix, pheno=pheno, n_val_cases=20, n_val_controls=10)

"""annpal.io.plink: file-set checks, tables, chunked −1/0/1 reading, writing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bed_reader import open_bed
from helpers_input import random_counts, write_fileset

from annpal.errors import InputError
from annpal.io import plink


@pytest.fixture
def fileset(tmp_path):
    counts = random_counts(11, 7, seed=3, missing_rate=0.1)  # 11 samples: a partial last byte
    return write_fileset(tmp_path / "data", counts), counts


def test_open_fileset__dimensions(fileset):
    prefix, counts = fileset
    fs = plink.open_fileset(prefix)
    assert (fs.n_samples, fs.n_snps) == counts.shape
    assert plink.open_fileset(f"{prefix}.bed").bed == fs.bed  # extension tolerated


@pytest.mark.parametrize("ext", ["bed", "bim", "fam"])
def test_open_fileset__missing_file(fileset, ext):
    prefix, _ = fileset
    (prefix.parent / f"data.{ext}").unlink()
    with pytest.raises(InputError, match=rf"data\.{ext}: not found.*--bfile"):
        plink.open_fileset(prefix)


def test_open_fileset__wrong_magic(fileset):
    prefix, _ = fileset
    bed = prefix.parent / "data.bed"
    raw = bytearray(bed.read_bytes())
    raw[0:2] = b"\x00\x00"
    bed.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"data\.bed: not a PLINK 1 binary .bed.*make-bed"):
        plink.open_fileset(prefix)


def test_open_fileset__sample_major(fileset):
    prefix, _ = fileset
    bed = prefix.parent / "data.bed"
    raw = bytearray(bed.read_bytes())
    raw[2] = 0
    bed.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"sample-major.*SNP-major.*--make-bed"):
        plink.open_fileset(prefix)


@pytest.mark.parametrize("what", ["extra_fam_line", "missing_bim_line", "truncated_bed"])
def test_open_fileset__mismatched_files(fileset, what):
    prefix, _ = fileset
    d = prefix.parent
    if what == "extra_fam_line":
        with open(d / "data.fam", "a") as fh:
            # 11 -> 13 samples: a new byte per SNP (11 -> 12 would fit the padding bits of the
            # last byte, which no size check can see)
            fh.write("FX IX 0 0 1 -9\nFY IY 0 0 1 -9\n")
    elif what == "missing_bim_line":
        lines = (d / "data.bim").read_text().splitlines(keepends=True)
        (d / "data.bim").write_text("".join(lines[:-1]))
    else:
        raw = (d / "data.bed").read_bytes()
        (d / "data.bed").write_bytes(raw[:-1])
    with pytest.raises(InputError, match=r"data\.bed: \d+ bytes but .* imply \d+; .*do not belong together"):
        plink.open_fileset(prefix)


def test_read_genotypes__encoding_and_missing(fileset):
    prefix, counts = fileset
    g, stats = plink.read_genotypes(plink.open_fileset(prefix))
    expected = np.where(np.isnan(counts), 0, counts - 1).astype(np.int8)
    assert g.dtype == np.int8 and g.flags.c_contiguous
    np.testing.assert_array_equal(g, expected)
    miss = np.isnan(counts)
    np.testing.assert_array_equal(stats.snp_missing, miss.sum(axis=0))
    np.testing.assert_array_equal(stats.sample_missing, miss.sum(axis=1))
    np.testing.assert_array_equal(stats.snp_sum, np.nansum(counts - 1, axis=0).astype(int))
    np.testing.assert_array_equal(stats.snp_hom, ((counts == 0) | (counts == 2)).sum(axis=0))


def test_read_genotypes__chunks_subsets_and_order(tmp_path):
    counts = random_counts(23, 40, seed=5, missing_rate=0.05)
    fs = plink.open_fileset(write_fileset(tmp_path / "d", counts))
    rows = np.array([0, 3, 4, 5, 20, 22])
    cols = np.array([39, 2, 3, 4, 5, 17, 0, 21])
    g, stats = plink.read_genotypes(fs, sample_index=rows, snp_index=cols, chunk_bytes=len(rows) * 3)
    sub = counts[np.ix_(rows, cols)]
    np.testing.assert_array_equal(g, np.where(np.isnan(sub), 0, sub - 1))
    np.testing.assert_array_equal(stats.sample_missing, np.isnan(sub).sum(axis=1))
    whole, _ = plink.read_genotypes(fs)
    np.testing.assert_array_equal(plink.read_genotypes(fs, chunk_bytes=1)[0], whole)


def test_lazy_genotypes__reads_requested_columns(fileset):
    prefix, counts = fileset
    fs = plink.open_fileset(prefix)
    lazy = plink.LazyGenotypes(fs, np.array([6, 5, 4, 0]))
    assert lazy.shape == (11, 4)
    got = lazy[:, np.array([1, 3])]
    sub = counts[:, [5, 0]]
    np.testing.assert_array_equal(got, np.where(np.isnan(sub), 0, sub - 1))


def test_make_unique_ids__duplicates_and_missing():
    ids = pd.Series(["rs1", "rs2", "rs1", ".", "rs1", "rs1_dup2"])
    chrom = pd.Series(["1", "1", "2", "3", "4", "5"])
    bp = pd.Series([10, 20, 30, 40, 50, 60])
    new, n_filled, n_dup = plink.make_unique_ids(ids, chrom, bp)
    assert new.tolist() == ["rs1", "rs2", "rs1_dup3", "3:40", "rs1_dup4", "rs1_dup2"]
    assert (n_filled, n_dup) == (1, 2)
    assert new.is_unique


def test_read_bim__bad_position(tmp_path):
    bim = tmp_path / "x.bim"
    bim.write_text("1\trs1\t0\t100\tA\tG\n1\trs2\t0\tabc\tA\tG\n")
    with pytest.raises(InputError, match=r"x\.bim: line 2 has a non-integer position"):
        plink.read_bim(bim)


def test_read_fam__wrong_column_count(tmp_path):
    fam = tmp_path / "x.fam"
    fam.write_text("F1 I1 0 0 1\nF2 I2 0 0 1\n")
    with pytest.raises(InputError, match=r"x\.fam: 5 columns, expected 6"):
        plink.read_fam(fam)


def test_write_plink__roundtrip(tmp_path):
    counts = np.array([[0, 1, 2], [2, 2, 0], [1, 0, 1], [0, 0, 0], [2, 1, 1]], dtype=np.int8)
    fam = pd.DataFrame({"FID": list("abcde"), "IID": list("vwxyz"), "PAT": "0", "MAT": "0", "SEX": [1, 2, 1, 2, 1],
                        "PHENO": "-9"})
    bim = pd.DataFrame({"CHR": ["1", "1", "2"], "SNP": ["rs1", "rs2", "rs3"], "CM": [0.1, 0.2, 0.0],
                        "BP": [100, 200, 50], "A1": ["A", "C", "G"], "A2": ["T", "G", "C"]})
    plink.write_plink(tmp_path / "out", counts, fam=fam, bim=bim)
    assert not list(tmp_path.glob(".*tmp*"))
    with open_bed(tmp_path / "out.bed") as bed:
        np.testing.assert_array_equal(bed.read(dtype="int8"), counts)
        assert bed.iid.tolist() == list("vwxyz") and bed.sid.tolist() == ["rs1", "rs2", "rs3"]
    read = plink.read_bim(tmp_path / "out.bim")
    assert read["BP"].tolist() == [100, 200, 50] and read["A1"].tolist() == ["A", "C", "G"]


@pytest.mark.parametrize("order", ["C", "F"])
def test_encode_block__both_layouts(order):
    counts = np.array([[0, 1, 2, -127], [2, -127, 0, 1], [1, 1, 1, 1]], dtype=np.int8)
    block = np.array(counts, order=order)
    snp_missing, sample_missing, snp_sum, snp_hom = plink.encode_block(block)
    np.testing.assert_array_equal(block, [[-1, 0, 1, 0], [1, 0, -1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(snp_missing, [0, 1, 0, 1])
    np.testing.assert_array_equal(sample_missing, [1, 1, 0])
    np.testing.assert_array_equal(snp_sum, [0, 0, 0, 0])
    np.testing.assert_array_equal(snp_hom, [2, 0, 2, 0])

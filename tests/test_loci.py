"""Loci from PAL SNPs, lead SNPs and positional gene mapping (annpal.loci, docs/method.md §6)."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from results_fixture import IG_P, IG_PAL, P_BOUND, SM_PAL, build_results, variants

from annpal.errors import InputError
from annpal.loci import (
    LOCI_COLUMNS,
    call_loci,
    loci_table,
    map_genes,
    pal_snps,
    read_genes,
)
from annpal.results import Layout


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return build_results(tmp_path_factory.mktemp("loci") / "R")


def _pal(rows):
    return pd.DataFrame(rows, columns=["SNP", "CHR", "BP", "amas", "p_value", "p_bound", "p_text"])


def test_call_loci__lead_smallest_p_then_largest_amas():
    pal = _pal([
        ("a", "1", 1_000, 0.50, 0.010, 1e-4, "0.01"),
        ("b", "1", 60_000, 0.40, 0.0, 1e-4, "< 1e-04"),
        ("c", "1", 120_000, 0.60, 0.0, 1e-4, "< 1e-04"),  # same P as b, larger AMAS: lead
        ("d", "1", 300_000, 0.90, 0.5, 1e-4, "0.5"),
        ("e", "2", 10, 0.10, 0.2, 1e-4, "0.2"),
    ])
    loci = call_loci(pal)
    assert loci["locus"].tolist() == [1, 2, 3]
    first = loci.iloc[0]
    assert (first["chr"], first["start"], first["end"], first["n_snps"]) == ("1", 1_000, 120_000, 3)
    assert (first["lead_snp"], first["lead_bp"], first["lead_p"], first["lead_p_text"]) == ("c", 120_000, 0.0, "< 1e-04")
    assert first["lead_amas"] == 0.60
    assert first["snps"] == "a,b,c"
    assert loci.iloc[1]["lead_snp"] == "d" and loci.iloc[2]["chr"] == "2"


def test_call_loci__missing_p_falls_back_to_amas():
    pal = _pal([("a", "1", 1, 0.2, np.nan, np.nan, None), ("b", "1", 2, 0.7, np.nan, np.nan, None)])
    loci = call_loci(pal)
    assert loci.iloc[0]["lead_snp"] == "b"
    assert loci.iloc[0]["lead_p_text"] == "NA"


def test_call_loci__p_text_made_when_absent():
    pal = pd.DataFrame({"SNP": ["a"], "CHR": ["1"], "BP": [5], "amas": [1.0], "p_value": [0.0], "p_bound": [2e-6]})
    assert call_loci(pal).iloc[0]["lead_p_text"] == "< 2e-06"


def test_call_loci__empty():
    assert call_loci(_pal([])).empty


def test_read_genes__bed_zero_based_to_one_based(tmp_path):
    bed = tmp_path / "genes.bed"
    bed.write_text("track name=genes\n#comment\nchr1\t999\t2000\tGENE1\t0\t+\n2\t0\t10\tGENE2\n")
    genes = read_genes(bed)
    assert genes.to_dict("records") == [
        {"chrom": "1", "start": 1000, "end": 2000, "name": "GENE1"},
        {"chrom": "2", "start": 1, "end": 10, "name": "GENE2"},
    ]


def test_read_genes__gtf_gene_features_and_names(tmp_path):
    gtf = tmp_path / "genes.gtf.gz"
    lines = [
        "#!genome-build GRCh37",
        'chr1\tHAVANA\tgene\t1000\t2000\t.\t+\t.\tgene_id "ENSG1"; gene_name "ALPHA"; gene_type "protein_coding";',
        'chr1\tHAVANA\ttranscript\t1000\t2000\t.\t+\t.\tgene_id "ENSG1"; transcript_id "T1"; gene_name "ALPHA";',
        '1\tHAVANA\tgene\t5000\t6000\t.\t-\t.\tgene_id "ENSG2";',
    ]
    with gzip.open(gtf, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    genes = read_genes(gtf)
    assert genes.to_dict("records") == [
        {"chrom": "1", "start": 1000, "end": 2000, "name": "ALPHA"},
        {"chrom": "1", "start": 5000, "end": 6000, "name": "ENSG2"},
    ]


def test_read_genes__sniffs_gtf_without_extension(tmp_path):
    path = tmp_path / "annotation.txt"
    path.write_text('7\tsrc\tgene\t10\t20\t.\t+\t.\tgene_id "G"; gene_name "SEVEN";\n')
    assert read_genes(path)["name"].tolist() == ["SEVEN"]


@pytest.mark.parametrize("text", ["chr1\tabc\t10\tG\n", "chr1\t10\n"])
def test_read_genes__bad_bed_raises(tmp_path, text):
    bed = tmp_path / "bad.bed"
    bed.write_text(text)
    with pytest.raises(InputError, match="bad.bed:1"):
        read_genes(bed)


def test_read_genes__no_genes_raises(tmp_path):
    gtf = tmp_path / "x.gtf"
    gtf.write_text('1\ts\texon\t1\t2\t.\t+\t.\tgene_id "A";\n')
    with pytest.raises(InputError, match="no genes"):
        read_genes(gtf)


def test_map_genes__window_edges_and_chrom_names():
    loci = pd.DataFrame({"chr": ["1", "chr2", "3"], "start": [500_000, 1_000, 10], "end": [600_000, 2_000, 20]})
    genes = pd.DataFrame({
        "chrom": ["1", "1", "1", "1", "2"],
        "start": [700_000, 700_001, 390_000, 550_000, 50_000],
        "end": [800_000, 800_000, 400_000, 560_000, 60_000],
        "name": ["EDGE_IN", "EDGE_OUT", "LEFT_IN", "INSIDE", "CHR2"],
    })
    # chr1 locus ± 100 kb = [400 000, 700 000]: EDGE_IN starts at 700 000 (in), EDGE_OUT at 700 001 (out),
    # LEFT_IN ends at 400 000 (in). Listed by gene start.
    assert map_genes(loci, genes, window_bp=100_000) == ["LEFT_IN,INSIDE,EDGE_IN", "CHR2", "."]


def test_layout_methods__fixture(results):
    assert Layout(results).methods() == ["ig", "sm"]


def test_pal_snps__joins_pvalues(results):
    snps, thresholds = pal_snps(results, "ig")
    assert thresholds == ["99.99", "99.95"]
    got = {(t, i): p for t, i, p in zip(snps["threshold"], snps["index"], snps["p_value"], strict=True)}
    assert got == IG_P
    assert set(snps.loc[snps["p_value"] == 0, "p_bound"]) == {P_BOUND}


def test_pal_snps__pal_tsv_fallback(tmp_path):
    results = build_results(tmp_path / "R", gwas=False, evaluation=False)
    (results / "pal" / "ig" / "scores.tsv").unlink()
    snps, thresholds = pal_snps(results, "ig")
    assert thresholds == ["99.99", "99.95"]
    assert sorted(snps.loc[snps["threshold"] == "99.95", "index"]) == IG_PAL["99.95"]


def test_loci_table__fixture(results):
    loci = loci_table(results)
    assert list(loci.columns) == LOCI_COLUMNS
    v = variants()
    ig = loci[(loci["method"] == "ig") & (loci["threshold"] == "99.95")]
    # Hand: {10, 11, 14} (110-150 kb, lead 14: P 0 tied with 11, larger AMAS), {25} at 260 kb, {160, 161} on chr2.
    assert ig["snps"].tolist() == [",".join(v["SNP"][[10, 11, 14]]), v["SNP"][25], ",".join(v["SNP"][[160, 161]])]
    assert ig["lead_snp"].tolist() == [v["SNP"][14], v["SNP"][25], v["SNP"][161]]
    assert ig["lead_p_text"].tolist() == ["< 3.333e-05", "0.04", "0.003"]
    sm = loci[(loci["method"] == "sm") & (loci["threshold"] == "99.95")]
    assert sm["n_snps"].tolist() == [50, 10] and sm["start"].tolist() == [1_010_000, 10_000]
    assert len(SM_PAL["99.95"]) == 60
    assert (loci["genes"] == "NA").all()

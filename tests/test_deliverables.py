"""LDtrait, FUMA and GWAS-SSF deliverables (annpal.deliverables) and the annpal-annotate command."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from conftest import load_bin
from results_fixture import (
    GWAS_MISSING,
    IG_P,
    N_SAMPLES,
    N_SNPS,
    NON_RS,
    P_BOUND,
    SM_PAL,
    build_results,
    variants,
)

from annpal.deliverables import (
    SSF_MANDATORY,
    build_sumstats,
    chunk,
    fuma_leads,
    is_rsid,
    ldtrait_sets,
    method_columns,
    query_id,
    ssf_chromosome,
    ssf_metadata,
    write_ssf,
)
from annpal.loci import LOCI_COLUMNS

SSF_HEADER = SSF_MANDATORY + ["rsid", "n", "mas_ig", "amas_ig", "amas_p_ig", "mas_sm", "amas_sm", "amas_p_sm"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return build_results(tmp_path_factory.mktemp("deliv") / "R")


@pytest.fixture(scope="module")
def annotated(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("annot") / "N"
    res = CliRunner().invoke(load_bin("annpal-annotate"), ["--results", str(results), "--out-dir", str(out)])
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.parametrize("snp, expected", [
    ("rs123", True), ("rs1", True), ("RS123", False), ("rs12a", False), ("1:1000_A_G", False), ("rs", False),
    (" rs7 ", True),
])
def test_is_rsid__forms(snp, expected):
    assert is_rsid(snp) is expected


@pytest.mark.parametrize("snp, chrom, bp, expected", [
    ("rs42", "1", 10, "rs42"), ("1:10_A_G", "1", 10, "chr1:10"), ("x", "chr7", 99, "chr7:99"),
    ("kgp1", "23", 5, "chrX:5"),
])
def test_query_id__rsid_or_chr_pos(snp, chrom, bp, expected):
    assert query_id(snp, chrom, bp) == expected


@pytest.mark.parametrize("n, sizes", [(0, []), (1, [1]), (50, [50]), (51, [50, 1]), (120, [50, 50, 20])])
def test_chunk__at_most_50(n, sizes):
    items = [str(i) for i in range(n)]
    parts = chunk(items, 50)
    assert [len(p) for p in parts] == sizes
    assert [x for p in parts for x in p] == items


def test_ldtrait_sets__split_names_and_order():
    # 120 SNPs given in reverse, chromosomes "10" and "2": output sorted 2 before 10, by position.
    rows = [("99.95", i, f"rs{i}", "10" if i >= 60 else "2", 1000 * (i + 1)) for i in range(120)][::-1]
    pal = pd.DataFrame(rows, columns=["threshold", "index", "SNP", "CHR", "BP"])
    sets = ldtrait_sets(pal, method="ig", build="GRCh38")
    assert list(sets) == ["ig_99.95_GRCh38_part1.txt", "ig_99.95_GRCh38_part2.txt", "ig_99.95_GRCh38_part3.txt"]
    assert [len(v) for v in sets.values()] == [50, 50, 20]
    assert [x for v in sets.values() for x in v] == [f"rs{i}" for i in range(120)]


def test_ldtrait_sets__single_file_has_no_part_suffix():
    pal = pd.DataFrame({"threshold": ["99.99"], "index": [0], "SNP": ["1:5_A_C"], "CHR": ["1"], "BP": [5]})
    assert ldtrait_sets(pal, method="sm", build="GRCh37") == {"sm_99.99_GRCh37.txt": ["chr1:5"]}


def test_fuma_leads__columns():
    loci = pd.DataFrame({"lead_snp": ["rs1", "rs2"], "chr": ["1", "X"], "lead_bp": [10, 20]})
    leads = fuma_leads(loci)
    assert list(leads.columns) == ["rsID", "chr", "pos"]
    assert leads.values.tolist() == [["rs1", "1", 10], ["rs2", "X", 20]]


@pytest.mark.parametrize("chrom, code", [("1", 1), ("chr22", 22), ("X", 23), ("23", 23), ("Y", 24), ("MT", 25),
                                         ("XY", 23)])
def test_ssf_chromosome__codes(chrom, code):
    assert ssf_chromosome(chrom) == code


def test_method_columns__strictest_threshold_and_bound(results):
    frame, th = method_columns(results, "ig")
    assert th == "99.99"
    scores = pd.read_csv(results / "pal" / "ig" / "scores.tsv", sep="\t")
    np.testing.assert_array_equal(frame["amas"].to_numpy(), scores["amas_99.99"].to_numpy())
    expected = {i: (p if p > 0 else P_BOUND) for (t, i), p in IG_P.items() if t == "99.99"}
    got = frame["amas_p"].dropna().to_dict()
    assert got == pytest.approx(expected)


def test_build_sumstats__columns_sorted_missing(results):
    gwas = pd.read_csv(results / "gwas" / "gwas.tsv", sep="\t", dtype={"CHR": str})
    cols = {m: method_columns(results, m)[0] for m in ("sm", "ig")}
    table = build_sumstats(gwas, cols)
    assert list(table.columns) == SSF_HEADER
    v = variants()
    assert table["base_pair_location"].tolist() == v["BP"].tolist()  # input was reversed
    assert table["chromosome"].tolist() == [int(c) for c in v["CHR"]]
    rsid = table["rsid"].tolist()
    assert all(pd.isna(rsid[i]) for i in NON_RS) and rsid[0] == "rs1000"
    assert np.isnan(table["beta"][GWAS_MISSING[0]])


def test_write_ssf__hash_na(results, tmp_path):
    gwas = pd.read_csv(results / "gwas" / "gwas.tsv", sep="\t", dtype={"CHR": str})
    path = tmp_path / "s.tsv"
    write_ssf(path, build_sumstats(gwas, {"ig": method_columns(results, "ig")[0]}))
    lines = path.read_text().splitlines()
    rows = [line.split("\t") for line in lines[1:]]
    header = lines[0].split("\t")
    assert header[:8] == SSF_MANDATORY
    row5 = dict(zip(header, rows[GWAS_MISSING[0]], strict=True))
    assert row5["beta"] == row5["standard_error"] == row5["p_value"] == "#NA"
    row3 = dict(zip(header, rows[NON_RS[0]], strict=True))
    assert row3["rsid"] == "#NA"
    assert not any(cell in ("", "NA", "nan", "NaN") for r in rows for cell in r)


def test_ssf_metadata__fields_and_md5(tmp_path):
    data = tmp_path / "x.tsv"
    data.write_text("chromosome\n1\n")
    meta = ssf_metadata(data_file=data, build="GRCh38", sample_size=10, case_count=4, control_count=6, n_pcs=2,
                        amas_thresholds={"ig": "99.99"})
    assert meta["genome_assembly"] == "GRCh38"
    assert meta["coordinate_system"] == "1-based"
    assert meta["samples"] == [{"sample_size": 10, "case_control_study": True, "case_count": 4, "control_count": 6}]
    assert meta["data_file_name"] == "x.tsv"
    assert meta["data_file_md5sum"] == hashlib.md5(b"chromosome\n1\n").hexdigest()
    assert meta["is_harmonised"] is False and meta["is_sorted"] is True
    assert meta["file_type"].startswith("GWAS-SSF")
    assert meta["adjusted_covariates"] == ["PC1", "PC2"]
    assert "ig: 99.99" in meta["author_notes"]
    # the method actually run (annpal.gwas), not the authors' statsmodels Logit
    assert "batched IRLS logistic regression" in meta["analysis_software"]
    assert "statsmodels" not in meta["analysis_software"]


# ----------------------------------------------------------------------------------------------------
# annpal-annotate


def test_main__writes_every_file(annotated):
    names = sorted(p.name for p in annotated.iterdir())
    assert names == sorted(["annotate.json", "loci.tsv", "ldtrait", "sumstats.tsv", "sumstats.tsv-meta.yaml",
                            "fuma_leads_ig_99.99.tsv", "fuma_leads_ig_99.95.tsv", "fuma_leads_sm_99.99.tsv",
                            "fuma_leads_sm_99.95.tsv"])
    assert sorted(p.name for p in (annotated / "ldtrait").iterdir()) == sorted([
        "ig_99.99_GRCh37.txt", "ig_99.95_GRCh37.txt", "sm_99.99_GRCh37.txt", "sm_99.95_GRCh37_part1.txt",
        "sm_99.95_GRCh37_part2.txt"])


def test_main__loci_tsv(annotated):
    loci = pd.read_csv(annotated / "loci.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(loci.columns) == LOCI_COLUMNS
    assert len(loci) == 2 + 3 + 1 + 2
    first = loci.iloc[0]
    v = variants()
    assert (first["method"], first["threshold"], first["locus"], first["chr"]) == ("ig", "99.99", "1", "1")
    assert first["lead_snp"] == v["SNP"][14] and first["lead_p"] == "0"
    assert first["lead_p_text"] == "< 3.333e-05"
    assert first["genes"] == "NA"


def test_main__ldtrait_files(annotated):
    files = sorted((annotated / "ldtrait").glob("*.txt"))
    lines = {p.name: p.read_text().splitlines() for p in files}
    assert all(1 <= len(v) <= 50 for v in lines.values())
    sm = lines["sm_99.95_GRCh37_part1.txt"] + lines["sm_99.95_GRCh37_part2.txt"]
    assert len(sm) == len(SM_PAL["99.95"]) and (len(lines["sm_99.95_GRCh37_part1.txt"]), len(lines["sm_99.95_GRCh37_part2.txt"])) == (50, 10)
    # SNP 120 has a non-rs ID (chr1, 1 210 000 bp), SNP 14 too (chr1, 150 000 bp).
    assert "chr1:1210000" in sm
    assert lines["ig_99.99_GRCh37.txt"] == ["rs1010", "rs1011", "chr1:150000", "rs1160"]
    assert all(x.startswith("rs") or x.startswith("chr") for v in lines.values() for x in v)


def test_main__fuma_leads(annotated):
    leads = pd.read_csv(annotated / "fuma_leads_ig_99.95.tsv", sep="\t", dtype={"chr": str})
    assert list(leads.columns) == ["rsID", "chr", "pos"]
    v = variants()
    assert leads["rsID"].tolist() == [v["SNP"][14], v["SNP"][25], v["SNP"][161]]
    assert leads["pos"].tolist() == [150_000, 260_000, 120_000]


def test_main__sumstats_and_yaml(annotated):
    path = annotated / "sumstats.tsv"
    header = path.read_text().splitlines()[0].split("\t")
    assert header == SSF_HEADER
    table = pd.read_csv(path, sep="\t", na_values=["#NA"], keep_default_na=False)
    assert len(table) == N_SNPS
    keys = list(zip(table["chromosome"], table["base_pair_location"], strict=True))
    assert keys == sorted(keys)
    assert table["amas_p_sm"].isna().all()  # no pvalues for sm
    assert table["amas_p_ig"].notna().sum() == 4
    meta = yaml.safe_load((annotated / "sumstats.tsv-meta.yaml").read_text())
    assert meta["data_file_md5sum"] == hashlib.md5(path.read_bytes()).hexdigest()
    assert meta["data_file_name"] == "sumstats.tsv"
    assert meta["genome_assembly"] == "GRCh37" and meta["coordinate_system"] == "1-based"
    assert meta["samples"][0]["sample_size"] == N_SAMPLES
    assert (meta["samples"][0]["case_count"], meta["samples"][0]["control_count"]) == (80, 120)
    assert meta["is_sorted"] is True and meta["is_harmonised"] is False
    info = json.loads((annotated / "annotate.json").read_text())
    assert info["sumstats"]["amas_threshold"] == {"ig": "99.99", "sm": "99.99"}


def test_main__no_gwas_skips_sumstats(tmp_path):
    results = build_results(tmp_path / "R", gwas=False, evaluation=False)
    out = tmp_path / "N"
    res = CliRunner().invoke(load_bin("annpal-annotate"), ["--results", str(results), "--out-dir", str(out),
                                                           "--build", "GRCh38"])
    assert res.exit_code == 0, res.output
    assert not (out / "sumstats.tsv").exists()
    info = json.loads((out / "annotate.json").read_text())
    assert info["sumstats"] is None and any("gwas" in n for n in info["notes"])
    assert (out / "ldtrait" / "ig_99.99_GRCh38.txt").is_file()


@pytest.mark.parametrize("kind", ["bed", "gtf"])
def test_main__genes(tmp_path, results, kind):
    if kind == "bed":
        genes = tmp_path / "genes.bed"
        genes.write_text("chr1\t199999\t210000\tNEAR\nchr1\t260001\t270000\tFAR\nchr2\t1000\t2000\tTWO\n")
    else:
        genes = tmp_path / "genes.gtf"
        genes.write_text('chr1\ts\tgene\t200000\t210000\t.\t+\t.\tgene_id "E1"; gene_name "NEAR";\n'
                         'chr1\ts\tgene\t260001\t270000\t.\t+\t.\tgene_id "E2"; gene_name "FAR";\n'
                         '2\ts\tgene\t1001\t2000\t.\t+\t.\tgene_id "E3"; gene_name "TWO";\n')
    out = tmp_path / "N"
    res = CliRunner().invoke(load_bin("annpal-annotate"), ["--results", str(results), "--genes", str(genes),
                                                           "--gene-window-kb", "50", "--out-dir", str(out)])
    assert res.exit_code == 0, res.output
    loci = pd.read_csv(out / "loci.tsv", sep="\t", dtype=str, keep_default_na=False)
    ig = loci[(loci["method"] == "ig") & (loci["threshold"] == "99.99")]
    # locus 1: 110-150 kb ± 50 kb = [60 000, 200 000]: NEAR starts at 200 000 (1-based) -> in, FAR out;
    # locus 2 (chr2, 110 000): [60 000, 160 000]: TWO (1 001-2 000) out.
    assert ig["genes"].tolist() == ["NEAR", "."]


def test_main__no_pal_is_one_line_error(tmp_path):
    (tmp_path / "R" / "prepared").mkdir(parents=True)
    res = CliRunner().invoke(load_bin("annpal-annotate"), ["--results", str(tmp_path / "R"), "--out-dir",
                                                           str(tmp_path / "N")])
    assert res.exit_code == 1
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("[ERROR]") and "pal" in lines[0]
    assert not (tmp_path / "N").exists()


def test_main__bad_genes_file(tmp_path, results):
    bad = tmp_path / "genes.bed"
    bad.write_text("chr1\tx\ty\tG\n")
    res = CliRunner().invoke(load_bin("annpal-annotate"), ["--results", str(results), "--genes", str(bad),
                                                           "--out-dir", str(tmp_path / "N")])
    assert res.exit_code == 1 and "[ERROR]" in res.output and "genes.bed:1" in res.output


def test_main__refuses_foreign_out_dir(tmp_path, results):
    out = tmp_path / "N"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    res = CliRunner().invoke(load_bin("annpal-annotate"), ["--results", str(results), "--out-dir", str(out)])
    assert res.exit_code == 1 and (out / "precious.txt").read_text() == "keep"


def test_main__rerun_replaces_and_versions(tmp_path, results):
    out, versions = tmp_path / "N", tmp_path / "versions.yml"
    cmd = load_bin("annpal-annotate")
    for _ in range(2):
        res = CliRunner().invoke(cmd, ["--results", str(results), "--out-dir", str(out), "--ldtrait-max", "20",
                                       "--versions", str(versions)])
        assert res.exit_code == 0, res.output
    parts = sorted(p.name for p in (out / "ldtrait").glob("sm_99.95_*"))
    assert len(parts) == 3  # 60 SNPs at 20 per file
    assert versions.read_text().startswith('"ANNOTATE":')


def test_main__usage_errors(tmp_path):
    cmd = load_bin("annpal-annotate")
    assert CliRunner().invoke(cmd, ["--results", str(tmp_path / "missing"), "--out-dir", "x"]).exit_code == 2
    assert CliRunner().invoke(cmd, ["--results", str(tmp_path), "--out-dir", "x", "--build", "hg19"]).exit_code == 2
    assert CliRunner().invoke(cmd, ["--results", str(tmp_path), "--out-dir", "x", "--ldtrait-max", "51"]).exit_code == 2
    help_text = CliRunner().invoke(cmd, ["--help"]).output
    assert "--locus-kb" in help_text and "default: 100.0" in help_text

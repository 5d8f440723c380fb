"""The HTML report and its figures (annpal.report) and the annpal-report command."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import load_bin
from results_fixture import N_SAMPLES, build_annotated_report, build_results, sample_ids
from scipy import stats

from annpal.report import build_report
from annpal.report import plots as P
from annpal.report.html import Section, render_page, table

EXPECTED_PLOTS = {"manhattan_mas_ig", "manhattan_mas_sm", "null_fit_ig", "mas_correlation_ig", "mas_correlation_sm",
                  "manhattan_lr", "qq_lr", "training", "precision_recall", "p_threshold_panels"}


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    return build_annotated_report(tmp_path_factory.mktemp("report"), title="Test <cohort>")


def test_main__writes_html_and_plots(full_report):
    out, _ = full_report
    assert (out / "report.html").is_file()
    names = {p.stem for p in (out / "plots").iterdir()}
    assert names == EXPECTED_PLOTS
    for name in EXPECTED_PLOTS:
        assert (out / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (out / "plots" / f"{name}.svg").read_text()
        assert "<svg" in svg and "<dc:date>" not in svg
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_build_report__self_contained(full_report):
    html = (full_report[0] / "report.html").read_text()
    assert "<link" not in html.lower()
    assert not re.search(r"<script[^>]+src=", html, re.I)
    assert not re.search(r"\b(src|href)\s*=\s*[\"'](?!data:|#)", html, re.I)
    assert "url(" not in html
    assert html.count('src="data:image/png;base64,') == len(EXPECTED_PLOTS)
    assert "document.body.dataset.ready" in html


def test_build_report__no_individual_level_data(full_report):
    html = (full_report[0] / "report.html").read_text()
    ids = sample_ids() + [f"FAM_{i:05d}" for i in range(N_SAMPLES)]
    assert not [i for i in ids if i in html]
    assert "IND_" not in html and "FAM_" not in html


def test_build_report__contents(full_report):
    html = (full_report[0] / "report.html").read_text()
    assert "<title>Test &lt;cohort&gt;</title>" in html
    for text in ("<td>samples</td><td class=\"num\" data-sort=\"200.0\">200</td>",
                 "<td>cases</td><td class=\"num\" data-sort=\"80.0\">80</td>",
                 "removed.monomorphic", "n_samples_no_phenotype"):
        assert text in html
    # Warnings: the poor null fit, the low-AUC real model, the tiny hidden layers.
    assert "Warnings (3)" in html
    assert "not the best supported distribution" in html
    assert "real_s3: low validation AUC" in html and "tiny hidden layer sizes" in html
    # Sortable loci tables, one per method and threshold, with the lead P text escaped.
    for tid in ("loci-ig-99.99", "loci-ig-99.95", "loci-sm-99.99", "loci-sm-99.95"):
        assert f'id="{tid}" class="sortable loci"' in html
    assert "&lt; 3.333e-05" in html and 'data-sort="0.0"' in html
    # Parameters, versions, LR λGC, deliverables.
    assert "train.epochs" in html and "<td>torch</td><td>2.5.0</td>" in html
    assert "λGC" in html and "1.02" in html
    assert "sm_99.95_GRCh37_part1.txt" in html and "sumstats.tsv-meta.yaml" in html


def test_build_report__minimal_layout_notes_missing_parts(tmp_path):
    full = build_results(tmp_path / "full", gwas=False, pvalues=False, evaluation=False)
    results = tmp_path / "R"
    (results / "prepared").mkdir(parents=True)
    for name in ("variants.tsv", "samples.tsv", "qc.json"):
        (results / "prepared" / name).write_bytes((full / "prepared" / name).read_bytes())
    res = build_report(results, tmp_path / "O")
    html = res.html.read_text()
    assert res.plots == [] and res.warnings == []
    assert "No warnings" in html
    for part in ("pal/", "gwas/", "train/", "pipeline/params.json", "pipeline/versions.yml"):
        assert any(part in n for n in res.notes), part
    assert "Notes on missing parts" in html


def test_build_report__loci_computed_without_annotate(tmp_path):
    results = build_results(tmp_path / "R", gwas=False, evaluation=False, poor_null_fit=False)
    res = build_report(results, tmp_path / "O")
    html = res.html.read_text()
    assert 'id="loci-ig-99.95"' in html
    assert any("annotate/ absent" in n for n in res.notes)
    assert not any("null" in w and "calibrated" in w for w in res.warnings)


def test_main__bad_results_one_line_error(tmp_path):
    (tmp_path / "R").mkdir()
    res = CliRunner().invoke(load_bin("annpal-report"), ["--results", str(tmp_path / "R"), "--out-dir",
                                                         str(tmp_path / "O")])
    assert res.exit_code == 1
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("[ERROR]")
    assert not (tmp_path / "O" / "report.html").exists()


def test_main__versions_and_usage(tmp_path):
    results = build_results(tmp_path / "R", gwas=False, pvalues=False, evaluation=False)
    cmd = load_bin("annpal-report")
    res = CliRunner().invoke(cmd, ["--results", str(results), "--out-dir", str(tmp_path / "O"), "--versions",
                                   str(tmp_path / "v.yml")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "v.yml").read_text().startswith('"REPORT":')
    assert CliRunner().invoke(cmd, ["--out-dir", "x"]).exit_code == 2
    assert "default: annpal report" in CliRunner().invoke(cmd, ["--help"]).output


# ----------------------------------------------------------------------------------------------------
# Plots and HTML pieces


def test_cumulative_positions__order_and_offsets():
    x, rank, labels, centres = P.cumulative_positions(["2", "1", "10", "1", "X"], [5, 100, 1, 300, 7], gap=0.0)
    assert labels == ["1", "2", "10", "X"]
    assert rank.tolist() == [1, 0, 2, 0, 3]
    # chr1 spans 100..300 -> x 0..200; chr2 starts at 201; chr10 at 202; X at 203 (spans of 1 bp).
    assert x.tolist() == [201.0, 0.0, 202.0, 200.0, 203.0]
    assert centres[0] == 100.0


def test_tail_qq__exact_half_normal_is_identity():
    sigma = 0.3
    x = stats.halfnorm.ppf((np.arange(200_000) + 0.5) / 200_000, scale=sigma)
    theo, obs = P.tail_qq(x, sigma=sigma, tail_fraction=0.1, n_points=50)
    np.testing.assert_allclose(obs[:-1], theo[:-1], rtol=2e-3)


def test_plot_null_fit__from_json_arrays(tmp_path):
    edges = np.linspace(0, 1, 11)
    plot = P.plot_null_fit(method="ig", out_prefix=tmp_path / "n", sigma=0.3, hist=(edges, np.ones(10)),
                           qq=(np.arange(5.0), np.arange(5.0)), best="halfnorm")
    assert plot.png.is_file() and plot.svg.is_file()


def test_plot_mas_manhattan__large_svg_stays_small(tmp_path):
    n = 60_000
    scores = pd.DataFrame({"CHR": np.repeat(["1", "2", "3"], n // 3), "BP": np.tile(np.arange(1, n // 3 + 1) * 100, 3),
                           "mas_mean": np.random.default_rng(1).random(n), "pal_99.99": False, "pal_common_99.99": False})
    plot = P.plot_mas_manhattan(scores, method="ig", thresholds=["99.99"], out_prefix=tmp_path / "m")
    assert plot.svg.stat().st_size < 2_000_000  # rasterised scatter, not 60 000 SVG circles


def test_table__escapes_and_sort_keys():
    frame = pd.DataFrame({"name": ["<b>x</b>"], "p": ["< 1e-05"], "_p": [0.0]})
    html = table(frame, table_id="t", sortable=True, sort_keys={"p": "_p"})
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x" not in html
    assert "_p" not in html and 'data-sort="0.0"' in html and 'class="sortable"' in html


def test_render_page__placeholders_in_body_untouched():
    page = render_page(title="T", subtitle="S", sections=[Section("a", "A", "<p>{{title}}</p>")], generator="g")
    assert "<p>{{title}}</p>" in page and "<title>T</title>" in page


def test_build_report__degenerate_models_warned(tmp_path):
    results = build_results(tmp_path / "R", gwas=False, evaluation=False)
    models_tsv = next((results / "mas").glob("*_null")) / "models.tsv"
    models = pd.read_csv(models_tsv, sep="\t")
    models["degenerate"] = [1] + [0] * (len(models) - 1)
    models.to_csv(models_tsv, sep="\t", index=False)
    res = build_report(results, tmp_path / "O")
    assert any("degenerate" in w and "null" in w for w in res.warnings)


def test_build_report__null_pool_flags(tmp_path):
    results = build_results(tmp_path / "R", gwas=False, evaluation=False, poor_null_fit=False)
    fit_json = results / "pvalues" / "ig" / "null_fit.json"
    fit = json.loads(fit_json.read_text())
    fit.update(degenerate_null_models=[{"row": 1, "seed": 200002}], n_null_models_used=2, halfnorm_loc="free",
               sigma_free=0.0031, sigma_zero=0.0033, thresholds={"99.99": {"n_inexact_draws": 3}})
    fit_json.write_text(json.dumps(fit))
    res = build_report(results, tmp_path / "O")
    assert any("seed 200002" in w and "left out of the null pool" in w and "other 2" in w for w in res.warnings)
    assert any("re-run PVALUES with the prepared dataset" in w and "θ 99.99: 3" in w for w in res.warnings)
    assert any("free-loc" in n and "0.0031" in n for n in res.notes)


def test_build_report__quantitative_trait_shows_r2_and_samples(tmp_path):
    """A quantitative trait (qc.json phenotype.trait_type): R² instead of AUC, trait summary instead of
    case counts, the comparator named linear regression, and a warning for a real model with R² ≤ 0."""
    from annpal import results as R

    results = build_results(tmp_path / "R", evaluation=False)
    lay = R.Layout(results)
    qc = R.read(R.QC, lay.path(R.QC))
    R.write(R.QC, lay.path(R.QC), {**qc, "phenotype": {"trait_type": "quantitative"}})
    samples = R.read(R.SAMPLES, lay.path(R.SAMPLES))
    R.write(R.SAMPLES, lay.path(R.SAMPLES), samples.assign(label=np.linspace(150.0, 190.0, len(samples))))
    for model in lay.models():
        h = R.read(R.HISTORY, lay.path(R.HISTORY, model=model))
        r2 = -0.02 if model == "real_s1" else 0.1  # real_s1 is no better than the mean
        R.write(R.HISTORY, lay.path(R.HISTORY, model=model), h.assign(val_auc=np.nan, val_r2=r2))
    res = build_report(results, tmp_path / "O")
    html = res.html.read_text()
    assert "Linear comparator (linear regression)" in html and "final val R²" in html
    assert "final val AUC" not in html and "case share trained on" not in html
    assert "trait mean" in html and "train split (samples)" in html and ">cases<" not in html
    assert any(w.startswith("real_s1: low validation R² (-0.020 ≤ 0.0)") for w in res.warnings), res.warnings
    assert not any("validation AUC" in w for w in res.warnings)

"""The Nextflow pipeline end to end: ``-profile test`` (made smaller by tests/pipeline_small.config),
``-resume``, one more model, ``maxForks 1``, ``-stub`` of the whole DAG, and the library's code version
in every task hash.

Pipeline runs dominate the suite's time, so one module-scoped fixture makes the real run, its
``-resume`` and the ``--n_models + 1`` run once, and the tests read their trace files.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, nextflow_bin, nextflow_env

pytestmark = [
    pytest.mark.pipeline,
    pytest.mark.skipif(nextflow_bin() is None, reason="Nextflow not installed (make setup)"),
]

SMALL = REPO / "tests" / "pipeline_small.config"
N_MODELS, N_NULL, METHODS = 2, 2, ("ig", "pm")  # as in tests/pipeline_small.config


def run_nextflow(cwd: Path, *args: str, main: Path = REPO / "main.nf", timeout: int = 900
                 ) -> subprocess.CompletedProcess:
    """``nextflow run main.nf ARGS`` in ``cwd`` with its own work dir; output captured."""
    cmd = [nextflow_bin(), "run", str(main), "-work-dir", str(cwd / "work"), *args]
    return subprocess.run(cmd, cwd=cwd, env=nextflow_env(cwd), capture_output=True, text=True,
                          timeout=timeout)


def check(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"nextflow failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def read_trace(path: Path) -> list[dict[str, str]]:
    """Rows of a Nextflow trace file (tab separated, header line)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def statuses(trace: list[dict[str, str]]) -> dict[str, str]:
    """``{'TRAIN (real_s1)': 'COMPLETED', ...}``: short process name + tag -> status."""
    return {f"{row['process'].split(':')[-1]} ({row['tag']})": row["status"] for row in trace}


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory) -> dict[str, Path]:
    """One real run, then ``-resume`` unchanged, then ``-resume --n_models 3``; all in one folder."""
    root = tmp_path_factory.mktemp("pipeline")
    base = ["-profile", "test", "-c", str(SMALL), "--outdir", str(root / "results")]
    check(run_nextflow(root, *base, "-with-trace", str(root / "trace1.txt")))
    shutil.copytree(root / "results", root / "results_run1")
    check(run_nextflow(root, *base, "-resume", "-with-trace", str(root / "trace2.txt")))
    check(run_nextflow(root, *base, "-resume", "--n_models", str(N_MODELS + 1),
                       "-with-trace", str(root / "trace3.txt")))
    return {"root": root, "run1": root / "results_run1", "run3": root / "results"}


def test_pipeline__profile_test_writes_pal_tables_and_pvalues(small_runs):
    out = small_runs["run1"]
    for method in METHODS:
        scores = pd.read_csv(out / "pal" / method / "scores.tsv", sep="\t")
        assert len(scores) > 1000
        assert {"index", "CHR", "BP", "SNP", "mas_mean", "amas_99.99", "pal_99.95"} <= set(scores.columns)
        pal = pd.read_csv(out / "pal" / method / "pal.tsv", sep="\t")
        assert list(pal.columns[:4]) == ["threshold", "SNP", "CHR", "BP"]
        assert len(pal) > 0
        pvalues = pd.read_csv(out / "pvalues" / method / "pvalues.tsv", sep="\t")
        assert {"threshold", "SNP", "amas", "p_value", "p_text"} <= set(pvalues.columns)
        assert len(pvalues) > 0
        assert pvalues["p_value"].between(0, 1).all()
        for kind, seeds in (("real", range(1, N_MODELS + 1)), ("null", range(200001, 200001 + N_NULL))):
            models = pd.read_csv(out / "mas" / f"{method}_{kind}" / "models.tsv", sep="\t")
            assert models["seed"].tolist() == list(seeds)  # sorted by seed
    assert (out / "gwas" / "gwas.tsv").stat().st_size > 0
    assert (out / "evaluation" / "evaluation.tsv").stat().st_size > 0
    assert (out / "simulation" / "truth.tsv").stat().st_size > 0
    assert (out / "annotate" / "loci.tsv").exists()
    assert (out / "report" / "report.html").stat().st_size > 0
    assert sorted(p.name for p in (out / "train").iterdir()) == ["null_s1", "null_s2", "real_s1", "real_s2"]


def test_pipeline__profile_test_trains_balanced_and_alive(small_runs):
    """-profile test (issue 21): every network trains on balanced classes and none collapses."""
    for d in sorted((small_runs["run1"] / "train").iterdir()):
        info = json.loads((d / "train.json").read_text())
        # 340 cases / 540 controls in training: the paper's rule would give 72 % cases
        assert info["balance"]["rule_used"] == "equal" and info["balance"]["after"]["case_share"] == 0.5, d.name
        assert info["lr_rule"] == "auto" and info["warnings"] == [], d.name
        assert not info["collapsed"] and not info["training_collapsed"], d.name
        history = pd.read_csv(d / "history.tsv", sep="\t")
        assert (history["val_output_sd"] > 1e-6).all() and (history["val_dead_fraction"] < 1).all(), d.name


def test_pipeline__null_model_seeds_disjoint_from_real(small_runs):
    train = {d.name: json.loads((d / "train.json").read_text()) for d in (small_runs["run1"] / "train").iterdir()}
    real = {v["seed"] for k, v in train.items() if k.startswith("real_s")}
    null = {v["seed"] for k, v in train.items() if k.startswith("null_s")}
    permute = {v["permute_seed"] for k, v in train.items() if k.startswith("null_s")}
    assert real == set(range(1, N_MODELS + 1))
    assert null == {200000 + n for n in range(1, N_NULL + 1)}  # documented offset (docs/usage.md)
    assert permute == {100000 + n for n in range(1, N_NULL + 1)}
    assert not real & null and not real & permute and not null & permute
    assert all(train[f"real_s{k}"]["permute_seed"] is None for k in range(1, N_MODELS + 1))


def test_pipeline__pvalues_recount_every_draw_exactly(small_runs):
    for method in METHODS:
        info = json.loads((small_runs["run1"] / "pvalues" / method / "null_fit.json").read_text())
        assert {label: v["n_inexact_draws"] for label, v in info["thresholds"].items()} == {"99.99": 0, "99.95": 0}
        assert info["recount"]["dataset"] and info["halfnorm_loc"] == "zero"
        assert info["sigma"] == info["sigma_zero"] and 0 < info["sigma_free"] <= info["sigma_zero"]
        assert info["n_null_models_used"] + len(info["degenerate_null_models"]) == N_NULL


def test_pipeline__pipeline_info_has_versions_params_trace_dag(small_runs):
    info = small_runs["run1"] / "pipeline_info"
    versions = (info / "software_versions.yml").read_text()
    for process in ("PREPARE", "TRAIN", "ATTRIBUTE", "MERGE_MAS", "CALL_PAL", "PVALUES", "LOGISTIC_GWAS",
                    "EVALUATE", "ANNOTATE", "REPORT", "SIMULATE_PHENOTYPE"):
        assert f"{process}:" in versions, process
    assert "annpal_code: 0.1.0+" in versions and "torch:" in versions
    params = json.loads((info / "params.json").read_text())
    assert params["n_models"] == N_MODELS and params["methods"] == "ig,pm"
    # the trace goes where -with-trace says (see small_runs); without it, to pipeline_info/ too
    for pattern in ("execution_timeline_*.html", "execution_report_*.html", "pipeline_dag_*.mmd"):
        assert list(info.glob(pattern)), pattern
    assert "TRAIN" in next(info.glob("pipeline_dag_*.mmd")).read_text()


def test_pipeline__resume_runs_no_task(small_runs):
    first = read_trace(small_runs["root"] / "trace1.txt")
    second = read_trace(small_runs["root"] / "trace2.txt")
    assert {row["status"] for row in first} == {"COMPLETED"}
    assert len(second) == len(first)
    assert {row["status"] for row in second} == {"CACHED"}


def test_pipeline__one_more_model_reruns_only_its_tasks_and_the_merges(small_runs):
    third = statuses(read_trace(small_runs["root"] / "trace3.txt"))
    new = f"real_s{N_MODELS + 1}"
    completed = {name for name, status in third.items() if status == "COMPLETED"}
    expected = ({f"TRAIN ({new})"} | {f"ATTRIBUTE ({m}_{new})" for m in METHODS}
                | {f"MERGE_MAS ({m}_real)" for m in METHODS} | {f"CALL_PAL ({m})" for m in METHODS}
                | {f"PVALUES ({m})" for m in METHODS}
                | {"EVALUATE (cohort)", "ANNOTATE (cohort)", "REPORT (cohort)"})
    assert completed == expected
    cached = {name for name, status in third.items() if status == "CACHED"}
    assert f"TRAIN (real_s{N_MODELS})" in cached and "MERGE_MAS (ig_null)" in cached
    assert "LOGISTIC_GWAS (cohort)" in cached and "PREPARE (cohort)" in cached
    models = pd.read_csv(small_runs["run3"] / "mas" / "ig_real" / "models.tsv", sep="\t")
    assert models["seed"].tolist() == list(range(1, N_MODELS + 2))


def test_pipeline__max_forks_one_gives_identical_scores(small_runs, tmp_path):
    serial = tmp_path / "serial.config"
    serial.write_text("process.maxForks = 1\nexecutor.queueSize = 1\n")
    check(run_nextflow(tmp_path, "-profile", "test", "-c", str(SMALL), "-c", str(serial),
                       "--outdir", str(tmp_path / "results")))
    for method in METHODS:
        for part in (("pal", method, "scores.tsv"), ("pvalues", method, "pvalues.tsv"),
                     ("mas", f"{method}_real", "models.tsv")):
            parallel_file = small_runs["run1"].joinpath(*part)
            serial_file = tmp_path.joinpath("results", *part)
            assert serial_file.read_bytes() == parallel_file.read_bytes(), "/".join(part)


def test_pipeline__stub_runs_whole_dag(tmp_path):
    proc = check(run_nextflow(tmp_path, "-profile", "test", "-stub", "--outdir", str(tmp_path / "results"),
                              "-with-trace", str(tmp_path / "trace.txt")))
    ran = statuses(read_trace(tmp_path / "trace.txt"))
    n_real, n_null, n_methods = 3, 3, 3  # conf/test.config
    count = {p: sum(name.startswith(p + " ") for name in ran) for p in
             ("TRAIN", "ATTRIBUTE", "MERGE_MAS", "CALL_PAL", "PVALUES", "REPORT", "EVALUATE")}
    assert count == {"TRAIN": n_real + n_null, "ATTRIBUTE": (n_real + n_null) * n_methods,
                     "MERGE_MAS": 2 * n_methods, "CALL_PAL": n_methods, "PVALUES": n_methods,
                     "REPORT": 1, "EVALUATE": 1}
    out = tmp_path / "results"
    for part in ("prepared", "simulation", "train/real_s1", "train/null_s3", "attribution/pm_null_s3",
                 "mas/sm_null", "pal/ig", "pvalues/pm", "gwas", "evaluation", "annotate", "report",
                 "pipeline_info/software_versions.yml"):
        assert (out / part).exists(), part
    # the QC tables are published, the genotype matrix (individual-level data) is not
    assert sorted(p.name for p in (out / "prepared").iterdir()) == ["qc.json", "samples.tsv", "variants.tsv"]
    assert "annpal: done" in proc.stdout


def test_pipeline__stub_all_five_methods(tmp_path):
    # dl and sg go through the same ATTRIBUTE -> MERGE_MAS -> CALL_PAL -> PVALUES path as ig, sm, pm.
    check(run_nextflow(tmp_path, "-profile", "test", "-stub", "--outdir", str(tmp_path / "results"),
                       "--methods", "ig,sm,pm,dl,sg", "--n_models", "1", "--n_null_models", "1",
                       "-with-trace", str(tmp_path / "trace.txt")))
    ran = statuses(read_trace(tmp_path / "trace.txt"))
    assert sum(name.startswith("ATTRIBUTE ") for name in ran) == 2 * 5
    out = tmp_path / "results"
    for method in ("dl", "sg"):
        for part in (f"attribution/{method}_real_s1", f"mas/{method}_null", f"pal/{method}", f"pvalues/{method}"):
            assert (out / part).exists(), part


def test_pipeline__stub_nn_covariates_pcs_plus_file(tmp_path):
    """--nn_covariates pcs+file: one PCA task whose pcs.tsv both the comparator and every TRAIN (real and
    null) receive, with the --covar file; without --covar the run is refused before any task."""
    covar = tmp_path / "covar.tsv"
    covar.write_text("FID\tIID\tage\n")
    args = ["-profile", "test", "-stub", "--n_models", "1", "--n_null_models", "1", "--methods", "ig",
            "--outdir", str(tmp_path / "results")]
    check(run_nextflow(tmp_path, *args, "--nn_covariates", "pcs+file", "--covar", str(covar),
                       "-with-trace", str(tmp_path / "trace.txt")))
    trace = read_trace(tmp_path / "trace.txt")
    assert sum(name.startswith("PCA ") for name in statuses(trace)) == 1
    # what each task staged (a stub's .command.sh is the stub, its .command.run stages the real inputs)
    staged = {}
    for row in trace:
        run_file = next((tmp_path / "work").glob(row["hash"] + "*")) / ".command.run"
        staged.setdefault(row["process"].split(":")[-1], []).append(run_file.read_text())
    assert len(staged["TRAIN"]) == 2 and len(staged["LOGISTIC_GWAS"]) == 1
    for text in staged["TRAIN"]:
        assert "pcs.tsv" in text and "covar/covar.tsv" in text
    assert "pcs.tsv" in staged["LOGISTIC_GWAS"][0]
    out = tmp_path / "results"
    assert (out / "pca" / "pcs.tsv").is_file() and (out / "train" / "null_s1" / "covariates.tsv").is_file()
    refused = run_nextflow(tmp_path, *args, "--nn_covariates", "file")
    assert refused.returncode != 0 and "--nn_covariates file uses the --covar columns" in refused.stdout + refused.stderr


def _copy_pipeline(dest: Path) -> Path:
    """A copy of the pipeline code (not bin/, not the data) whose library source a test may edit."""
    for name in ("main.nf", "nextflow.config", "nextflow_schema.json", "pyproject.toml"):
        shutil.copy(REPO / name, dest / name)
    for name in ("conf", "modules", "subworkflows", "workflows", "src"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest / "main.nf"


def test_pipeline__library_change_invalidates_every_task(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    main = _copy_pipeline(code)
    args = ["-stub", "--bfile", str(REPO / "assets" / "testdata" / "cohort"), "--outdir", str(tmp_path / "out"),
            "--n_models", "1", "--n_null_models", "1", "--methods", "sm", "--skip_gwas"]
    check(run_nextflow(tmp_path, *args, main=main, timeout=300))
    check(run_nextflow(tmp_path, *args, "-resume", "-with-trace", str(tmp_path / "same.txt"), main=main))
    assert {row["status"] for row in read_trace(tmp_path / "same.txt")} == {"CACHED"}
    # one comment more in one library module: nothing may be reused
    model_py = code / "src" / "annpal" / "model.py"
    model_py.write_text(model_py.read_text() + "\n# changed\n")
    check(run_nextflow(tmp_path, *args, "-resume", "-with-trace", str(tmp_path / "changed.txt"), main=main))
    assert {row["status"] for row in read_trace(tmp_path / "changed.txt")} == {"COMPLETED"}


@pytest.mark.skipif(shutil.which("plink2") is None, reason="plink2 not installed (scripts/install-system-deps.sh)")
@pytest.mark.parametrize("fmt", ["pfile", "bgen_sample", "vcf"])
def test_pipeline__stub_each_genotype_input(fmt, tmp_path):
    from helpers_input import plink2_convert

    cohort = REPO / "assets" / "testdata" / "cohort"
    args = plink2_convert(cohort, tmp_path / "conv" / "cohort", fmt)
    params = [a.replace("--sample", "--bgen_sample") for a in args]  # annpal-prepare --sample = --bgen_sample
    proc = check(run_nextflow(tmp_path, "-profile", "test", "-stub", "--simulate", "false", "--pheno",
                              f"{cohort}.pheno.tsv", *params, "--n_models", "1", "--n_null_models", "1",
                              "--outdir", str(tmp_path / "results"), "-with-trace", str(tmp_path / "trace.txt")))
    ran = statuses(read_trace(tmp_path / "trace.txt"))
    assert ran["PREPARE (cohort)"] == "COMPLETED" and "annpal: done" in proc.stdout


def test_pipeline__quantitative_trait_end_to_end(tmp_path):
    """-profile test --trait_type quantitative (issue 18): the simulated trait is not binarised, the
    networks train with MSE (R² per epoch), attribution uses every sample, the comparator is linear
    regression and it recovers causal loci; the report speaks of R² and samples. Kept small: one real and
    two null models, IG only, 10 epochs (the networks' own result is reported in docs/method.md)."""
    out = tmp_path / "results"
    check(run_nextflow(tmp_path, "-profile", "test", "-c", str(SMALL), "--trait_type", "quantitative",
                       "--n_models", "1", "--n_null_models", "2", "--methods", "ig", "--epochs", "10",
                       "--outdir", str(out)))
    phenotype = pd.read_csv(out / "simulation" / "phenotype.tsv", sep="\t")["phenotype"]
    assert phenotype.nunique() > 900  # y itself, not 0/1
    assert json.loads((out / "prepared" / "qc.json").read_text())["phenotype"]["trait_type"] == "quantitative"
    for d in sorted((out / "train").iterdir()):
        history = pd.read_csv(d / "history.tsv", sep="\t")
        assert history["val_auc"].isna().all() and history["val_r2"].notna().all(), d.name
        assert json.loads((d / "train.json").read_text())["balance"]["rule_used"] == "none", d.name
    attr = json.loads((out / "attribution" / "ig_real_s1" / "attr.json").read_text())
    assert attr["n_samples_selected"] == 1000 and attr["trait_type"] == "quantitative"
    assert json.loads((out / "gwas" / "gwas.json").read_text())["regression"] == "linear"
    evaluation = pd.read_csv(out / "evaluation" / "evaluation.tsv", sep="\t", dtype={"p_threshold": str})
    lr = evaluation[(evaluation["method"] == "lr") & (evaluation["p_threshold"] == "1.7e-7")]
    assert int(lr["tp"].iloc[0]) >= 1  # the linear comparator recovers at least one causal locus
    assert (evaluation["method"] == "ig").any()
    html = (out / "report" / "report.html").read_text()
    assert "Linear comparator (linear regression)" in html and "final val R²" in html and "trait mean" in html
    assert "case share trained on" not in html

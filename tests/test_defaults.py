"""Defaults are written once, in the library: the commands' Click defaults come from it (annpal.cli.default_of),
and nextflow.config / nextflow_schema.json must say the same; conf/test_full.config states only what differs."""

from __future__ import annotations

import math

import pytest
from conftest import REPO, load_bin
from test_schema import PROPERTIES, config_params, groovy_value

from annpal.cli import default_of
from annpal.model import ModelConfig
from annpal.train import TrainConfig

#: Pipeline parameter -> (command, Click parameter) that receives it.
PARAM_OPTIONS = {
    "bgen_min_prob": ("annpal-prepare", "bgen_min_prob"), "trait_type": ("annpal-prepare", "trait_type"),
    "nn_covariates": ("annpal-train", "nn_covariates"),
    "val_cases": ("annpal-prepare", "val_cases"), "val_controls": ("annpal-prepare", "val_controls"),
    "split_seed": ("annpal-prepare", "split_seed"), "max_snp_missing": ("annpal-prepare", "max_snp_missing"),
    "min_maf": ("annpal-prepare", "min_maf"), "max_sample_missing": ("annpal-prepare", "max_sample_missing"),
    "sim_n_causal": ("annpal-simulate", "n_causal"), "sim_noise": ("annpal-simulate", "noise"),
    "sim_seed": ("annpal-simulate", "seed"), "sim_n_cases": ("annpal-simulate", "n_cases"),
    "sim_prevalence": ("annpal-simulate", "prevalence"),
    "eval_window_kb": ("annpal-evaluate", "window_kb"), "eval_block_kb": ("annpal-evaluate", "block_kb"),
    "eval_p_thresholds": ("annpal-evaluate", "p_thresholds"), "eval_pal_common": ("annpal-evaluate", "pal_common"),
    "epochs": ("annpal-train", "epochs"), "batch_size": ("annpal-train", "batch_size"),
    "weight_decay": ("annpal-train", "weight_decay"), "input_dropout": ("annpal-train", "input_dropout"),
    "hidden_dropout": ("annpal-train", "hidden_dropout"), "h1_divisor": ("annpal-train", "h1_divisor"),
    "h2_divisor": ("annpal-train", "h2_divisor"), "h1": ("annpal-train", "h1"), "h2": ("annpal-train", "h2"),
    "label_noise": ("annpal-train", "label_noise"), "input_noise": ("annpal-train", "input_noise"),
    "checkpoint_every": ("annpal-train", "checkpoint_every"), "device": ("annpal-train", "device"),
    "bf16": ("annpal-train", "bf16"), "input_dropout_kernel": ("annpal-train", "input_dropout_kernel"),
    "balance": ("annpal-train", "balance"), "keep": ("annpal-train", "keep"), "lr": ("annpal-train", "lr_text"),
    "collapsed_models": ("annpal-merge-mas", "collapsed_models"),
    "attr_impl": ("annpal-attribute", "impl"), "ig_steps": ("annpal-attribute", "n_steps"),
    "sg_samples": ("annpal-attribute", "sg_samples"), "sg_sigma": ("annpal-attribute", "sg_sigma"),
    "attr_batch_size": ("annpal-attribute", "batch_size"), "attr_memory_gb": ("annpal-attribute", "memory_gb"),
    "thresholds": ("annpal-call-pal", "thresholds"), "ld_window": ("annpal-call-pal", "ld_window"),
    "ld_r": ("annpal-call-pal", "ld_r"),
    "null_draws": ("annpal-pvalues", "draws"), "null_seed": ("annpal-pvalues", "seed"),
    "null_tail_fraction": ("annpal-pvalues", "tail_fraction"), "halfnorm_loc": ("annpal-pvalues", "halfnorm_loc"),
    "pvalues_all_snps": ("annpal-pvalues", "all_snps"),
    "n_pcs": ("annpal-gwas", "n_pcs"),
    "build": ("annpal-annotate", "build"), "locus_kb": ("annpal-annotate", "locus_kb"),
    "gene_window_kb": ("annpal-annotate", "gene_window_kb"), "report_title": ("annpal-report", "title"),
}
#: Parameters with no library counterpart: inputs, pipeline-level switches and counts, resources, and
#: on/off flags whose default is the flag's absence (keep_*, allow_few_samples, sim_permute).
NO_LIBRARY_COUNTERPART = {
    "bfile", "pfile", "bgen", "bgen_sample", "vcf", "pheno", "pheno_col", "covar", "outdir", "publish_dir_mode",
    "simulate", "sim_permute", "keep_monomorphic", "keep_non_autosomal", "allow_few_samples", "n_models",
    "n_null_models", "checkpoint_dir", "methods", "skip_gwas", "genes", "max_cpus", "max_memory",
    "max_time", "help", "container_image", "sif", "slurm_queue", "slurm_account", "slurm_cluster_options",
}


@pytest.fixture(scope="module")
def pipeline_defaults() -> dict[str, object]:
    return {name: groovy_value(value) for name, value in config_params((REPO / "nextflow.config").read_text()).items()}


@pytest.fixture(scope="module")
def click_defaults() -> dict[str, dict[str, object]]:
    commands = {command for command, _ in PARAM_OPTIONS.values()}
    return {command: {p.name: p.default for p in load_bin(command).params} for command in sorted(commands)}


def _same(a: object, b: object) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12)
    return a == b


def test_defaults__every_parameter_classified(pipeline_defaults):
    unknown = set(PROPERTIES) - set(PARAM_OPTIONS) - NO_LIBRARY_COUNTERPART
    assert not unknown, f"classify these parameters in tests/test_defaults.py: {sorted(unknown)}"
    assert not set(PARAM_OPTIONS) & NO_LIBRARY_COUNTERPART


@pytest.mark.parametrize("param", sorted(PARAM_OPTIONS))
def test_defaults__nextflow_config_and_schema_match_the_command(param, pipeline_defaults, click_defaults):
    command, option = PARAM_OPTIONS[param]
    assert option in click_defaults[command], f"{command} has no option {option}"
    library = click_defaults[command][option]
    assert _same(pipeline_defaults[param], library), f"nextflow.config {param} = {pipeline_defaults[param]!r}, " \
                                                     f"{command} default {library!r}"
    assert _same(PROPERTIES[param].get("default"), library), f"nextflow_schema.json {param}"


def test_defaults__click_defaults_come_from_the_config_dataclasses(click_defaults):
    train = click_defaults["annpal-train"]
    for name in ("epochs", "batch_size", "weight_decay", "label_noise", "input_noise", "checkpoint_every"):
        assert train[name] == default_of(TrainConfig, name)
    for name in ("input_dropout", "hidden_dropout", "h1_divisor", "h2_divisor"):
        assert train[name] == default_of(ModelConfig, name)


def test_default_of__dataclass_field_and_function_keyword():
    def f(a, *, b=3):
        return a + b

    assert default_of(TrainConfig, "epochs") == TrainConfig().epochs
    assert default_of(f, "b") == 3
    with pytest.raises(ValueError, match="no default"):
        default_of(f, "a")


def test_test_full_profile__states_only_what_differs(pipeline_defaults):
    profile = {name: groovy_value(value) for name, value in
               config_params((REPO / "conf" / "test_full.config").read_text()).items()}
    same = sorted(name for name, value in profile.items() if _same(value, pipeline_defaults.get(name)))
    assert not same, f"conf/test_full.config repeats defaults: {same}"

#!/usr/bin/env bash
# The simulation study of docs/validation.md (`make validation`): msprime genotypes (made once), the
# lambda = 1 and lambda = 3 scenarios and the null run (permuted phenotype) of -profile validation, then
# the summary tables and figures. Each run resumes its own finished tasks when started again.
#
# Environment (defaults are the documented study; tests/test_validation.py shrinks them):
#   VALIDATION_DIR            runs, genotypes and work dir           (validation)
#   VALIDATION_LAMBDAS        noise factors of the scenarios         ("1 3")
#   VALIDATION_NULL           1: also the null run                   (1)
#   VALIDATION_TESTDATA_ARGS  annpal-testdata options (not --out)    (4 000 samples, 4 x 50 Mb, 100 SNPs/Mb, seed 1)
#   VALIDATION_NF_ARGS        extra nextflow options, e.g. "-c small.config"
#   VALIDATION_SUMMARY        folder of the summary for the docs     (docs/validation)
set -euo pipefail

out=${VALIDATION_DIR:-validation}
lambdas=${VALIDATION_LAMBDAS:-"1 3"}
with_null=${VALIDATION_NULL:-1}
testdata_args=${VALIDATION_TESTDATA_ARGS:-"--n-samples 4000 --n-chromosomes 4 --chrom-length-mb 50 --snps-per-mb 100 --seed 1"}
nf_args=${VALIDATION_NF_ARGS:-}
summary=${VALIDATION_SUMMARY:-docs/validation}
repo=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$out/data"
out=$(cd "$out" && pwd)
log() { echo "[validation $(date -u +%H:%M:%S)] $*" >&2; }

# The genotypes are made once per set of options (a different set makes them again).
if [[ ! -f "$out/data/cohort.bed" || "$(cat "$out/data/testdata_args.txt" 2>/dev/null)" != "$testdata_args" ]]; then
    log "genotypes: annpal-testdata $testdata_args"
    rm -f "$out/data/cohort".* "$out/data/testdata_args.txt"
    start=$(date +%s)
    # shellcheck disable=SC2086  # options are words
    "$repo/bin/annpal-testdata" --out "$out/data/cohort" $testdata_args
    printf '%s\n' "$testdata_args" > "$out/data/testdata_args.txt"
    printf 'testdata\t%s\n' "$(( $(date +%s) - start ))" >> "$out/wall_seconds.tsv"
fi

run_scenario() {  # name, then nextflow options
    local name=$1; shift
    log "run $name: $*"
    local start; start=$(date +%s)
    # shellcheck disable=SC2086
    (cd "$out" && nextflow run "$repo/main.nf" -profile validation --bfile "$out/data/cohort" \
        --outdir "$out/$name" -work-dir "$out/work" -resume "$@" $nf_args)
    printf '%s\t%s\n' "$name" "$(( $(date +%s) - start ))" >> "$out/wall_seconds.tsv"
}

runs=()
for lambda in $lambdas; do
    run_scenario "lambda$lambda" --sim_noise "$lambda"
    runs+=(--run "lambda$lambda=$out/lambda$lambda")
done
null_args=()
if [[ "$with_null" == 1 ]]; then
    # the same run on a permuted phenotype, with the P-values of every SNP for the calibration
    run_scenario null --sim_noise 1 --sim_permute --pvalues_all_snps
    null_args=(--null "$out/null")
fi

log "summary -> $summary"
"$repo/bin/annpal-validation-summary" "${runs[@]}" "${null_args[@]}" --out-dir "$summary"
cp "$out/wall_seconds.tsv" "$summary/wall_seconds.tsv"
log "done: $(paste -sd' ' "$out/wall_seconds.tsv")"

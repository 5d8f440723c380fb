/*
 * REPORT: plots and one self-contained HTML report from the whole results layout R
 * (docs/output.md). R/pipeline/ (parameters and software versions) is written here from values,
 * so the task hash depends on their content, not on the time a file was made.
 */
process REPORT {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(prepared, stageAs: 'R/prepared')
    path simulation , stageAs: 'R/simulation'   // or []
    path train_dirs , stageAs: 'R/train/*'
    path mas_dirs   , stageAs: 'R/mas/*'
    path pal_dirs   , stageAs: 'R/pal/*'
    path pvalue_dirs, stageAs: 'R/pvalues/*'    // or []
    path gwas       , stageAs: 'R/gwas'         // or []
    path evaluation , stageAs: 'R/evaluation'   // or []
    path annotate   , stageAs: 'R/annotate'
    val params_json                             // JSON text -> R/pipeline/params.json
    val versions_yml                            // YAML text -> R/pipeline/versions.yml

    output:
    tuple val(meta), path('report'), emit: report
    path 'versions.yml'            , emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p R/pipeline
    cat <<'ANNPAL_PARAMS_END' > R/pipeline/params.json
${params_json}
ANNPAL_PARAMS_END
    cat <<'ANNPAL_VERSIONS_END' > R/pipeline/versions.yml
${versions_yml}
ANNPAL_VERSIONS_END
    annpal-report \\
        --results R \\
        ${args} \\
        --out-dir report \\
        --versions versions.yml \\
        --versions-process '${task.process}'
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p report/plots
    touch report/report.html versions.yml
    """
}

/*
 * ANNOTATE: PAL -> loci, LDtrait query files, GWAS-SSF summary statistics (docs/method.md §6).
 * Reads one results layout R (see docs/output.md) that this process assembles from the upstream
 * folders with stageAs; absent optional parts are staged as [] and skipped by the command.
 */
process ANNOTATE {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(prepared, stageAs: 'R/prepared')
    path simulation , stageAs: 'R/simulation'   // or []
    path pal_dirs   , stageAs: 'R/pal/*'
    path pvalue_dirs, stageAs: 'R/pvalues/*'    // or []
    path gwas       , stageAs: 'R/gwas'         // or []
    path genes                                  // gene BED/GTF, or []

    output:
    tuple val(meta), path('annotate'), emit: annotate
    path 'versions.yml'              , emit: versions

    script:
    def args      = task.ext.args ?: ''
    def genes_arg = genes ? "--genes ${genes}" : ''
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-annotate \\
        --results R \\
        ${genes_arg} \\
        ${args} \\
        --out-dir annotate \\
        --versions versions.yml \\
        --versions-process '${task.process}'
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p annotate/ldtrait
    touch annotate/loci.tsv annotate/sumstats.tsv annotate/sumstats.tsv-meta.yaml annotate/annotate.json versions.yml
    """
}

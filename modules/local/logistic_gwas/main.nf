/*
 * LOGISTIC_GWAS: the linear comparator, per-SNP logistic regression on genotype + principal
 * components (docs/method.md §7). Runs beside the networks; the PCs are the PCA step's (shared with
 * the networks). Output folder = results layout R/gwas.
 */
process LOGISTIC_GWAS {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(dataset)
    path covar   // covariate TSV, or []
    path pcs     // pcs.tsv of PCA, or [] (--n_pcs 0)

    output:
    tuple val(meta), path('gwas'), emit: gwas
    path 'versions.yml'          , emit: versions

    script:
    def args      = task.ext.args ?: ''
    def covar_arg = covar ? "--covar ${covar}" : ''
    def pcs_arg   = pcs ? "--pcs ${pcs}" : '--n-pcs 0'
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-gwas \\
        --dataset ${dataset} \\
        ${covar_arg} \\
        ${pcs_arg} \\
        ${args} \\
        --threads ${task.cpus} \\
        --out-dir gwas \\
        --versions versions.yml \\
        --versions-process '${task.process}'
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p gwas
    touch gwas/gwas.tsv gwas/gwas.json versions.yml
    """
}

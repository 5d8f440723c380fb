/*
 * PCA: principal components of the standardised genotypes, computed once per run (docs/method.md §7).
 * The comparator (LOGISTIC_GWAS --pcs) and, with --nn_covariates pcs or pcs+file, the networks (TRAIN)
 * read the same pcs.tsv. Output folder = results layout R/pca.
 */
process PCA {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(dataset)

    output:
    tuple val(meta), path('pca'), emit: pca
    path 'versions.yml'         , emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-pca \\
        --dataset ${dataset} \\
        ${args} \\
        --threads ${task.cpus} \\
        --out-dir pca \\
        --versions versions.yml \\
        --versions-process '${task.process}'
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p pca
    printf 'FID\\tIID\\tPC1\\n' > pca/pcs.tsv
    touch pca/pca.json versions.yml
    """
}

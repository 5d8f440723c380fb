/*
 * PVALUES: P-values of the PAL SNPs of one method from the null models' MAS (docs/method.md §5).
 * meta: [id: 'ig', method: 'ig']. Output folder = results layout R/pvalues/<method>.
 * The prepared dataset gives the LD band rows for exact recounts of null draws with ties at the cut.
 */
process PVALUES {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(real_dir, stageAs: 'in/real/*'), path(null_dir, stageAs: 'in/null/*'), path(pal_dir, stageAs: 'in/pal/*'), path(dataset, stageAs: 'in/dataset/*')

    output:
    tuple val(meta), path("${meta.id}"), emit: pvalues
    path 'versions.yml'                , emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-pvalues \\
        --mas ${real_dir}/mas_matrix.npy \\
        --null-mas ${null_dir}/mas_matrix.npy \\
        --scores ${pal_dir}/scores.tsv \\
        --dataset ${dataset} \\
        ${args} \\
        --out-dir ${meta.id} \\
        --versions versions.yml \\
        --versions-process '${task.process}'
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p ${meta.id}
    touch ${meta.id}/pvalues.tsv ${meta.id}/null_fit.tsv ${meta.id}/null_fit.json versions.yml
    """
}

/*
 * CALL_PAL: MAS matrix of the real models -> per-SNP scores, AMAS and PAL sets per threshold
 * (docs/method.md §4). meta: [id: 'ig', method: 'ig']. Output folder = results layout R/pal/<method>.
 */
process CALL_PAL {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(matrix_dir, stageAs: 'in/*'), path(dataset)

    output:
    tuple val(meta), path("${meta.id}"), emit: pal
    path 'versions.yml'                , emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-call-pal \\
        --dataset ${dataset} \\
        --mas ${matrix_dir}/mas_matrix.npy \\
        --method ${meta.method} \\
        ${args} \\
        --out-dir ${meta.id} \\
        --versions versions.yml \\
        --versions-process '${task.process}'
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p ${meta.id}
    touch ${meta.id}/scores.tsv ${meta.id}/pal.tsv ${meta.id}/pal.json versions.yml
    """
}

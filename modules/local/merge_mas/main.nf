/*
 * MERGE_MAS: the K x M MAS matrix of one (method, kind), rows sorted by seed so the result never
 * depends on the order attribution tasks finished in. meta: [id: 'ig_real', method: 'ig', kind: 'real'].
 * Output folder `<meta.id>/` = results layout R/mas/<method>_<kind>.
 */
process MERGE_MAS {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(mas_dirs, stageAs: 'in/*', arity: '1..*')

    output:
    tuple val(meta), path("${meta.id}"), emit: matrix
    path 'versions.yml'                , emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-merge-mas \\
        --method ${meta.method} \\
        --kind ${meta.kind} \\
        ${args} \\
        --out-dir ${meta.id} \\
        --versions versions.yml \\
        --versions-process '${task.process}' \\
        ${mas_dirs.join(' ')}
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p ${meta.id}
    touch ${meta.id}/mas_matrix.npy ${meta.id}/models.tsv ${meta.id}/excluded.tsv versions.yml
    """
}

/*
 * ATTRIBUTE: mean attribution scores (MAS) of one model by one method (docs/method.md).
 * meta: the model's meta plus [id: '<method>_<model id>', model: '<model id>', method: 'ig'|'sm'|'pm'|'dl'|'sg'].
 */
process ATTRIBUTE {
    tag "${meta.id}"
    label 'process_gpu'

    input:
    tuple val(meta), path(model_dir), path(dataset)

    output:
    tuple val(meta), path("${meta.id}"), emit: mas
    path 'versions.yml'                , emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-attribute \\
        --dataset ${dataset} \\
        --model ${model_dir}/model.pt \\
        --method ${meta.method} \\
        ${args} \\
        --threads ${task.cpus} \\
        --out-dir ${meta.id} \\
        --versions versions.yml \\
        --versions-process '${task.process}'
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p ${meta.id}
    touch ${meta.id}/mas.npy ${meta.id}/attr.json versions.yml
    """
}

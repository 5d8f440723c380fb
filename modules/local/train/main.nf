/*
 * TRAIN: one network per task (docs/method.md §2). meta: [id: 'real_s1', kind: 'real', seed: 1]
 * or [id: 'null_s1', kind: 'null', seed: 200001, permute_seed: 100001] (labels permuted).
 * Output folder `<meta.id>/` = results layout R/train/<id>.
 */
process TRAIN {
    tag "${meta.id}"
    label 'process_gpu'

    input:
    tuple val(meta), path(dataset)
    path nn_pcs     // pcs.tsv of PCA when --nn_covariates uses the PCs, else []
    path nn_covar, stageAs: 'covar/*'   // the --covar TSV when --nn_covariates uses it, else []

    output:
    tuple val(meta), path("${meta.id}"), emit: model
    path 'versions.yml'                , emit: versions

    script:
    def args     = task.ext.args ?: ''
    def null_arg = meta.kind == 'null' ? "--null --permute-seed ${meta.permute_seed}" : ''
    def cov_args = (nn_pcs ? "--pcs ${nn_pcs} " : '') + (nn_covar ? "--covar ${nn_covar}" : '')
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-train \\
        --dataset ${dataset} \\
        --seed ${meta.seed} \\
        ${null_arg} \\
        ${cov_args} \\
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
    touch ${meta.id}/model.pt ${meta.id}/history.tsv ${meta.id}/train.json versions.yml
    ${nn_pcs || nn_covar ? "touch ${meta.id}/covariates.tsv" : ''}
    """
}

/*
 * EVALUATE: with --simulate, precision and recall of the PAL sets (all PAL SNPs, and those with AMAS
 * P <= each P threshold) and of the LR hits against the simulated causal SNPs.
 * Output folder = results layout R/evaluation.
 */
process EVALUATE {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(simulation), path(dataset)
    path pal_dirs, stageAs: 'in/pal/*'
    path pvalue_dirs, stageAs: 'in/pvalues/*'   // pvalues/<method> folders, or []
    path gwas     // gwas/ folder, or []

    output:
    tuple val(meta), path('evaluation'), emit: evaluation
    path 'versions.yml'                , emit: versions

    script:
    def args     = task.ext.args ?: ''
    // each pal folder is named after its method (CALL_PAL writes <method>/); staged as in/pal/<method>
    def pal_args = (pal_dirs instanceof List ? pal_dirs : [pal_dirs])
        .collect { dir -> "--pal ${dir}/pal.tsv --pal-label ${dir.toString().tokenize('/')[-1]}" }
        .join(' ')
    // pvalues/<method>: the folder name is the method, matched to its --pal-label by annpal-evaluate
    def pvalue_args = (pvalue_dirs instanceof List ? pvalue_dirs : [pvalue_dirs])
        .findAll { dir -> dir }
        .collect { dir -> "--pvalues ${dir}" }
        .join(' ')
    def gwas_arg = gwas ? "--gwas ${gwas}/gwas.tsv" : ''
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-evaluate \\
        --truth ${simulation}/truth.tsv \\
        --dataset ${dataset} \\
        ${pal_args} \\
        ${pvalue_args} \\
        ${gwas_arg} \\
        ${args} \\
        --out-dir evaluation \\
        --versions versions.yml \\
        --versions-process '${task.process}'
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p evaluation
    touch evaluation/evaluation.tsv evaluation/evaluation.json versions.yml
    """
}

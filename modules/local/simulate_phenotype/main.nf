/*
 * SIMULATE_PHENOTYPE: a phenotype simulated on the input genotypes, with its causal truth
 * (docs/method.md §8). Output folder `simulation/` = results layout R/simulation.
 */
process SIMULATE_PHENOTYPE {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(bed), path(bim), path(fam)

    output:
    tuple val(meta), path('simulation')              , emit: simulation
    tuple val(meta), path('simulation/phenotype.tsv'), emit: phenotype
    path 'versions.yml'                              , emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-simulate \\
        --bfile ${bed.baseName} \\
        --threads ${task.cpus} \\
        ${args} \\
        --out-dir simulation \\
        --versions versions.yml \\
        --versions-process '${task.process}'
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p simulation
    touch simulation/phenotype.tsv simulation/truth.tsv simulation/simulate.json versions.yml
    """
}

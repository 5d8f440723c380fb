/*
 * PREPARE: PLINK fileset (+ optional phenotype TSV) -> QC'd, encoded, split prepared dataset
 * (METHOD.md section 1). Every later step reads `prepared/`, never the bed again.
 */
process PREPARE {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(bed), path(bim), path(fam)
    path pheno   // phenotype TSV, or [] to use the .fam phenotype

    output:
    tuple val(meta), path('prepared')                              , emit: dataset
    path 'prepared_tables'                                          , emit: tables   // published as prepared/; no genotypes.npy
    path 'versions.yml'                                             , emit: versions

    script:
    def args      = task.ext.args ?: ''
    def pheno_arg = pheno ? "--pheno ${pheno}" : ''
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-prepare \\
        --bfile ${bed.baseName} \\
        --threads ${task.cpus} \\
        ${pheno_arg} \\
        ${args} \\
        --out-dir prepared \\
        --versions versions.yml
    # the tables (not the genotype matrix) are what gets published; hard links cost nothing
    mkdir -p prepared_tables && ln -f prepared/qc.json prepared/samples.tsv prepared/variants.tsv prepared_tables/
    # key the versions by this pipeline's process name (nf-core convention)
    sed -i '1s/.*/"${task.process}":/' versions.yml
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p prepared
    touch prepared/genotypes.npy prepared/samples.tsv prepared/variants.tsv prepared/qc.json versions.yml
    mkdir -p prepared_tables && ln -f prepared/qc.json prepared/samples.tsv prepared/variants.tsv prepared_tables/
    """
}

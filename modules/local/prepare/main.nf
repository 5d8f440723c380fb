/*
 * PREPARE: genotypes (PLINK 1 or 2 fileset, BGEN or VCF) + optional phenotype TSV -> QC'd, encoded,
 * split prepared dataset (docs/method.md §1). Every later step reads `prepared/`, never the genotype files again.
 */
process PREPARE {
    tag "${meta.id}"
    label 'process_low'

    input:
    tuple val(meta), path(genotypes)   // meta.format: bfile (bed, bim, fam), pfile (pgen, pvar, psam), bgen (bgen[, sample]) or vcf
    path pheno   // phenotype TSV, or [] to use the .fam / .psam phenotype

    output:
    tuple val(meta), path('prepared')                              , emit: dataset
    path 'prepared_tables'                                          , emit: tables   // published as prepared/; no genotypes.npy
    path 'versions.yml'                                             , emit: versions

    script:
    def args      = task.ext.args ?: ''
    def pheno_arg = pheno ? "--pheno ${pheno}" : ''
    def files     = [genotypes].flatten()
    def input_arg = [
        bfile: { "--bfile ${files[0].baseName}" },
        pfile: { "--pfile ${files[0].baseName}" },
        bgen : { "--bgen ${files[0]}" + (files.size() > 1 ? " --sample ${files[1]}" : '') },
        vcf  : { "--vcf ${files[0]}" },
    ][meta.format]()
    """
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus} OPENBLAS_NUM_THREADS=${task.cpus}
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    annpal-prepare \\
        ${input_arg} \\
        --threads ${task.cpus} \\
        ${pheno_arg} \\
        ${args} \\
        --out-dir prepared \\
        --versions versions.yml \\
        --versions-process '${task.process}'
    # the tables (not the genotype matrix) are what gets published; hard links cost nothing
    mkdir -p prepared_tables && ln -f prepared/qc.json prepared/samples.tsv prepared/variants.tsv prepared_tables/
    """

    stub:
    """
    export ANNPAL_CODE_VERSION='${task.ext.code_version}'
    mkdir -p prepared
    touch prepared/genotypes.npy prepared/samples.tsv prepared/variants.tsv prepared/qc.json versions.yml
    mkdir -p prepared_tables && ln -f prepared/qc.json prepared/samples.tsv prepared/variants.tsv prepared_tables/
    """
}

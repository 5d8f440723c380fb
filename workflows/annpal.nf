/*
 * The annpal analysis (docs/architecture.md "The DAG"), top to bottom:
 *
 *   bfile|pfile|bgen|vcf ─(--simulate, bfile only)─ SIMULATE_PHENOTYPE ─┐
 *         └─────────────────────────────────────────────────────────────┴─ PREPARE ─ dataset
 *   dataset ─ PCA ─ pcs (shared: LOGISTIC_GWAS, and TRAIN with --nn_covariates pcs|pcs+file)
 *   dataset × seeds, null seeds (+ covariates) ─ TRAIN ─ ATTRIBUTE(method) ─ MERGE_MAS(method, kind)
 *   MERGE_MAS(real) ─ CALL_PAL ─ PVALUES(+ MERGE_MAS(null)) ─┐
 *   dataset + pcs ─ LOGISTIC_GWAS ───────────────────────────┼─ EVALUATE (--simulate)
 *                                                            └─ ANNOTATE ─ REPORT
 *
 * Every step writes one folder named after its part of the results layout (docs/output.md);
 * everything gathered with collect is sorted first, so task hashes and results never depend on
 * the order in which tasks finished.
 */

include { SIMULATE_PHENOTYPE  } from '../modules/local/simulate_phenotype/main'
include { PREPARE             } from '../modules/local/prepare/main'
include { PCA                 } from '../modules/local/pca/main'
include { LOGISTIC_GWAS       } from '../modules/local/logistic_gwas/main'
include { EVALUATE            } from '../modules/local/evaluate/main'
include { ANNOTATE            } from '../modules/local/annotate/main'
include { REPORT              } from '../modules/local/report/main'
include { TRAIN_AND_ATTRIBUTE } from '../subworkflows/local/train_and_attribute'
include { PAL_AND_PVALUES     } from '../subworkflows/local/pal_and_pvalues'
include { paramsJson; mergeVersions } from '../subworkflows/local/utils_annpal'

// The one genotype input (main.nf checked there is exactly one) as [ meta, files ]: meta.format names
// the annpal-prepare option; files are bed/bim/fam, pgen/pvar/psam, bgen (+ sample) or the VCF.
def genotypeInput() {
    if( params.bfile ) {
        def p = params.bfile.toString()
        return [[id: file(p).name, format: 'bfile'], ['.bed', '.bim', '.fam'].collect { file(p + it) }]
    }
    if( params.pfile ) {
        def p = params.pfile.toString()
        return [[id: file(p).name, format: 'pfile'], ['.pgen', '.pvar', '.psam'].collect { file(p + it) }]
    }
    if( params.bgen ) {
        def files = [file(params.bgen)] + (params.bgen_sample ? [file(params.bgen_sample)] : [])
        return [[id: files[0].baseName, format: 'bgen'], files]
    }
    def vcf = file(params.vcf)
    def id = ['.vcf.gz', '.vcf.bgz', '.vcf', '.bcf'].inject(vcf.name) { name, ext -> name.endsWith(ext) ? name[0..<(name.length() - ext.length())] : name }
    return [[id: id, format: 'vcf'], [vcf]]
}

// [ meta, dir ] channel -> one list of the dirs, sorted by folder name ([] when empty)
def sortedDirs(ch) {
    return ch.map { meta, dir -> dir }.toSortedList { a, b -> a.name <=> b.name }
}

workflow ANNPAL {
    take:
    code_version    // digest of the library code, for pipeline_info

    main:
    ch_versions = Channel.empty()
    ch_genotypes = Channel.value(genotypeInput())
    ch_covar    = params.covar ? Channel.value(file(params.covar)) : Channel.value([])
    ch_genes    = params.genes ? Channel.value(file(params.genes)) : Channel.value([])

    //
    // Phenotype: from --pheno / the .fam, or simulated on the genotypes
    //
    ch_simulation = Channel.value([])
    if( params.simulate ) {
        // main.nf allows --simulate with --bfile only
        SIMULATE_PHENOTYPE(ch_genotypes.map { meta, files -> [meta, files[0], files[1], files[2]] })
        ch_versions   = ch_versions.mix(SIMULATE_PHENOTYPE.out.versions)
        ch_pheno      = SIMULATE_PHENOTYPE.out.phenotype.map { meta, tsv -> tsv }
        ch_simulation = SIMULATE_PHENOTYPE.out.simulation.map { meta, dir -> dir }
    } else {
        ch_pheno = params.pheno ? Channel.value(file(params.pheno)) : Channel.value([])
    }

    PREPARE(ch_genotypes, ch_pheno)
    ch_versions = ch_versions.mix(PREPARE.out.versions)
    ch_dataset  = PREPARE.out.dataset

    //
    // Principal components, computed once: the comparator's and (--nn_covariates pcs) the networks'
    //
    def nn_pcs   = params.nn_covariates in ['pcs', 'pcs+file']
    def nn_covar = params.nn_covariates in ['file', 'pcs+file']
    ch_pcs = Channel.value([])
    if( (params.n_pcs as int) > 0 && (nn_pcs || !params.skip_gwas) ) {
        PCA(ch_dataset)
        ch_versions = ch_versions.mix(PCA.out.versions)
        ch_pcs      = PCA.out.pca.map { meta, dir -> dir.resolve('pcs.tsv') }.first()  // a value: every TRAIN reads it
    }

    //
    // Networks: seeds and null seeds -> models -> MAS -> MAS matrices -> PAL -> P-values
    //
    TRAIN_AND_ATTRIBUTE(
        ch_dataset,
        params.n_models as int,
        params.n_null_models as int,
        params.methods.toString().tokenize(','),
        nn_pcs ? ch_pcs : Channel.value([]),
        nn_covar ? ch_covar : Channel.value([])
    )
    ch_versions = ch_versions.mix(TRAIN_AND_ATTRIBUTE.out.versions)

    PAL_AND_PVALUES(TRAIN_AND_ATTRIBUTE.out.matrices, ch_dataset)
    ch_versions = ch_versions.mix(PAL_AND_PVALUES.out.versions)

    ch_pal_dirs     = sortedDirs(PAL_AND_PVALUES.out.pal)
    ch_pvalue_dirs  = sortedDirs(PAL_AND_PVALUES.out.pvalues)

    //
    // Linear comparator, beside the networks
    //
    ch_gwas = Channel.value([])
    if( !params.skip_gwas ) {
        LOGISTIC_GWAS(ch_dataset, ch_covar, ch_pcs)
        ch_versions = ch_versions.mix(LOGISTIC_GWAS.out.versions)
        ch_gwas     = LOGISTIC_GWAS.out.gwas.map { meta, dir -> dir }
    }

    //
    // Truth-based evaluation of simulated runs
    //
    ch_evaluation = Channel.value([])
    if( params.simulate ) {
        EVALUATE(
            SIMULATE_PHENOTYPE.out.simulation.combine(ch_dataset.map { meta, dir -> dir }),
            ch_pal_dirs,
            ch_pvalue_dirs,
            ch_gwas
        )
        ch_versions   = ch_versions.mix(EVALUATE.out.versions)
        ch_evaluation = EVALUATE.out.evaluation.map { meta, dir -> dir }
    }

    //
    // Deliverables: loci, LDtrait files, summary statistics; the HTML report
    //
    ANNOTATE(ch_dataset, ch_simulation, ch_pal_dirs, ch_pvalue_dirs, ch_gwas, ch_genes)
    ch_versions = ch_versions.mix(ANNOTATE.out.versions)

    def params_json = paramsJson(params, "${projectDir}/nextflow_schema.json")
    ch_versions_text = ch_versions
        .map { yml -> yml.text }
        .unique()
        .toSortedList()
        .map { texts -> mergeVersions(texts, workflow, code_version) }

    REPORT(
        ch_dataset,
        ch_simulation,
        sortedDirs(TRAIN_AND_ATTRIBUTE.out.models),
        sortedDirs(TRAIN_AND_ATTRIBUTE.out.matrices),
        ch_pal_dirs,
        ch_pvalue_dirs,
        ch_gwas,
        ch_evaluation,
        ANNOTATE.out.annotate.map { meta, dir -> dir },
        params_json,
        ch_versions_text
    )

    //
    // pipeline_info/: every task's versions (REPORT's included) and the parameters of the run
    //
    ch_versions.mix(REPORT.out.versions)
        .map { yml -> yml.text }
        .unique()
        .toSortedList()
        .map { texts -> mergeVersions(texts, workflow, code_version) }
        .collectFile(storeDir: "${params.outdir}/pipeline_info", name: 'software_versions.yml')
    Channel.of(params_json)
        .collectFile(storeDir: "${params.outdir}/pipeline_info", name: 'params.json', newLine: true)

    emit:
    report = REPORT.out.report
}

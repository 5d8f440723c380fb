/*
 * Seed fan-out: one TRAIN task per real or null model, one ATTRIBUTE task per (model, method),
 * then the MAS of each (method, kind) gathered and sorted by seed, and merged into a K x M matrix.
 *
 * Real models use seeds 1..n_models. Null models are numbered separately, 1..n_null_models: null
 * model n trains with seed 200000 + n on labels permuted with seed 100000 + n. Both are fixed,
 * documented offsets, so a null model never starts from a real model's initial weights, dropout
 * stream or balancing draw, the permutation never shares a random stream with any model's seed,
 * and a run is reproducible (the schema caps n_models and n_null_models at 99999, which keeps the
 * three seed ranges disjoint).
 */

include { TRAIN     } from '../../modules/local/train/main'
include { ATTRIBUTE } from '../../modules/local/attribute/main'
include { MERGE_MAS } from '../../modules/local/merge_mas/main'

def NULL_PERMUTE_SEED_OFFSET = 100000
def NULL_MODEL_SEED_OFFSET   = 200000

workflow TRAIN_AND_ATTRIBUTE {
    take:
    ch_dataset      // value: [ meta, prepared/ ]
    n_models        // int
    n_null_models   // int
    methods         // list of 'ig' | 'sm' | 'pm'
    nn_pcs          // value: pcs.tsv when --nn_covariates uses the PCs, else []
    nn_covar        // value: the --covar TSV when --nn_covariates uses it, else []

    main:
    ch_versions = Channel.empty()

    ch_real = n_models > 0
        ? Channel.of(1..n_models).map { s -> [id: "real_s${s}", kind: 'real', seed: s] }
        : Channel.empty()
    ch_null = n_null_models > 0
        ? Channel.of(1..n_null_models).map { s -> [id: "null_s${s}", kind: 'null', seed: NULL_MODEL_SEED_OFFSET + s, permute_seed: NULL_PERMUTE_SEED_OFFSET + s] }
        : Channel.empty()

    ch_dataset_dir = ch_dataset.map { meta, dir -> dir }

    // the same covariates for real and null models (a null model permutes only the labels)
    TRAIN(ch_real.mix(ch_null).combine(ch_dataset_dir), nn_pcs, nn_covar)
    ch_versions = ch_versions.mix(TRAIN.out.versions)

    ch_attr_in = TRAIN.out.model
        .combine(Channel.fromList(methods))
        .map { meta, model_dir, method ->
            [meta + [id: "${method}_${meta.id}".toString(), model: meta.id, method: method], model_dir]
        }
        .combine(ch_dataset_dir)
    ATTRIBUTE(ch_attr_in)
    ch_versions = ch_versions.mix(ATTRIBUTE.out.versions)

    // groupKey with the group's size lets each (method, kind) merge start as soon as its own models
    // are attributed. groupTuple collects in finishing order; sorting by seed makes the merge input,
    // and therefore the MAS matrix and the task hash, independent of it.
    ch_grouped = ATTRIBUTE.out.mas
        .map { meta, dir ->
            def key = [id: "${meta.method}_${meta.kind}".toString(), method: meta.method, kind: meta.kind]
            [groupKey(key, meta.kind == 'real' ? n_models : n_null_models), [meta.seed, dir]]
        }
        .groupTuple()
        .map { key, items -> [key.getGroupTarget(), items.sort { it[0] }.collect { it[1] }] }
    MERGE_MAS(ch_grouped)
    ch_versions = ch_versions.mix(MERGE_MAS.out.versions)

    emit:
    models   = TRAIN.out.model        // [ meta, <id>/ ]
    mas      = ATTRIBUTE.out.mas      // [ meta, <method>_<id>/ ]
    matrices = MERGE_MAS.out.matrix   // [ [id, method, kind], <method>_<kind>/ ]
    versions = ch_versions
}

/*
 * From MAS matrices to PAL and P-values, per method: CALL_PAL on the real models' matrix, then
 * PVALUES from the real and null matrices, the PAL scores and the prepared dataset (skipped without
 * null models).
 */

include { CALL_PAL } from '../../modules/local/call_pal/main'
include { PVALUES  } from '../../modules/local/pvalues/main'

workflow PAL_AND_PVALUES {
    take:
    ch_matrices     // [ [id, method, kind], <method>_<kind>/ ]
    ch_dataset      // value: [ meta, prepared/ ]

    main:
    ch_versions = Channel.empty()

    ch_by_kind = ch_matrices.branch { meta, dir ->
        real : meta.kind == 'real'
        nulls: meta.kind == 'null'
    }

    ch_dataset_dir = ch_dataset.map { meta, dir -> dir }

    CALL_PAL(
        ch_by_kind.real
            .map { meta, dir -> [[id: meta.method, method: meta.method], dir] }
            .combine(ch_dataset_dir)
    )
    ch_versions = ch_versions.mix(CALL_PAL.out.versions)

    // join by method: [ method, real matrix/, null matrix/, pal/ ], then the dataset (LD rows for
    // exact recounts of tied null draws)
    ch_pv_in = ch_by_kind.real.map { meta, dir -> [meta.method, dir] }
        .join(ch_by_kind.nulls.map { meta, dir -> [meta.method, dir] })
        .join(CALL_PAL.out.pal.map { meta, dir -> [meta.method, dir] })
        .combine(ch_dataset_dir)
        .map { method, real_dir, null_dir, pal_dir, dataset ->
            [[id: method, method: method], real_dir, null_dir, pal_dir, dataset]
        }
    PVALUES(ch_pv_in)
    ch_versions = ch_versions.mix(PVALUES.out.versions)

    emit:
    pal      = CALL_PAL.out.pal       // [ [id: method, method], <method>/ ]
    pvalues  = PVALUES.out.pvalues    // [ [id: method, method], <method>/ ]
    versions = ch_versions
}

#!/usr/bin/env nextflow
/*
 * annpal: genome-wide association signals from interpreted neural networks (Yelmen et al.).
 *
 *   nextflow run main.nf --bfile data/cohort --outdir results
 *   nextflow run main.nf -profile test --outdir results
 *   nextflow run main.nf --help
 *
 * This file is thin: help, parameter checks against nextflow_schema.json, a run summary, the
 * analysis (workflows/annpal.nf), and a closing line. Parameter problems stop the run here, before
 * any task starts, with one line per problem naming the parameter.
 */

nextflow.enable.dsl = 2

include { ANNPAL                                      } from './workflows/annpal'
include { paramsHelp; validateParameters; paramsSummary } from './subworkflows/local/utils_annpal'

def schemaPath  = "${projectDir}/nextflow_schema.json"
def codeVersion = workflow.session.config.navigate('annpal.code_version') ?: 'unknown'

if( params.help ) {
    log.info paramsHelp(schemaPath, workflow)
    exit 0
}

def problems = validateParameters(params, schemaPath)
if( problems ) {
    error(problems.join('\n'))
}

log.info paramsSummary(params, schemaPath, workflow, codeVersion)

workflow {
    ANNPAL(codeVersion)
}

workflow.onComplete {
    if( workflow.success ) {
        log.info "annpal: done; results in ${params.outdir} (report: ${params.outdir}/report/report.html)"
    } else {
        log.error "annpal: failed (see the error above); fix the cause and add -resume to reuse the finished tasks"
    }
}

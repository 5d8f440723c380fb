#!/usr/bin/env nextflow
/*
 * Test double for conf/base.config's retry rules (tests/test_robustness.py). FLAKY fails on each
 * attempt with the exit status listed for that attempt and succeeds once the list runs out:
 *
 *   --codes '137,140'   attempt 1 exits 137 (killed, e.g. out of memory), attempt 2 exits 140
 *                       (SIGUSR2, e.g. over time), attempt 3 succeeds
 *   --codes '1;146'     two tasks, one exits 1 and one 146 on attempt 1 (not retried)
 *
 * Tasks separated by ';', attempts by ','. The process carries TRAIN's label, so the requests
 * that the trace records per attempt come from conf/base.config's process_gpu block.
 */
nextflow.enable.dsl = 2

params.codes = '137,140'

process FLAKY {
    tag "${id}"
    label 'process_gpu'

    input:
    tuple val(id), val(codes)

    output:
    path 'done.txt'

    script:
    def code = task.attempt <= codes.size() ? codes[task.attempt - 1] : 0
    """
    echo "attempt ${task.attempt}: cpus ${task.cpus} memory ${task.memory} time ${task.time}"
    sleep 1
    if [ ${code} -ne 0 ]; then exit ${code}; fi
    echo ok > done.txt
    """
}

workflow {
    Channel.fromList(params.codes.toString().tokenize(';'))
        .map { spec -> ["exit_${spec.replace(',', '_')}".toString(), spec.tokenize(',').collect { it as int }] }
        | FLAKY
}

/*
 * Helpers for main.nf: parameter help, validation and run summary from nextflow_schema.json
 * (without the nf-schema plugin: the pipeline runs offline and downloads no plugins), and the
 * collected software versions / parameters written into pipeline_info/.
 */

import groovy.json.JsonOutput
import groovy.json.JsonSlurper

/*
 * name -> [group: title, spec: property map], in schema order.
 */
def schemaParameters(schemaPath) {
    def schema = new JsonSlurper().parse(new File(schemaPath.toString()))
    def out = new LinkedHashMap()
    schema.definitions.each { key, group ->
        group.properties.each { name, spec ->
            out[name] = [group: group.title, spec: spec, required: (group.required ?: []).contains(name)]
        }
    }
    return out
}

/*
 * Every parameter grouped, with type, default and help text.
 */
def paramsHelp(schemaPath, workflowMeta) {
    def schema = new JsonSlurper().parse(new File(schemaPath.toString()))
    def lines = []
    lines << "annpal ${workflowMeta.manifest.version}: ${workflowMeta.manifest.description}"
    lines << ''
    lines << 'Usage:'
    lines << '  nextflow run main.nf --bfile data/cohort --outdir results [options]'
    lines << '  nextflow run main.nf -profile test --outdir results          # embedded test data, minutes'
    lines << '  nextflow run main.nf -profile slurm,singularity --bfile ... # cluster'
    lines << ''
    lines << 'Profiles: test, test_full, slurm, docker, singularity, apptainer, podman, gpu (see docs/usage.md).'
    schema.definitions.each { key, group ->
        lines << ''
        lines << "${group.title}${group.description ? ': ' + group.description : ''}"
        group.properties.each { name, spec ->
            def typ = spec.enum ? spec.enum.join('|') : spec.type
            def dflt = spec.containsKey('default') ? " [default: ${spec.default}]" : ''
            def req = (group.required ?: []).contains(name) ? ' [required]' : ''
            lines << "  --${name.padRight(22)} ${typ}${dflt}${req}"
            wrap(spec.description ?: '', 92).each { lines << "      ${it}" }
        }
    }
    lines << ''
    lines << 'Nextflow options use one dash: -profile, -resume, -stub, -c my.config, -work-dir DIR.'
    return lines.join('\n')
}

def wrap(String text, int width) {
    def out = []
    def line = ''
    text.split(/\s+/).each { word ->
        if( line && (line.length() + 1 + word.length()) > width ) { out << line; line = word }
        else line = line ? "${line} ${word}" : word
    }
    if( line ) out << line
    return out
}

/*
 * All problems with the given parameters, one line each naming the parameter; empty when valid.
 */
def validateParameters(params, schemaPath) {
    def known = schemaParameters(schemaPath)
    def errors = []
    params.each { name, value ->
        if( !known.containsKey(name) ) {
            def hint = closestName(name.toString(), known.keySet())
            errors << "Parameter --${name} is not a known parameter${hint ? " (did you mean --${hint}?)" : ''}; see --help for the list"
        }
    }
    known.each { name, entry ->
        def value = params.containsKey(name) ? params[name] : null
        def msg = checkValue(name, value, entry.spec, entry.required)
        if( msg ) errors << msg
    }
    return errors + checkGenotypeInput(params) + checkTraitType(params) + checkNnCovariates(params)
}

/*
 * --nn_covariates file or pcs+file feeds the --covar columns to the networks: it needs --covar.
 */
def checkNnCovariates(params) {
    if( params.nn_covariates in ['file', 'pcs+file'] && !isSet(params.covar) )
        return ["Parameter --nn_covariates ${params.nn_covariates} uses the --covar columns; give --covar FILE or use --nn_covariates pcs"]
    if( params.nn_covariates in ['pcs', 'pcs+file'] && (params.n_pcs as int) < 1 )
        return ["Parameter --nn_covariates ${params.nn_covariates} uses the principal components; set --n_pcs to 1 or more"]
    return []
}

/*
 * Class balancing needs classes: a quantitative trait trains on every row once (--balance auto or none).
 */
def checkTraitType(params) {
    if( params.trait_type == 'quantitative' && params.balance in ['paper', 'equal'] )
        return ["Parameter --balance ${params.balance} balances cases and controls; use --balance auto or none with --trait_type quantitative"]
    return []
}

/*
 * Exactly one genotype input; its companion options only with it.
 */
def checkGenotypeInput(params) {
    def inputs = ['bfile', 'pfile', 'bgen', 'vcf']
    def given = inputs.findAll { name -> isSet(params[name]) }
    def errors = []
    if( given.size() != 1 )
        errors << "Give exactly one genotype input (${inputs.collect { '--' + it }.join(', ')}); got ${given ? given.collect { '--' + it }.join(', ') : 'none'}"
    if( isSet(params.bgen_sample) && !isSet(params.bgen) )
        errors << "Parameter --bgen_sample belongs to --bgen; drop it or give --bgen"
    if( params.simulate == true && given.size() == 1 && given[0] != 'bfile' )
        errors << "Parameter --simulate reads the genotypes with --bfile; convert --${given[0]} to a PLINK 1 fileset (plink2 ... --make-bed --out PREFIX) and pass --bfile PREFIX"
    return errors
}

def isSet(value) {
    return value != null && value != false && value.toString() != ''
}

def checkValue(String name, value, Map spec, boolean required) {
    def shown = value instanceof CharSequence ? "'${value}'" : "${value}"
    if( value == null || (value instanceof CharSequence && value.toString().isEmpty()) ) {
        return required ? "Parameter --${name} is required: ${spec.description}" : null
    }
    def number = null
    switch( spec.type ) {
        case 'boolean':
            if( !(value instanceof Boolean) )
                return "Parameter --${name} must be true or false, not ${shown}"
            return null
        case 'integer':
            if( value instanceof Integer || value instanceof Long || value instanceof BigInteger ) number = value as BigDecimal
            else if( value instanceof CharSequence && value.toString() ==~ /[+-]?\d+/ ) number = new BigDecimal(value.toString())
            else return "Parameter --${name} must be an integer, not ${shown}"
            break
        case 'number':
            if( value instanceof Number ) number = new BigDecimal(value.toString())
            else if( value instanceof CharSequence && value.toString() ==~ /[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/ ) number = new BigDecimal(value.toString())
            else return "Parameter --${name} must be a number, not ${shown}"
            break
        case 'string':
            if( value instanceof Boolean )
                return "Parameter --${name} needs a value (e.g. --${name} ${spec.default ?: 'VALUE'})"
            break
    }
    if( number != null ) {
        if( spec.containsKey('minimum') && number < (spec.minimum as BigDecimal) )
            return "Parameter --${name} must be >= ${spec.minimum}, not ${shown}"
        if( spec.containsKey('maximum') && number > (spec.maximum as BigDecimal) )
            return "Parameter --${name} must be <= ${spec.maximum}, not ${shown}"
        if( spec.containsKey('exclusiveMinimum') && number <= (spec.exclusiveMinimum as BigDecimal) )
            return "Parameter --${name} must be > ${spec.exclusiveMinimum}, not ${shown}"
        if( spec.containsKey('exclusiveMaximum') && number >= (spec.exclusiveMaximum as BigDecimal) )
            return "Parameter --${name} must be < ${spec.exclusiveMaximum}, not ${shown}"
    }
    def text = value.toString()
    if( spec.enum && !(text in spec.enum) )
        return "Parameter --${name} must be one of ${spec.enum.join(', ')}, not ${shown}"
    if( spec.pattern && !(text ==~ spec.pattern) )
        return "Parameter --${name} is malformed: ${shown}; ${spec.errorMessage ?: "expected the pattern ${spec.pattern}"}"
    if( spec.x_unique_items ) {
        def items = text.tokenize(',')
        def dup = items.findAll { x -> items.count(x) > 1 }.unique()
        if( dup ) return "Parameter --${name} lists ${dup.join(', ')} more than once: ${shown}"
    }
    if( spec.format == 'file-path' && spec.exists && !new File(text).exists() )
        return "Parameter --${name}: file ${text} does not exist"
    if( spec.format == 'file-path-prefix' ) {
        def missing = (spec.x_prefix_extensions ?: ['.bed', '.bim', '.fam']).findAll { ext -> !new File(text + ext).exists() }
        if( missing )
            return "Parameter --${name}: ${missing.collect { text + it }.join(', ')} not found; give the PLINK prefix without extension"
    }
    return null
}

/*
 * The known name closest to a mistyped one (edit distance <= 3), or null.
 */
def closestName(String name, Collection<String> names) {
    def best = null
    def bestDist = 4
    names.each { candidate ->
        def d = editDistance(name.toLowerCase().replace('-', '_'), candidate)
        if( d < bestDist ) { best = candidate; bestDist = d }
    }
    return best
}

def editDistance(String a, String b) {
    def prev = (0..b.length()).toList()
    for( int i = 1; i <= a.length(); i++ ) {
        def cur = [i]
        for( int j = 1; j <= b.length(); j++ ) {
            def cost = a[i - 1] == b[j - 1] ? 0 : 1
            cur << [prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost].min()
        }
        prev = cur
    }
    return prev[b.length()]
}

/*
 * The run summary: parameters that differ from their schema default, and where things go.
 */
def paramsSummary(params, schemaPath, workflowMeta, codeVersion) {
    def known = schemaParameters(schemaPath)
    def lines = []
    lines << "annpal ${workflowMeta.manifest.version} (library code ${codeVersion})"
    lines << "  profile     : ${workflowMeta.profile}"
    lines << "  launch dir  : ${workflowMeta.launchDir}"
    lines << "  work dir    : ${workflowMeta.workDir}"
    known.each { name, entry ->
        def value = params.containsKey(name) ? params[name] : null
        def dflt = entry.spec.default
        if( name != 'help' && value != null && value.toString() != (dflt == null ? null : dflt.toString()) )
            lines << "  ${name.padRight(12)}: ${value}"
    }
    return lines.join('\n')
}

/*
 * Every parameter of the run as JSON (sorted by name), for pipeline_info/params.json.
 */
def paramsJson(params, schemaPath) {
    def known = schemaParameters(schemaPath)
    def out = new TreeMap()
    known.keySet().each { name -> out[name] = params.containsKey(name) ? params[name] : null }
    return JsonOutput.prettyPrint(JsonOutput.toJson(out))
}

/*
 * Merge the versions.yml texts of all tasks (each `"PROCESS":` with `tool: version` lines, written by
 * annpal.cli.write_versions_yml under the task's process name) into one YAML text, processes and tools
 * sorted, plus a Workflow entry with the pipeline, library code and Nextflow versions. The texts are
 * read and written with SnakeYAML (bundled with Nextflow), not parsed line by line.
 */
def mergeVersions(List texts, workflowMeta, codeVersion) {
    def merged = new TreeMap()
    texts.each { text ->
        def doc = new org.yaml.snakeyaml.Yaml().load(text.toString())
        (doc instanceof Map ? doc : [:]).each { process, tools ->
            def entry = merged.computeIfAbsent(process.toString()) { new TreeMap() }
            (tools instanceof Map ? tools : [:]).each { tool, version -> entry[tool.toString()] = version.toString() }
        }
    }
    merged['Workflow'] = new TreeMap([
        annpal     : workflowMeta.manifest.version.toString(),
        annpal_code: codeVersion.toString(),
        Nextflow   : workflowMeta.nextflow.version.toString(),
    ])
    // plain LinkedHashMaps (no Java type tags in the output), block style
    def plain = new LinkedHashMap()
    merged.each { process, tools -> plain[process] = new LinkedHashMap(tools) }
    def options = new org.yaml.snakeyaml.DumperOptions()
    options.setDefaultFlowStyle(org.yaml.snakeyaml.DumperOptions.FlowStyle.BLOCK)
    return new org.yaml.snakeyaml.Yaml(options).dump(plain)
}

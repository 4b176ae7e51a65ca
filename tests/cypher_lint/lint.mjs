// Lints Cypher statements with Neo4j's own linter (@neo4j-cypher/language-support, lintCypherQuery).
//
// Input (stdin):  a JSON object {name: statement}.
// Output (stdout): a JSON object {name: [{message, severity, range}]}, one entry per input name
//                  (an empty list when the statement is clean).
// Exit status:    0 when no diagnostic has severity Error (1); 1 when at least one does; 2 on bad input.
//
// Signature (dist/esm/.../syntaxValidation/syntaxValidation.d.ts in 2.0.0-next.20):
//   lintCypherQuery(query: string, dbSchema: DbSchema, consoleCommandsEnabled?: boolean): SyntaxDiagnostic[]
// where SyntaxDiagnostic is an LSP Diagnostic (severity 1 Error, 2 Warning, 3 Information, 4 Hint;
// range with 0-based line/character) plus character offsets.
//
// The DbSchema is empty apart from parameters, so only syntax and semantic errors come back: the linter
// warns about unknown labels/relationship types only when the schema lists both labels and
// relationshipTypes, and checks function/procedure names only against registries given in the schema,
// so with neither given those checks do not run (no "unknown label" noise without a database).
// Parameters are the exception: lintCypherQuery reports every $param missing from dbSchema.parameters as
// an Error ("Parameter $rows is not defined."), whatever else the schema holds; that check is meant for
// Browser/Workspace sessions where :param declares them. Our statements get their parameters from the
// driver at run time, so each statement's own parameters (found by the package's parseParameters) are
// declared with a placeholder value. The values are never used: the semantic analysis only sees the
// query text and Cypher version, so this silences exactly that one check and nothing else.
// Console commands (:param, :use ...) are off: the project sends plain Cypher.
//
// Diagnostics our statements (kg.cypher.all_statements()) get with 2.0.0-next.20: none at all, neither
// errors nor warnings (without the parameter declarations, each $param would be the only Error). Only
// severity Error fails; warnings/information (for instance deprecation notices a later release might
// add) are printed so they can be read, but do not fail the run.
//
// The package's ESM entry ("import" export) uses extensionless relative imports that Node's own ESM loader
// cannot resolve (it is meant for bundlers), so the CommonJS build (the "require" export) is loaded instead.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { lintCypherQuery, parseParameters } = require('@neo4j-cypher/language-support');

const SEVERITY = { 1: 'Error', 2: 'Warning', 3: 'Information', 4: 'Hint' };

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

let statements;
try {
  statements = JSON.parse(await readStdin());
  if (statements === null || typeof statements !== 'object' || Array.isArray(statements)) {
    throw new Error('expected a JSON object {name: statement}');
  }
  for (const [name, q] of Object.entries(statements)) {
    if (typeof q !== 'string') throw new Error(`statement ${JSON.stringify(name)} is not a string`);
  }
} catch (e) {
  process.stderr.write(`lint.mjs: bad input: ${e.message}\n`);
  process.exit(2);
}

const out = {};
let failed = false;
for (const [name, query] of Object.entries(statements)) {
  let diagnostics;
  try {
    const parameters = Object.fromEntries(parseParameters(query, false).map((p) => [p, '<set by the driver>']));
    diagnostics = lintCypherQuery(query, { parameters }, false).map((d) => ({
      message: d.message,
      severity: d.severity,
      severityName: SEVERITY[d.severity] ?? String(d.severity),
      range: d.range,
    }));
  } catch (e) {
    // a crash of the linter on a statement counts as a failure of that statement
    diagnostics = [{ message: `linter crashed: ${e?.stack ?? e}`, severity: 1, severityName: 'Error', range: null }];
  }
  if (diagnostics.some((d) => d.severity === 1)) failed = true;
  out[name] = diagnostics;
}
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
process.exit(failed ? 1 : 0);

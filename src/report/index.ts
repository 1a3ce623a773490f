// Reporters for validation issues: human (terminal), json, sarif (code scanning), junit (CI).

export { type ReportInput, sortIssues } from './common.ts';
export { formatHuman, type HumanOptions, summary } from './human.ts';
export { formatJson, type JsonIssue, type JsonReport, toJsonReport } from './json.ts';
export { formatJunit, type JunitOptions } from './junit.ts';
export { formatSarif, type SarifOptions } from './sarif.ts';

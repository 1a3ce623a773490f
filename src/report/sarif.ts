// SARIF 2.1.0 output, the format GitHub code scanning uploads: one run, tool.driver "seawall",
// one reporting descriptor per issue code, one result per issue located by a URI relative to the
// working directory (the repository root in CI).

import type { Issue } from '../policy-api/issue.ts';
import { messageWithPath, type ReportInput, relativeUri, sortIssues } from './common.ts';

export interface SarifOptions {
  /** Directory that result URIs are relative to (default: process.cwd()). */
  cwd?: string;
  toolVersion?: string;
}

const SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';

export function formatSarif(input: ReportInput, opts: SarifOptions = {}): string {
  const cwd = opts.cwd ?? process.cwd();
  const issues = sortIssues(input.issues);
  const codes = [...new Set(issues.map((i) => i.code))].sort();
  const index = new Map(codes.map((c, k) => [c, k]));
  const rules = codes.map((code) => {
    // A code's default level: error if any of its issues is one (codes have one severity in practice).
    const level = issues.some((i) => i.code === code && i.severity === 'error') ? 'error' : 'warning';
    return {
      id: code,
      name: pascal(code),
      shortDescription: { text: sentence(code) },
      defaultConfiguration: { level },
      properties: { tags: ['cilium', 'network-policy'] },
    };
  });
  const results = issues.map((i) => ({
    ruleId: i.code,
    ruleIndex: index.get(i.code) ?? 0,
    level: i.severity,
    message: { text: messageWithPath(i) },
    locations: [location(i, cwd)],
  }));
  const driver = {
    name: 'seawall',
    ...(opts.toolVersion === undefined ? {} : { version: opts.toolVersion }),
    rules,
  };
  const log = {
    $schema: SCHEMA,
    version: '2.1.0',
    runs: [{ tool: { driver }, columnKind: 'utf16CodeUnits', results }],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}

function location(i: Issue, cwd: string) {
  const loc: Record<string, unknown> = {
    physicalLocation: {
      artifactLocation: { uri: relativeUri(i.pos.file, cwd) },
      region: { startLine: Math.max(1, i.pos.line), startColumn: Math.max(1, i.pos.column) },
    },
  };
  if (i.path !== '') loc.logicalLocations = [{ fullyQualifiedName: i.path, kind: 'member' }];
  return loc;
}

/** `unknown-field` → `UnknownField` (SARIF's rule name is an identifier). */
function pascal(code: string): string {
  return code
    .split('-')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

/** `unknown-field` → `Unknown field` */
function sentence(code: string): string {
  const s = code.replace(/-/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

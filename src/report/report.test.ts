import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { golden as goldenFile } from '../core/testing/golden.ts';
import type { Issue } from '../policy-api/issue.ts';
import { formatHuman, formatJson, formatJunit, formatSarif, type ReportInput } from './index.ts';

// Golden files: UPDATE_GOLDEN=1 node scripts/run-tests.mjs src/report/report.test.ts rewrites them.
const TESTDATA = join(import.meta.dirname, 'testdata');
const golden = (name: string, got: string): void => goldenFile(join(TESTDATA, `${name}.golden`), got);

const A = '/repo/policies/a.yaml';
const B = '/repo/policies/b.yaml';

function issue(file: string, line: number, column: number, rest: Partial<Issue> & { code: string }): Issue {
  return { severity: 'error', path: '', message: `${rest.code} here`, ...rest, pos: { file, line, column } };
}

const SOURCES: Record<string, string> = {
  [A]: [
    'apiVersion: cilium.io/v2',
    'kind: CiliumNetworkPolicy',
    'metadata:',
    '  name: web',
    'spec:',
    '  endpointSelector: {}',
    '  ingress: []',
    '  egress: []',
  ].join('\n'),
  [B]: [
    'kind: CiliumNetworkPolicy',
    'spec:',
    '  ingress:',
    '  - toPorts:',
    '    - rules:',
    '        http:',
    '        - pathRegex: "^/api/v1/.*"',
    '          headers:',
    '          - \'X-User-ID: ".*"\'',
  ].join('\r\n'),
  '/repo/odd name <&>.yaml': `spec:\n\tingress:\n\t- fromCIDR: ["10.0.0.0/8"]  # \x1b[31mred\x1b[0m\n${'x'.repeat(300)}: 1\n`,
};

interface Case {
  name: string;
  input: ReportInput;
  formats: Array<'human' | 'human-color' | 'json' | 'sarif' | 'junit' | 'junit-strict'>;
}

const ALL: Case['formats'] = ['human', 'json', 'sarif', 'junit'];

const CASES: Case[] = [
  {
    name: 'clean',
    input: { files: [A, B], policies: 3, others: 0, issues: [] },
    formats: ALL,
  },
  {
    name: 'mixed',
    input: {
      files: [A, B, '/repo/policies/c.yaml'],
      policies: 12,
      others: 2,
      issues: [
        issue(B, 9, 13, {
          code: 'header-value-looks-like-regex',
          severity: 'warning',
          path: 'spec.ingress[0].toPorts[0].rules.http[0].headers[0]',
          message: 'header value ".*" is matched exactly, not as a regex; for presence write ["X-User-ID"]',
          object: 'api/restrict-api-paths',
        }),
        issue(B, 7, 11, {
          code: 'unknown-field',
          path: 'spec.ingress[0].toPorts[0].rules.http[0].pathRegex',
          message: 'unknown field "pathRegex"; did you mean "path"?',
          object: 'api/restrict-api-paths',
        }),
        issue(A, 5, 1, {
          code: 'empty-rule-sections',
          path: 'spec',
          message:
            'rule must have at least one of ingress, ingressDeny, egress, egressDeny that is not empty',
          object: 'production/web',
        }),
      ],
    },
    formats: [...ALL, 'human-color', 'junit-strict'],
  },
  {
    name: 'warnings-only',
    input: {
      files: [A],
      policies: 1,
      others: 1,
      issues: [
        issue(A, 2, 7, {
          code: 'kafka-deprecated',
          severity: 'warning',
          message: 'kafka rules are deprecated',
        }),
      ],
    },
    formats: ['human', 'junit', 'junit-strict'],
  },
  {
    name: 'escaping',
    input: {
      files: ['/repo/odd name <&>.yaml', '-'],
      policies: 1,
      others: 0,
      issues: [
        issue('/repo/odd name <&>.yaml', 3, 4, {
          code: 'two-peer-kinds',
          message: 'bad "quote" & <tag> \x1b[2Jclear\x07 \'apos\'',
          path: 'spec.ingress[0]["we ird"]',
        }),
        issue('/repo/odd name <&>.yaml', 4, 250, { code: 'far-column', path: '' }),
        issue('/repo/odd name <&>.yaml', 3, 40, { code: 'after-escape', severity: 'warning' }),
        issue('-', 1, 1, { code: 'yaml-syntax', message: 'cannot parse stdin' }),
        issue('/repo/missing.yaml', 1, 1, { code: 'read-error', message: 'gone' }),
      ],
    },
    formats: ALL,
  },
];

function render(format: Case['formats'][number], input: ReportInput): string {
  const getSource = (f: string) => SOURCES[f];
  switch (format) {
    case 'human':
      return formatHuman(input, { getSource });
    case 'human-color':
      return formatHuman(input, { getSource, color: true });
    case 'json':
      return formatJson(input);
    case 'sarif':
      return formatSarif(input, { cwd: '/repo', toolVersion: '0.1.0' });
    case 'junit':
      return formatJunit(input);
    case 'junit-strict':
      return formatJunit(input, { strict: true });
  }
}

const EXT: Record<Case['formats'][number], string> = {
  human: 'txt',
  'human-color': 'ansi',
  json: 'json',
  sarif: 'sarif',
  junit: 'xml',
  'junit-strict': 'strict.xml',
};

describe('report golden files', () => {
  for (const c of CASES) {
    for (const f of c.formats) {
      test(`${c.name} ${f}`, () => golden(`${c.name}.${EXT[f]}`, render(f, c.input)));
    }
  }
});

describe('report properties', () => {
  const mixed = CASES[1]!.input;
  const rows: Array<{ name: string; check: () => void }> = [
    {
      name: 'json parses and counts',
      check: () => {
        const j = JSON.parse(formatJson(mixed));
        assert.deepEqual([j.files, j.policies, j.others, j.errors, j.warnings], [3, 12, 2, 2, 1]);
        assert.deepEqual(Object.keys(j.issues[0]).sort(), [
          'code',
          'column',
          'file',
          'line',
          'message',
          'object',
          'path',
          'severity',
        ]);
      },
    },
    {
      name: 'sarif rules cover every result',
      check: () => {
        const s = JSON.parse(formatSarif(mixed, { cwd: '/repo' }));
        const run = s.runs[0];
        assert.equal(s.version, '2.1.0');
        for (const r of run.results) assert.equal(run.tool.driver.rules[r.ruleIndex].id, r.ruleId);
        assert.equal(run.results[0].locations[0].physicalLocation.artifactLocation.uri, 'policies/a.yaml');
      },
    },
    {
      name: 'no colour codes unless asked',
      check: () => assert.doesNotMatch(formatHuman(mixed, { getSource: (f) => SOURCES[f] }), /\x1b/),
    },
    {
      name: 'junit has no raw control characters',
      check: () => {
        assert.doesNotMatch(formatJunit(CASES[3]!.input), /[\x00-\x08\x0b\x0c\x0e-\x1f]/);
      },
    },
  ];
  for (const r of rows) test(r.name, r.check);
});

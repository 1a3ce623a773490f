// The guide's examples (examples/guide/): every original mistake is caught with its code, and
// every corrected version is clean apart from the kafka-deprecated warning.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Issue } from '../src/policy-api/issue.ts';
import { loadPolicies } from '../src/policy-api/load.ts';

const GUIDE = join(import.meta.dirname, '..', 'examples', 'guide');

const load = async (file: string): Promise<Issue[]> => {
  const r = await loadPolicies([file], { lint: true });
  return r.issues;
};

const FILES = [
  '01-default-deny-all',
  '02-allow-dns',
  '03-allow-frontend-to-backend',
  '04-restrict-http-methods',
  '05-restrict-api-paths',
  '06-allow-external-apis',
  '07-identity-based-access',
  '08-restrict-kafka-topics',
];

/** Expected issues of the originals: code + severity, and for unknown-field the field. */
const ORIGINAL: Record<string, Array<{ code: string; severity: Issue['severity']; path?: RegExp }>> = {
  '01-default-deny-all': [{ code: 'empty-rule-sections', severity: 'error' }],
  '04-restrict-http-methods': [{ code: 'unknown-field', severity: 'error', path: /pathRegex$/ }],
  '05-restrict-api-paths': [
    { code: 'unknown-field', severity: 'error', path: /http\[0\]\.pathRegex$/ },
    { code: 'unknown-field', severity: 'error', path: /http\[1\]\.pathRegex$/ },
    { code: 'header-value-looks-like-regex', severity: 'warning' },
  ],
  '08-restrict-kafka-topics': [{ code: 'kafka-missing-bootstrap-keys', severity: 'warning' }],
};

const show = (issues: Issue[]) =>
  issues.map((i) => `${i.pos.line}:${i.pos.column} ${i.severity} ${i.code} ${i.path}`).join('\n');

describe('guide originals', () => {
  for (const name of FILES) {
    const want = ORIGINAL[name] ?? [];
    test(`${name}: ${want.length === 0 ? 'no errors' : want.map((w) => w.code).join(', ')}`, async () => {
      const issues = await load(join(GUIDE, 'original', `${name}.yaml`));
      for (const w of want) {
        const hit = issues.some(
          (i) =>
            i.code === w.code && i.severity === w.severity && (w.path === undefined || w.path.test(i.path)),
        );
        assert.ok(hit, `expected ${w.severity} ${w.code} ${w.path ?? ''}; got:\n${show(issues)}`);
      }
      if (want.length === 0) {
        const errors = issues.filter((i) => i.severity === 'error');
        assert.deepEqual(errors, [], `the guide's ${name} is valid as written`);
      }
    });
  }
});

describe('guide corrected', () => {
  for (const name of FILES) {
    test(`${name}: no errors, no warnings but kafka-deprecated`, async () => {
      const file = join(GUIDE, 'corrected', `${name}.yaml`);
      const issues = await load(file);
      assert.equal((await loadPolicies([file])).policies.length, 1, 'the policy is accepted');
      const unexpected = issues.filter((i) => i.severity === 'error' || i.code !== 'kafka-deprecated');
      assert.deepEqual(unexpected, [], show(unexpected));
    });
  }
});

const SEAWALL = join(import.meta.dirname, '..', 'bin', 'seawall.js');
const seawall = (...args: string[]) => spawnSync(process.execPath, [SEAWALL, ...args], { encoding: 'utf8' });

describe('guide through the CLI', () => {
  test('validate on the originals: exit 1, and the cross-policy FQDN warning on 06', () => {
    const r = seawall('validate', '-o', 'json', join(GUIDE, 'original'));
    assert.equal(r.status, 1, r.stderr);
    const report = JSON.parse(r.stdout) as { issues: Array<{ code: string; file: string }> };
    const fqdn = report.issues.filter((i) => i.code === 'fqdn-without-dns-rule');
    assert.ok(fqdn.length > 0 && fqdn.every((i) => i.file.endsWith('06-allow-external-apis.yaml')));
  });
  test('validate on the corrected versions: exit 0', () => {
    const r = seawall('validate', join(GUIDE, 'corrected'));
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
  test('the guide PolicyTests pass offline', () => {
    const r = seawall('test', join(GUIDE, 'tests'));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^\d+ passed, 0 failed$/m);
  });
});

import assert from 'node:assert/strict';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { golden as goldenFile } from '../core/testing/golden.ts';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import { type FakeCall, FakeEngine } from '../policy/testing/fake-engine.ts';
import type { FlowRequest, Verdict } from '../policy/types.ts';
import { loadPolicyTestFile, parsePolicyTestText } from './parse.ts';
import { formatHuman, formatJSONLines, formatJUnit } from './report.ts';
import { outcomeOf, runPolicyTest } from './runner.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const rel = (p: string) => relative(root, join(here, p));

const golden = (name: string, got: string): void => goldenFile(join(here, 'testdata', name), got);

// ---------------------------------------------------------------- a stub engine

/** Short names of the calls the setup-order assertion lists. */
const OP: Partial<Record<FakeCall['method'], string>> = {
  upsertNamespace: 'ns',
  upsertEndpoint: 'ep',
  upsertPolicy: 'policy',
};

function stubEngine(decide: (f: FlowRequest, now: number) => Partial<Verdict>) {
  const engine = new FakeEngine({
    decide: (f, now) => ({
      allowed: false,
      verdict: 'DROPPED',
      srcIdentity: 1,
      dstIdentity: 2,
      explanation: [],
      ...decide(f, now!),
    }),
  });
  return { engine, calls: engine.calls };
}

const TEST = `apiVersion: seawall/v1
kind: PolicyTest
metadata: {name: t}
spec:
  config: {enforcementMode: never}
  namespaces: [{name: shop, labels: {env: prod}}]
  endpoints:
    - {name: a, namespace: shop}
    - {name: dns, namespace: kube-system}
  dns: [{name: x.example, ips: [192.0.2.1, 192.0.2.2], ttl: 30}]
  flows:
    - {from: a, to: dns, port: 53, protocol: UDP, dns: {query: X.Example.}, expect: allowed}
    - {from: a, to: x.example, port: 443, expect: allowed}
    - {from: a, to: dns, port: 53, protocol: UDP, dns: {query: other.example}, expect: allowed}
`;

const allowDNS = (f: FlowRequest): Partial<Verdict> =>
  f.l7?.kind === 'dns'
    ? {
        allowed: true,
        verdict: 'FORWARDED',
        egress: {
          direction: 'EGRESS',
          endpoint: 'shop/a',
          enforced: true,
          allowed: true,
          matchType: 'L3_L4',
          allowedBy: [],
          deniedBy: [],
          l7: { parser: 'dns', allowed: true },
          explanation: [],
        },
      }
    : { allowed: true, verdict: 'FORWARDED' };

interface Row {
  name: string;
  decide: (f: FlowRequest) => Partial<Verdict>;
  /** The learnDNS calls expected. */
  learnt: unknown[][];
}

const rows: Row[] = [
  {
    name: 'a query allowed through a DNS rule teaches the answer (names compared case-insensitively)',
    decide: allowDNS,
    learnt: [['x.example', ['192.0.2.1', '192.0.2.2'], 30, 100]],
  },
  {
    name: 'a query allowed without a DNS rule teaches nothing',
    decide: () => ({ allowed: true, verdict: 'FORWARDED' }),
    learnt: [],
  },
  {
    name: 'a refused query teaches nothing',
    decide: (f) => {
      const v = allowDNS(f);
      return f.l7 ? { ...v, allowed: false, verdict: 'DROPPED', reason: 'L7_DENIED' } : v;
    },
    learnt: [],
  },
];

for (const row of rows) {
  test(`runner: ${row.name}`, async () => {
    const parsed = await parsePolicyTestText('t.yaml', TEST);
    assert.deepEqual(parsed.issues, []);
    const { engine, calls } = stubEngine(row.decide);
    let mode: unknown;
    runPolicyTest(parsed.tests[0]!, {
      createEngine: (cfg) => {
        mode = cfg.enforcementMode;
        return engine;
      },
    });
    assert.equal(mode, 'never');
    assert.deepEqual(
      calls.filter((c) => c.method === 'learnDNS').map((c) => c.args),
      row.learnt,
    );
    // Setup order: namespaces (listed and implied), endpoints, then flows on a rising clock.
    assert.deepEqual(
      calls
        .filter((c) => c.method !== 'learnDNS')
        .map((c) => (c.method === 'decide' ? `decide@${c.args[1]}` : OP[c.method])),
      ['ns', 'ns', 'ep', 'ep', 'decide@100', 'decide@200', 'decide@300'],
    );
    assert.deepEqual(calls[1]!.args, ['kube-system', {}]);
  });
}

test('runner: the FQDN flow is decided on the first address of the record', async () => {
  const parsed = await parsePolicyTestText('t.yaml', TEST);
  const seen: FlowRequest[] = [];
  const { engine } = stubEngine((f) => {
    seen.push(f);
    return {};
  });
  runPolicyTest(parsed.tests[0]!, { createEngine: () => engine });
  assert.deepEqual(seen[1]!.dst, { kind: 'ip', ip: '192.0.2.1' });
});

const outcomeRows: Array<{ name: string; v: Partial<Verdict>; want: string }> = [
  { name: 'forwarded', v: { allowed: true, verdict: 'FORWARDED' }, want: 'allowed' },
  { name: 'dropped', v: { allowed: false, verdict: 'DROPPED' }, want: 'denied' },
  {
    name: 'audit verdict (hook for policy audit mode)',
    v: { allowed: true, verdict: 'AUDIT' },
    want: 'audited',
  },
];
for (const row of outcomeRows) {
  test(`runner: outcome ${row.name}`, () => assert.equal(outcomeOf(row.v as Verdict), row.want));
}

test('runner: expectReason must match; audited expectation fails on a plain verdict', async () => {
  const text = TEST.replace(
    /flows:[\s\S]*$/,
    `flows:
    - {from: a, to: dns, port: 80, expect: denied, expectReason: POLICY_DENY}
    - {from: a, to: dns, port: 81, expect: denied, expectReason: POLICY_DENIED}
    - {from: a, to: dns, port: 82, expect: audited}
`,
  );
  const parsed = await parsePolicyTestText('t.yaml', text);
  const { engine } = stubEngine(() => ({ allowed: false, verdict: 'DROPPED', reason: 'POLICY_DENIED' }));
  const run = runPolicyTest(parsed.tests[0]!, { createEngine: () => engine });
  assert.deepEqual(
    run.results.map((r) => [r.pass, r.actual, r.reason]),
    [
      [false, 'denied', 'POLICY_DENIED'],
      [true, 'denied', 'POLICY_DENIED'],
      [false, 'denied', 'POLICY_DENIED'],
    ],
  );
});

test('report: control characters from the file do not reach the terminal', async () => {
  const text = TEST.replace(
    /flows:[\s\S]*$/,
    'flows:\n    - {name: "\\e[2Jgone", from: a, to: dns, port: 80, expect: allowed}\n',
  );
  const parsed = await parsePolicyTestText('t.yaml', text);
  assert.deepEqual(parsed.issues, []);
  const { engine } = stubEngine(() => ({}));
  const out = formatHuman([runPolicyTest(parsed.tests[0]!, { createEngine: () => engine })]);
  assert.ok(!out.includes('\x1b'), out);
  assert.match(out, /"\\x1b\[2Jgone"/);
});

// ---------------------------------------------------------------- golden outputs on the real engine

async function fixtureRuns(file: string) {
  const parsed = await loadPolicyTestFile(rel(file));
  assert.deepEqual(parsed.issues, []);
  return parsed.tests.map((t) => runPolicyTest(t, { createEngine: defaultEngineFactory, now: () => 0 }));
}

test('report: human output of a failing run (golden)', async () => {
  golden('failing.human.golden', formatHuman(await fixtureRuns('testdata/failing.policytest.yaml')));
});

test('report: human output with -v (golden)', async () => {
  golden(
    'shop.verbose.golden',
    formatHuman(await fixtureRuns('testdata/shop.policytest.yaml'), { verbose: true }),
  );
});

test('report: JSON lines (golden)', async () => {
  const out = formatJSONLines(await fixtureRuns('testdata/failing.policytest.yaml'));
  for (const line of out.trimEnd().split('\n')) JSON.parse(line);
  golden('failing.json.golden', out);
});

test('report: JUnit XML (golden)', async () => {
  golden('failing.junit.golden', formatJUnit(await fixtureRuns('testdata/failing.policytest.yaml')));
});

// generate, diff and test --against through their command functions: exit codes, where output
// goes, and bad input (exit 2 with a message that says where and why).

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runDiffCommand } from './diff.ts';
import { runGenerateCommand } from './generate.ts';
import { runAgainstCommand } from './test-against.ts';
import { capture } from './testing/capture.ts';

const here = dirname(fileURLToPath(import.meta.url));
process.chdir(join(here, '..', '..'));
const LOG = 'src/generate/testdata/shop.flows.jsonl';
const AG = 'src/policytest/testdata/against';
const SHOP = 'src/policytest/testdata/shop.policytest.yaml';
const tmp = mkdtempSync(join(tmpdir(), 'seawall-h10-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const notFlows = join(tmp, 'not-flows.jsonl');
writeFileSync(notFlows, '{"flow": {"verdict": "FORWARDED"}}\nthis is not json\n{"foo": 1}\n');
const nothing = join(tmp, 'nothing.yaml');
writeFileSync(
  nothing,
  'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: nothing, namespace: shop}\nspec:\n  endpointSelector: {matchLabels: {app: no-such-app}}\n  ingress: [{}]\n',
);
const empty = join(tmp, 'empty.jsonl');
writeFileSync(empty, '\n');

test('generate to stdout: the golden policies, exit 0, what was passed over on stderr', async () => {
  const io = capture();
  await runGenerateCommand({ from: LOG, output: '-' }, io);
  assert.equal(io.code, 0);
  assert.equal(io.out, readFileSync('src/generate/testdata/shop.golden.yaml', 'utf8'));
  assert.match(io.err, /1 record passed over: verdict DROPPED/);
  assert.match(io.err, /17 of 20 records allowed by 4 policies/);
});

test('generate -o DIR: one file per policy, NAMESPACE-NAME.yaml', async () => {
  const io = capture();
  const out = join(tmp, 'gen');
  await runGenerateCommand({ from: LOG, output: out }, io);
  assert.equal(io.code, 0);
  assert.deepEqual(readdirSync(out).sort(), [
    'data-postgres.yaml',
    'kube-system-kube-dns.yaml',
    'shop-backend.yaml',
    'shop-frontend.yaml',
  ]);
});

const badGenerate: Array<{ name: string; from: string; err: RegExp }> = [
  { name: 'a file that does not exist', from: join(tmp, 'nope.jsonl'), err: /cannot read .*nope\.jsonl/ },
  {
    name: 'lines that are not flows, each with its line',
    from: notFlows,
    err: /not-flows\.jsonl:2: error: not JSON[\s\S]*:3: error: line is not a Hubble flow: no "verdict"/,
  },
  { name: 'a log with no flows', from: empty, err: /no flows/ },
];
for (const row of badGenerate) {
  test(`generate: ${row.name} is exit 2`, async () => {
    const io = capture();
    await runGenerateCommand({ from: row.from, output: '-' }, io);
    assert.equal(io.code, 2);
    assert.equal(io.out, '');
    assert.match(io.err, row.err);
  });
}

interface AgainstRow {
  name: string;
  against: string;
  policies?: string[];
  file?: string[];
  output?: 'human' | 'json';
  code: number;
  out?: RegExp;
  err?: RegExp;
}
const againstRows: AgainstRow[] = [
  {
    name: 'the reviewed policies drop recorded flows: exit 1',
    against: `${AG}/flows.jsonl`,
    policies: [`${AG}/policies`],
    code: 1,
    out: /11 would be dropped/,
  },
  {
    name: 'the generated policies drop only the unlabelled pod: exit 1, JSON',
    against: LOG,
    policies: [join(tmp, 'gen')],
    output: 'json',
    code: 1,
    out: /"dropped": 1,/,
  },
  {
    name: 'policies that select nothing drop nothing: exit 0',
    against: `${AG}/flows.jsonl`,
    policies: [nothing],
    code: 0,
    out: /no recorded flow would be dropped/,
  },
  {
    name: 'endpoints from a PolicyTest with -f are taken, its policies are not',
    against: `${AG}/flows.jsonl`,
    policies: [`${AG}/policies`],
    file: [SHOP],
    code: 1,
    out: /11 would be dropped/,
  },
  { name: 'no --policies: exit 2', against: `${AG}/flows.jsonl`, code: 2, err: /needs the policies/ },
  {
    name: 'a flow log with bad lines: exit 2',
    against: notFlows,
    policies: [`${AG}/policies`],
    code: 2,
    err: /:2: error/,
  },
  {
    name: 'a policy directory that does not exist: exit 2',
    against: `${AG}/flows.jsonl`,
    policies: [join(tmp, 'none')],
    code: 2,
    err: /none/,
  },
];
for (const row of againstRows) {
  test(`test --against: ${row.name}`, async () => {
    // -o DIR of the test above is the input of one row: make sure it exists.
    await runGenerateCommand({ from: LOG, output: join(tmp, 'gen') }, capture());
    const io = capture();
    await runAgainstCommand(
      {
        against: row.against,
        output: row.output ?? 'human',
        ...(row.policies ? { policies: row.policies } : {}),
        ...(row.file ? { file: row.file } : {}),
      },
      io,
    );
    assert.equal(io.code, row.code, io.err);
    if (row.out) assert.match(io.out, row.out);
    if (row.err) assert.match(io.err, row.err);
  });
}

interface DiffRow {
  name: string;
  a: string;
  b: string;
  file?: string[];
  code: number;
  out?: RegExp;
  err?: RegExp;
}
const DA = 'src/policytest/testdata/diff/a';
const DB = 'src/policytest/testdata/diff/b';
const diffRows: DiffRow[] = [
  { name: 'different sets: exit 1', a: DA, b: DB, file: [SHOP], code: 1, out: /5 changes/ },
  { name: 'equal sets: exit 0', a: DA, b: `git:HEAD:${DA}`, file: [SHOP], code: 0, out: /no change/ },
  { name: 'no -f: exit 2', a: DA, b: DB, code: 2, err: /give the endpoints with -f/ },
  { name: 'a bad git source: exit 2', a: 'git:HEAD', b: DB, file: [SHOP], code: 2, err: /not git:REF:PATH/ },
  {
    name: 'an invalid policy on one side: exit 2, with file:line',
    a: DA,
    b: 'src/cli/testdata/validate/invalid.yaml',
    file: [SHOP],
    code: 2,
    err: /invalid\.yaml:\d+:\d+/,
  },
];
for (const row of diffRows) {
  test(`diff: ${row.name}`, async () => {
    const io = capture();
    await runDiffCommand(row.a, row.b, { output: 'text', ...(row.file ? { file: row.file } : {}) }, io);
    assert.equal(io.code, row.code, io.err);
    if (row.out) assert.match(io.out, row.out);
    if (row.err) assert.match(io.err, row.err);
  });
}

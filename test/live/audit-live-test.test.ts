// `seawall test --live` on a PolicyTest with `expect: audited`: the audited flows are replayed (no
// longer skipped), pass as real traffic and show an AUDIT record; the enforcing policy's denial is
// refused live. With --policy-audit-mode every policy drop is audited, the enforcing one's too.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { findUlogdPluginDir } from '../../src/flow/nflog.ts';
import { ADDON_PATH } from '../../src/proxy/origdst.ts';
import { type LiveFlowResult, runLive } from '../../src/testbed/live-test.ts';
import { liveSkipReason } from './helpers.ts';

const FILE = join(import.meta.dirname, '..', '..', 'src', 'policytest', 'testdata', 'audit.policytest.yaml');
const L7_FILE = join(import.meta.dirname, 'testdata', 'audit', 'l7.policytest.yaml');
const skip =
  liveSkipReason() ??
  (findUlogdPluginDir() === undefined ? 'needs ulogd2 and ulogd2-json (records show AUDIT)' : undefined);

async function replay(
  policyAuditMode: boolean,
  file = FILE,
): Promise<{ results: LiveFlowResult[]; code: number }> {
  const lines: string[] = [];
  const code = await runLive([file], {
    output: 'json',
    write: (l) => lines.push(l),
    ...(policyAuditMode ? { policyAuditMode: true } : {}),
  });
  return { results: lines.map((l) => JSON.parse(l) as LiveFlowResult), code };
}

it('seawall test --live: audited flows pass live with an AUDIT record', {
  skip,
  timeout: 120_000,
}, async () => {
  const { results, code } = await replay(false);
  assert.deepEqual(
    results.map((r) => [r.name, r.outcome, r.live, r.offline]),
    [
      ['allowed by the audited policy', 'pass', 'allowed', 'allowed'],
      ['audited explicit deny', 'pass', 'audited', 'audited'],
      ['audited default deny', 'pass', 'audited', 'audited'],
      ['enforcing policy allows', 'pass', 'allowed', 'allowed'],
      ['enforcing default deny drops', 'pass', 'denied', 'denied'],
    ],
    JSON.stringify(results, null, 1),
  );
  for (const r of results.filter((x) => x.live === 'audited'))
    assert.ok(r.records?.includes('INGRESS AUDIT'), String(r.records));
  assert.equal(code, 0);
});

it('seawall test --live --policy-audit-mode: the enforcing drop is audited too (its expectation fails)', {
  skip,
  timeout: 120_000,
}, async () => {
  const { results, code } = await replay(true);
  const last = results.at(-1)!;
  assert.deepEqual([last.live, last.offline, last.outcome], ['audited', 'audited', 'fail']);
  assert.equal(code, 1);
});

it('seawall test --live: audit + L7: the proxy enforces L7, an allowed request is AUDIT (nat_pre logs it)', {
  skip:
    skip ??
    (existsSync(ADDON_PATH) ? undefined : `addon not built (${ADDON_PATH}); run scripts/build-addon.sh`),
  timeout: 120_000,
}, async () => {
  const { results, code } = await replay(false, L7_FILE);
  assert.deepEqual(
    results.map((r) => [r.name, r.outcome, r.live, r.offline]),
    [
      ['allowed by L7, audited at L3/L4', 'pass', 'audited', 'audited'],
      ['refused by L7 (not audited)', 'pass', 'denied', 'denied'],
    ],
    JSON.stringify(results, null, 1),
  );
  assert.deepEqual(results[0]!.records, ['HTTP 200', 'INGRESS AUDIT']);
  assert.equal(code, 0);
});

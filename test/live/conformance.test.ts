// `seawall test --live` on ../shared/conformance and on the guide's PolicyTests: live and offline
// agree on every flow replayed: HTTP requests (curl) and gRPC calls (grpc-js) through the node's
// HTTP proxy, Kafka requests through its Kafka proxy, DNS queries and FQDN destinations (dig
// through the DNS proxy, dnsmasq in the kube-dns pod).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { type LiveFlowResult, runLive } from '../../src/testbed/live-test.ts';
import { liveSkipReason } from './helpers.ts';

const GUIDE_TESTS = join(import.meta.dirname, '..', '..', 'examples', 'guide', 'tests');
const CONFORMANCE = join(import.meta.dirname, '..', '..', '..', 'shared', 'conformance');
const skip =
  liveSkipReason() ??
  (existsSync(CONFORMANCE) ? undefined : `no conformance suite at ${CONFORMANCE}`) ??
  (existsSync(join(import.meta.dirname, '..', '..', 'src', 'policy', 'engine.ts'))
    ? undefined
    : 'no policy engine yet');

/** Replays PolicyTest files live; asserts live agrees with offline on every flow sent. */
async function replay(path: string): Promise<{ results: LiveFlowResult[]; code: number }> {
  const lines: string[] = [];
  const code = await runLive([path], { output: 'json', write: (l) => lines.push(l) });
  const results = lines.map((l) => JSON.parse(l) as LiveFlowResult);
  assert.ok(
    results.some((r) => r.outcome !== 'skip'),
    'some flows were replayed live',
  );
  const disagree = results.filter((r) => r.outcome !== 'skip' && r.live !== r.offline);
  assert.deepEqual(disagree, [], 'live disagrees with offline');
  for (const r of results.filter((x) => x.outcome === 'skip')) assert.ok(r.note, 'a skipped flow says why');
  // issue 10: no DNS or FQDN flow waits for a DNS proxy any more
  assert.deepEqual(
    results.filter((r) => r.outcome === 'skip' && /DNS proxy|FQDN destination/.test(r.note ?? '')),
    [],
  );
  return { results, code };
}

it('live replay of the conformance suite agrees with offline', { skip, timeout: 900_000 }, async () => {
  const { code } = await replay(CONFORMANCE);
  assert.ok(code === 0 || code === 1);
});

it("live replay of the guide's PolicyTests: agrees with offline, every flow passes", {
  skip,
  timeout: 900_000,
}, async () => {
  const { results, code } = await replay(GUIDE_TESTS);
  assert.deepEqual(
    results.filter((r) => r.outcome === 'fail'),
    [],
  );
  assert.equal(code, 0);
});

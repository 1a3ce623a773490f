// Issue 10, live: toFQDNs with HTTP rules. A DNS answer changes what the HTTP proxy judges (the
// learnt address's identity and the client's redirect entries for it), sent to the proxies as an
// FQDN delta rather than a whole snapshot; the answer is released once the kernel and the HTTP
// proxy have the change, so the first request after the lookup is allowed (and a path the rule
// does not name is denied). The PolicyTest runs live on a node of its own (seawall test --live).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';
import { type LiveFlowResult, runLive } from '../../src/testbed/live-test.ts';
import { liveSkipReason } from './helpers.ts';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip = liveSkipReason() ?? (have('dnsmasq') ? undefined : 'needs dnsmasq (scripts/setup-debian.sh)');
const FILE = join(import.meta.dirname, 'testdata', 'fqdn-l7', 'fqdn-http.policytest.yaml');

it('toFQDNs with HTTP rules: the first request after the lookup is judged by the HTTP proxy with the learnt address', {
  skip,
  timeout: 240_000,
}, async () => {
  const lines: string[] = [];
  const code = await runLive([FILE], { output: 'json', write: (l) => lines.push(l) });
  const results = lines.map((l) => JSON.parse(l) as LiveFlowResult);
  assert.deepEqual(
    results.map((r) => [r.name, r.outcome, r.live]),
    [
      ['api.web.example before any lookup', 'pass', 'denied'],
      ['resolve api.web.example', 'pass', 'allowed'],
      ['the first request after the lookup, allowed path', 'pass', 'allowed'],
      ['denied path', 'pass', 'denied'],
      ['resolve api.plain.example', 'pass', 'allowed'],
      ['api.plain.example after the lookup (L4 only, no proxy)', 'pass', 'allowed'],
    ],
  );
  assert.equal(code, 0);
});

// `seawall agent status` (human): the policy store's lines: unreadable store, pending changes,
// skipped files, the watcher and the resync.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { AgentStatus } from '../agent/agent.ts';
import { flowLine, fqdnLine, storeLines } from './agent.ts';

const base = {
  pendingChanges: [],
  skippedFiles: [],
  watch: { watchers: 2, rearms: 1, errors: 0 },
  resync: { intervalMs: 3000, runs: 7, corrections: 1 },
} as unknown as AgentStatus;

const rows: Array<{ name: string; s: Partial<AgentStatus>; want: string[] }> = [
  {
    name: 'all quiet',
    s: {},
    want: ['watch: 2 watchers, 1 re-armed, 0 errors; resync every 3000 ms: 7 runs, 1 corrections'],
  },
  {
    name: 'a pending change, a skipped FIFO, an unreadable store',
    s: {
      storeError: 'cannot read p (ENOENT); the last good state stays',
      pendingChanges: [{ file: 'p/a.yaml', change: 'modified', since: 900 }],
      skippedFiles: [{ file: 'p/x.yaml', reason: 'a FIFO, not a regular file' }],
    },
    want: [
      'policy store UNREADABLE: cannot read p (ENOENT); the last good state stays',
      'pending (applied once stable): p/a.yaml modified 100 ms ago',
      'skipped (last good state kept): p/x.yaml: a FIFO, not a regular file',
      'watch: 2 watchers, 1 re-armed, 0 errors; resync every 3000 ms: 7 runs, 1 corrections',
    ],
  },
  { name: 'an agent from before the fields', s: { watch: undefined, resync: undefined } as never, want: [] },
];
for (const r of rows)
  it(`storeLines: ${r.name}`, () => assert.deepEqual(storeLines({ ...base, ...r.s }, 1000), r.want));

// Issue 8 item 6: records the flow log could not take are counted and said, with the write error.
const running = {
  state: 'running',
  processed: 10,
  forwarded: 7,
  dropped: 3,
  lost: 0,
  errors: 0,
  suppressedDrops: 0,
  disagreements: 0,
  flowLogLost: 0,
  flowLog: '/run/seawall/sw-a/flows.jsonl',
  socket: '/run/seawall/sw-a/hubble.sock',
  ulogdPid: 42,
} as const;
const flowRows: Array<{ name: string; f: Record<string, unknown>; want: string[] }> = [
  {
    name: 'nothing lost',
    f: {},
    want: [
      'flow records: 10 processed (7 forwarded, 3 dropped), 0 lost, 0 repeated drops folded; ulogd2 running (pid 42)',
      '  flow log /run/seawall/sw-a/flows.jsonl; observe socket /run/seawall/sw-a/hubble.sock',
    ],
  },
  {
    name: 'audited records are counted apart',
    f: { audited: 4 },
    want: [
      'flow records: 10 processed (7 forwarded, 3 dropped, 4 audited), 0 lost, 0 repeated drops folded; ulogd2 running (pid 42)',
      '  flow log /run/seawall/sw-a/flows.jsonl; observe socket /run/seawall/sw-a/hubble.sock',
    ],
  },
  {
    name: 'item 6: a full disk: records not written, and why',
    f: { lost: 4, errors: 1, flowLogLost: 3, flowLogError: 'ENOSPC: no space left on device, write' },
    want: [
      'flow records: 10 processed (7 forwarded, 3 dropped), 4 lost (1 failed to build, 3 not written to the flow log), 0 repeated drops folded; ulogd2 running (pid 42)',
      '  flow log /run/seawall/sw-a/flows.jsonl; observe socket /run/seawall/sw-a/hubble.sock',
      '  flow log write error: ENOSPC: no space left on device, write',
    ],
  },
];
for (const r of flowRows)
  it(`flowLine: ${r.name}`, () =>
    assert.deepEqual(flowLine({ ...running, ...r.f } as never).split('\n'), r.want));

// Issue 10: toFQDNs in agent status, with the answers released past the max delay.
const fqdnBase = {
  answers: 12,
  applied: 10,
  syncs: 7,
  failed: 0,
  datapathUpdateTimeouts: 0,
  restored: 0,
  expiredOnRestore: 0,
  zombies: 0,
  zombieConnections: 0,
  answerToAllowedMs: { p50: 1.234, p99: 4.56, samples: 10 },
  kernelDeltaMs: { p50: 0.5, p99: 2, samples: 10 },
};
const fqdnRows: Array<{ name: string; f: Record<string, unknown>; want: string }> = [
  {
    name: 'all in time',
    f: {},
    want: [
      'fqdn: 12 answers, 10 with new addresses in 7 kernel deltas, 0 failed; answer → allowed p50 1.2 ms, p99 4.6 ms',
      '  released past --tofqdns-proxy-response-max-delay (proxy_datapath_update_timeout_total): 0',
    ].join('\n'),
  },
  {
    name: 'two released past the cap, no samples yet',
    f: { datapathUpdateTimeouts: 2, answerToAllowedMs: { p50: 0, p99: 0, samples: 0 } },
    want: [
      'fqdn: 12 answers, 10 with new addresses in 7 kernel deltas, 0 failed; answer → allowed no samples',
      '  released past --tofqdns-proxy-response-max-delay (proxy_datapath_update_timeout_total): 2 (their first packets may have been dropped)',
    ].join('\n'),
  },
];
for (const r of fqdnRows)
  it(`fqdnLine: ${r.name}`, () => assert.equal(fqdnLine({ ...fqdnBase, ...r.f } as never), r.want));

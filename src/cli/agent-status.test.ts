// `seawall agent status` (human): the policy store's lines: unreadable store, pending changes,
// skipped files, the watcher and the resync.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { AgentStatus } from '../agent/agent.ts';
import { storeLines } from './agent.ts';

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

// NftApplier's choice of transaction, against a fake transport: a delta goes through the session;
// when the session dies with a delta in flight, the table is replaced in full (never the delta
// again: whether nft committed it is unknown); a session that does not answer in time is killed
// and treated the same; an nft error leaves the remembered state as is.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EndpointPolicy } from '../../policy/types.ts';
import { DatapathError } from '../exec.ts';
import { NftApplier, type NftTransport } from './apply.ts';
import { type CompiledTable, compile } from './compile.ts';

function table(port: number): CompiledTable {
  const policy: EndpointPolicy = {
    endpoint: 'prod/backend',
    identity: 257,
    ingress: { enforced: true, defaultDeny: true },
    egress: { enforced: false, defaultDeny: false },
    entries: [
      {
        key: { direction: 'INGRESS', identity: 256, proto: 6, portLo: port, portHi: port },
        verdict: 'allow',
        derivedFrom: [],
      },
    ],
    selectedBy: [],
  };
  return compile({
    ipcache: new Map([['10.0.1.20', 257]]),
    endpoints: [{ id: 1, ip: '10.0.1.20', iface: 'swv0000000001', policy }],
  });
}

type SessionOutcome = 'ok' | 'dead' | 'nft-error' | 'hang';

function fakeTransport(outcomes: SessionOutcome[]) {
  const calls: Array<{ via: 'session' | 'file'; script: string }> = [];
  const closed: number[] = [];
  let sessions = 0;
  const t: NftTransport = {
    session: () => {
      let alive = true;
      let kill: (() => void) | undefined;
      const n = ++sessions;
      return {
        get alive() {
          return alive;
        },
        async transact(script: string) {
          calls.push({ via: 'session', script });
          const o = outcomes.shift() ?? 'ok';
          if (o === 'hang') {
            // like a hung nft: no answer until the process is killed
            await new Promise<void>((resolve) => {
              kill = resolve;
            });
            throw new DatapathError('nft-session-dead', 'nft -i exited');
          }
          if (o === 'dead') {
            alive = false;
            throw new DatapathError('nft-session-dead', 'nft -i exited');
          }
          if (o === 'nft-error') throw new DatapathError('nft-apply-failed', 'Error: No such file');
        },
        close() {
          alive = false;
          closed.push(n);
          kill?.();
        },
      };
    },
    async runScript(_netns: string, script: string) {
      calls.push({ via: 'file', script });
    },
  };
  return { t, calls, closed };
}

const isFull = (s: string): boolean => s.startsWith('add table inet seawall\ndelete table inet seawall\n');

describe('NftApplier', () => {
  const rows: Array<{
    name: string;
    outcome: SessionOutcome;
    want: Array<{ via: 'session' | 'file'; full: boolean }>;
    throws?: string;
    statePort: number;
  }> = [
    {
      name: 'delta through the session',
      outcome: 'ok',
      want: [
        { via: 'file', full: true },
        { via: 'session', full: false },
      ],
      statePort: 81,
    },
    {
      name: 'session died in flight: full replacement, not the delta again',
      outcome: 'dead',
      want: [
        { via: 'file', full: true },
        { via: 'session', full: false },
        { via: 'file', full: true },
      ],
      statePort: 81,
    },
    {
      name: 'nft refused the delta: nothing changed, the state stays',
      outcome: 'nft-error',
      want: [
        { via: 'file', full: true },
        { via: 'session', full: false },
      ],
      throws: 'nft-apply-failed',
      statePort: 80,
    },
    {
      name: 'session hung: killed after the timeout, then full replacement',
      outcome: 'hang',
      want: [
        { via: 'file', full: true },
        { via: 'session', full: false },
        { via: 'file', full: true },
      ],
      statePort: 81,
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const { t, calls, closed } = fakeTransport([r.outcome]);
      const a = new NftApplier('sw-fake', t, { sessionTimeoutMs: 50 });
      await a.apply(table(80));
      const next = table(81);
      if (r.throws !== undefined) {
        await assert.rejects(a.apply(next), (e: DatapathError) => e.code === r.throws);
      } else {
        const st = await a.apply(next);
        const recovered = { dead: 'session-died', hang: 'session-timeout' }[r.outcome as string];
        assert.equal(st.kind, recovered !== undefined ? 'full' : 'delta');
        assert.equal(st.recovered, recovered);
      }
      assert.deepEqual(closed, r.outcome === 'hang' ? [1] : [], 'only a hung session is killed');
      assert.deepEqual(
        calls.map((c) => ({ via: c.via, full: isFull(c.script) })),
        r.want,
      );
      const el = [...a.state.endpoints.values()][0]?.in.sets[0]?.elements;
      assert.deepEqual(el, [`256 . 6 . ${r.statePort}`]);
    });
  }

  it('after a timeout the next delta goes through a new session', async () => {
    const { t, calls, closed } = fakeTransport(['hang', 'ok']);
    const a = new NftApplier('sw-fake', t, { sessionTimeoutMs: 20 });
    await a.apply(table(80));
    const t0 = performance.now();
    assert.equal((await a.apply(table(81))).recovered, 'session-timeout');
    assert.ok(performance.now() - t0 < 2000, 'the timeout bounds the wait');
    assert.equal((await a.apply(table(82))).kind, 'delta');
    assert.deepEqual(
      calls.map((c) => c.via),
      ['file', 'session', 'file', 'session'],
    );
    assert.deepEqual(closed, [1]);
  });

  it('a dead session is replaced by a new one for the next delta', async () => {
    const { t, calls } = fakeTransport(['dead', 'ok']);
    const a = new NftApplier('sw-fake', t);
    await a.apply(table(80));
    await a.apply(table(81));
    await a.apply(table(82));
    assert.deepEqual(
      calls.map((c) => c.via),
      ['file', 'session', 'file', 'session'],
    );
  });
});

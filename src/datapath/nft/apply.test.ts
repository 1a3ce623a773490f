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

function fakeTransport(outcomes: SessionOutcome[], nsGone = () => false) {
  const calls: Array<{ via: 'session' | 'file'; script: string }> = [];
  const closed: number[] = [];
  /** Makes session n die by itself (nft crashed): its onExit is called. */
  const crash: Array<() => void> = [];
  let sessions = 0;
  const t: NftTransport = {
    canRestart: () => !nsGone(),
    session: (_netns, onExit) => {
      let alive = true;
      let kill: (() => void) | undefined;
      const n = ++sessions;
      crash[n] = () => {
        alive = false;
        onExit?.();
      };
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
  return { t, calls, closed, crash, sessions: () => sessions };
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

describe('NftApplier.warm', () => {
  const until = async (cond: () => boolean, ms = 2000): Promise<void> => {
    const end = performance.now() + ms;
    while (!cond()) {
      if (performance.now() > end) throw new Error('condition not reached');
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it('starts the session with an empty transaction, and the first delta uses that session', async () => {
    const { t, calls, sessions } = fakeTransport([]);
    const a = new NftApplier('sw-fake', t);
    await a.warm();
    await a.apply(table(80));
    await a.apply(table(81));
    assert.deepEqual(
      calls.map((c) => [c.via, c.script === '' ? 'empty' : isFull(c.script) ? 'full' : 'delta']),
      [
        ['session', 'empty'],
        ['file', 'full'],
        ['session', 'delta'],
      ],
    );
    assert.equal(sessions(), 1, 'no second session');
    a.close();
  });

  it('a session that dies by itself is restarted and warmed before the next delta comes', async () => {
    const { t, calls, crash, sessions } = fakeTransport([]);
    const a = new NftApplier('sw-fake', t);
    await a.warm();
    await a.apply(table(80));
    crash[1]!();
    await until(() => sessions() === 2 && calls.filter((c) => c.script === '').length === 2);
    assert.equal(a.sessionRestarts, 1);
    assert.equal((await a.apply(table(81))).kind, 'delta');
    assert.equal(sessions(), 2);
    a.close();
  });

  it('a hung session killed by the timeout is replaced by a warm one', async () => {
    const { t, calls, sessions } = fakeTransport(['ok', 'hang']);
    const a = new NftApplier('sw-fake', t, { sessionTimeoutMs: 20 });
    await a.warm();
    await a.apply(table(80));
    assert.equal((await a.apply(table(81))).recovered, 'session-timeout');
    await until(() => sessions() === 2 && calls.filter((c) => c.script === '').length === 2);
    a.close();
  });

  it('no restart after close(), nor once the namespace is gone', async () => {
    let gone = false;
    const { t, crash, sessions } = fakeTransport([], () => gone);
    const a = new NftApplier('sw-fake', t);
    await a.warm();
    a.close();
    crash[1]!();
    const b = new NftApplier('sw-fake2', t);
    await b.warm();
    gone = true;
    crash[2]!();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sessions(), 2, 'neither was restarted');
    b.close();
  });
});

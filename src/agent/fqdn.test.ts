import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Flow } from '../flow/types.ts';
import { DNSCache } from '../fqdn/cache.ts';
import { PolicyEngine } from '../policy/engine.ts';
import type { MapStateEntry } from '../policy/types.ts';
import type { DNSAnswerMessage } from '../proxy/ipc.ts';
import { FQDNComponent } from './fqdn.ts';
import { withDestinationNames } from './fqdn-names.ts';
import { ProxyComponent } from './proxy.ts';
import type { NodeRuntime } from './runtime.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The parts of a NodeRuntime the FQDN component uses, recorded. */
function fakeRuntime(engine: PolicyEngine) {
  const runDir = mkdtempSync(join(tmpdir(), 'sw-fqdn-'));
  dirs.push(runDir);
  const calls: string[] = [];
  const hooks: Array<() => Promise<void> | void> = [];
  const declared: string[] = [];
  const rt = {
    engine,
    node: 'sw-fqdn-test',
    runDir,
    datapath: {
      nft: { state: { ipcache: new Map<string, number>([['10.0.0.1', 1000]]) } },
      declareTestHost: (_p: unknown, ip: string) => declared.push(ip),
    },
    beforeSync: (h: () => Promise<void> | void) => {
      hooks.push(h);
      return () => {};
    },
    sync: async () => {
      for (const h of hooks) await h();
      calls.push('sync');
      return { kind: 'delta', lines: 1, ms: 1 };
    },
    synced: async () => {
      calls.push('synced');
    },
    // the fake has no proxies: nothing to acknowledge
    async syncFQDN() {
      return { stats: await rt.sync(), acks: [] };
    },
  };
  return { rt: rt as unknown as NodeRuntime, calls, declared, runDir };
}

const answer = (name: string, ips: string[], ttl: number, id = 1): DNSAnswerMessage => ({
  type: 'dns-answer',
  id,
  endpoint: 'prod/client',
  name,
  ips,
  ttl,
});

describe('FQDNComponent', () => {
  it('an answer with new addresses syncs the kernel (and gives them ipcache entries); a repeat waits for the sync in flight only', async () => {
    let now = 1_000_000;
    const engine = new PolicyEngine({}, { dns: new DNSCache() });
    const { rt, calls, declared } = fakeRuntime(engine);
    const c = new FQDNComponent({ now: () => now, readConntrack: async () => '', runNft: async () => {} });
    c.start(rt);
    const allowed = await c.learn(answer('api.example.com.', ['192.0.2.1'], 30));
    assert.deepEqual(calls, ['synced', 'sync'], 'after the syncs in flight, one of its own');
    assert.deepEqual(
      allowed,
      { until: now + 30_000, minTtl: 0 },
      'the proxy is told how long they stay allowed',
    );
    assert.deepEqual(declared, ['192.0.2.1']);
    now += 1000;
    await c.learn(answer('api.example.com.', ['192.0.2.1'], 30, 2));
    assert.deepEqual(calls, ['synced', 'sync', 'synced']);
    const st = c.status();
    assert.equal(st.answers, 2);
    assert.equal(st.applied, 1);
    assert.equal(st.answerToAllowedMs.samples, 1, 'only the answer that changed the kernel');
    assert.deepEqual(engine.dns.lookupName('api.example.com', now), ['192.0.2.1']);
    await c.stop();
  });

  it("answer → kernel is timed from the proxy's `at` when the answer carries one", async () => {
    const engine = new PolicyEngine({}, { dns: new DNSCache() });
    const { rt } = fakeRuntime(engine);
    const c = new FQDNComponent({ readConntrack: async () => '', runNft: async () => {} });
    c.start(rt);
    await c.learn(answer('a.example.com.', ['192.0.2.1'], 30, 1)); // no `at`: not timed
    const at = performance.timeOrigin + performance.now() - 5; // the proxy had it 5 ms ago
    await c.learn({ ...answer('b.example.com.', ['192.0.2.2'], 30, 2), at });
    const st = c.status();
    assert.equal(st.answerToKernelMs.samples, 1);
    assert.ok(
      st.answerToKernelMs.p50 >= 5,
      `${st.answerToKernelMs.p50} ms: the 5 ms before the agent had it are left out`,
    );
    assert.equal(st.answerToAllowedMs.samples, 2, 'the agent times both from their arrival');
    await c.stop();
  });

  it('answers arriving together share one kernel delta; a repeat of one of them waits for that delta', async () => {
    const engine = new PolicyEngine({}, { dns: new DNSCache() });
    const { rt, calls } = fakeRuntime(engine);
    // the first sync is slow (an nft transaction in flight) and the answers pile up behind it
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const fake = rt as unknown as { sync: () => Promise<unknown>; synced: () => Promise<void> };
    const sync0 = fake.sync;
    let inFlight: Promise<unknown> = Promise.resolve();
    fake.sync = () => {
      const first = calls.filter((x) => x === 'sync').length === 0;
      inFlight = (first ? gate : Promise.resolve()).then(() => sync0());
      return inFlight;
    };
    fake.synced = () => inFlight.then(() => {});
    const c = new FQDNComponent({ readConntrack: async () => '', runNft: async () => {} });
    c.start(rt);
    const first = c.learn(answer('a.example.com.', ['192.0.2.1'], 30, 1));
    await new Promise((r) => setImmediate(r));
    const order: string[] = [];
    const later = [2, 3, 4].map((i) =>
      c.learn(answer(`n${i}.example.com.`, [`192.0.2.${i}`], 30, i)).then(() => order.push(`n${i}`)),
    );
    const repeat = c.learn(answer('n2.example.com.', ['192.0.2.2'], 30, 5)).then(() => order.push('repeat'));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(order, [], 'nothing released while the delta carrying them has not run');
    release();
    await Promise.all([first, ...later, repeat]);
    assert.equal(
      calls.filter((x) => x === 'sync').length,
      2,
      'the first answer, then one for the other three',
    );
    assert.equal(order.at(-1), 'repeat', 'the repeat waited for the shared delta');
    const st = c.status();
    assert.equal(st.applied, 4);
    assert.equal(st.syncs, 2);
    await c.stop();
  });

  it("answers released past the max delay are counted, in status and as Cilium's metric", () => {
    const c = new FQDNComponent({ readConntrack: async () => '', runNft: async () => {} });
    c.countTimeout();
    c.countTimeout();
    assert.equal(c.status().datapathUpdateTimeouts, 2);
    assert.equal(
      c.metricsText(),
      [
        '# HELP cilium_proxy_datapath_update_timeout_total Number of total datapath update timeouts due to FQDN IP updates',
        '# TYPE cilium_proxy_datapath_update_timeout_total counter',
        'cilium_proxy_datapath_update_timeout_total 2',
        '',
      ].join('\n'),
    );
  });

  it('expiry: due entries go and the kernel syncs; an address a live connection uses becomes a zombie listed in fqdn_zombie', async () => {
    let now = 2_000_000;
    const engine = new PolicyEngine({}, { dns: new DNSCache() });
    const { rt, calls } = fakeRuntime(engine);
    const scripts: string[] = [];
    let table =
      'ipv4 2 tcp 6 431999 ESTABLISHED src=10.0.0.1 dst=192.0.2.1 sport=50000 dport=443 src=192.0.2.1 dst=10.0.0.1 sport=443 dport=50000 [ASSURED] mark=0 zone=0 use=2\n';
    const c = new FQDNComponent({
      now: () => now,
      readConntrack: async () => table,
      runNft: async (_n, s) => {
        scripts.push(s);
      },
    });
    c.start(rt);
    await c.learn(answer('api.example.com.', ['192.0.2.1'], 2));
    await c.learn(answer('other.example.com.', ['192.0.2.2'], 2, 2));
    calls.length = 0;
    await c.tick();
    assert.deepEqual(calls, [], 'nothing due yet');
    now += 3000;
    await c.tick();
    assert.deepEqual(calls, ['sync']);
    assert.deepEqual(engine.dns.lookupName('api.example.com', now), []);
    assert.deepEqual(
      engine.dns.zombies().map((z) => z.ip),
      ['192.0.2.1'],
    );
    assert.deepEqual(scripts, [
      'flush set inet seawall fqdn_zombie\nadd element inet seawall fqdn_zombie { 10.0.0.1 . 192.0.2.1 . tcp . 443 }\n',
    ]);
    assert.equal(c.status().zombieConnections, 1);
    // the connection closed: the zombie and its element go
    table = '';
    await c.tick();
    assert.deepEqual(scripts.slice(1), ['flush set inet seawall fqdn_zombie\n']);
    assert.equal(c.status().zombies, 0);
    await c.stop();
  });

  it('the cache is persisted and restored into a new engine, expired entries skipped', async () => {
    let now = 3_000_000;
    const e1 = new PolicyEngine({}, { dns: new DNSCache() });
    const { rt, runDir } = fakeRuntime(e1);
    const c1 = new FQDNComponent({ now: () => now, readConntrack: async () => '', runNft: async () => {} });
    c1.start(rt);
    await c1.learn(answer('long.example.com.', ['192.0.2.5'], 300));
    await c1.learn(answer('short.example.com.', ['192.0.2.6'], 1, 2));
    await c1.stop();
    assert.ok(existsSync(join(runDir, 'fqdn-cache.json')));
    now += 5000;
    const e2 = new PolicyEngine({}, { dns: new DNSCache() });
    const c2 = new FQDNComponent({ now: () => now });
    const declared: string[] = [];
    c2.restore(e2, runDir, {
      declareTestHost: (_p: unknown, ip: string) => declared.push(ip),
    } as unknown as NodeRuntime['datapath']);
    assert.deepEqual(
      declared,
      ['192.0.2.5'],
      'the restored address gets its ipcache entry in the first table',
    );
    assert.deepEqual(e2.dns.lookupName('long.example.com', now), ['192.0.2.5']);
    assert.deepEqual(e2.dns.lookupName('short.example.com', now), []);
    assert.equal(c2.status().restored, 1);
    assert.equal(c2.status().expiredOnRestore, 1);
  });
});

describe('FQDNComponent zombies never fail a sync', () => {
  it('an nft error listing zombies is logged; the sync goes on', async () => {
    let now = 4_000_000;
    const engine = new PolicyEngine({}, { dns: new DNSCache() });
    const { rt, calls } = fakeRuntime(engine);
    const logs: string[] = [];
    const c = new FQDNComponent({
      now: () => now,
      log: (l) => logs.push(l),
      readConntrack: async () =>
        'ipv4 2 tcp 6 431999 ESTABLISHED src=10.0.0.1 dst=192.0.2.1 sport=50000 dport=443 src=192.0.2.1 dst=10.0.0.1 sport=443 dport=50000 [ASSURED] mark=0 zone=0 use=2\n',
      runNft: async () => {
        throw new Error('fqdn_zombie: no such table');
      },
    });
    c.start(rt);
    await c.learn(answer('api.example.com.', ['192.0.2.1'], 1));
    now += 2000;
    calls.length = 0;
    await c.tick();
    assert.deepEqual(calls, ['sync']);
    assert.ok(
      logs.some((l) => /no such table/.test(l)),
      logs.join('\n'),
    );
    await c.stop();
  });
});

describe('destination_names', () => {
  const engine = new PolicyEngine({}, { dns: new DNSCache() });
  const now = 5_000_000;
  engine.dns.learn('api.example.com.', ['192.0.2.1'], 30, now);
  engine.dns.learn('www.example.com.', ['192.0.2.1'], 30, now);
  const flow = (dst: string, l7 = false): Flow =>
    ({
      time: 't',
      uuid: 'u',
      verdict: 'FORWARDED',
      IP: { source: '10.0.0.1', destination: dst, ipVersion: 'IPv4' },
      ...(l7 ? { l7: { type: 'REQUEST' } } : {}),
    }) as Flow;
  const rows: Array<{ name: string; f: Flow; want: string[] | undefined }> = [
    {
      name: 'a connection to a learnt address: its names',
      f: flow('192.0.2.1'),
      want: ['api.example.com', 'www.example.com'],
    },
    { name: 'another address: none', f: flow('192.0.2.9'), want: undefined },
    { name: 'an L7 record (the DNS proxy’s own): untouched', f: flow('192.0.2.1', true), want: undefined },
  ];
  for (const r of rows) {
    it(r.name, () => {
      assert.deepEqual(withDestinationNames(r.f, engine, now).destination_names, r.want);
      // the record given may be a template (flow/template.ts) whose copies must not change
      assert.equal(r.f.destination_names, undefined, 'the record given is unchanged');
    });
  }
});

describe('FQDNComponent: an answer waits for the kernel and the proxies that judge its egress only', () => {
  const entry = (identity: number, parser?: 'http' | 'kafka'): MapStateEntry => {
    const e: MapStateEntry = {
      key: { direction: 'EGRESS', identity, proto: 6, portLo: 80, portHi: 80 },
      verdict: parser === undefined ? 'allow' : 'redirect',
      derivedFrom: [],
    };
    if (parser === 'http') e.l7 = { parser, rules: [] };
    if (parser === 'kafka') e.l7 = { parser, rules: [] };
    return e;
  };
  const LEARNT_ID = 16777300;
  const rows: Array<{ name: string; endpoint?: string; entries: MapStateEntry[]; waits: string[] }> = [
    { name: 'toFQDNs at L4 only: no proxy', entries: [entry(LEARNT_ID)], waits: [] },
    {
      name: 'HTTP rules on the learnt identity: the HTTP proxy',
      entries: [entry(LEARNT_ID, 'http')],
      waits: ['http'],
    },
    { name: 'a redirect on another identity: none', entries: [entry(999, 'kafka')], waits: [] },
    {
      name: 'a redirect for any peer (identity 0): that proxy',
      entries: [entry(0, 'kafka')],
      waits: ['kafka'],
    },
    {
      name: 'an endpoint the node does not know: every proxy',
      endpoint: 'prod/gone',
      entries: [],
      waits: ['http', 'kafka', 'dns'],
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const cache = new DNSCache();
      const engine = {
        dns: cache,
        endpointPolicy: () => ({ entries: r.entries }),
      } as unknown as PolicyEngine;
      const ipcache = new Map<string, number>();
      const gates = new Map<string, () => void>();
      const proxies = (['http', 'kafka', 'dns'] as const).map((parser) => new ProxyComponent({ parser }));
      const rt = {
        engine,
        node: 'sw-fqdn-test',
        runDir: mkdtempSync(join(tmpdir(), 'sw-fqdn-')),
        datapath: {
          nft: { state: { ipcache, endpoints: new Map([[7, {}]]) } },
          endpointIds: () => ({ 'pod:prod/client': 7 }),
          declareTestHost: (_p: unknown, ip: string) => ipcache.set(ip, LEARNT_ID),
        },
        beforeSync: () => () => {},
        synced: async () => {},
        syncFQDN: async () => ({
          stats: { kind: 'delta', lines: 1, ms: 1 },
          acks: proxies.map((component) => ({
            component,
            acked: new Promise<void>((res) => gates.set(component.parser, res)),
          })),
        }),
      } as unknown as NodeRuntime;
      dirs.push(rt.runDir);
      const c = new FQDNComponent({ readConntrack: async () => '', runNft: async () => {} });
      c.start(rt);
      let released = false;
      const done = c
        .learn({ ...answer('api.example.com.', ['192.0.2.1'], 30), endpoint: r.endpoint ?? 'prod/client' })
        .then(() => {
          released = true;
        });
      const tick = () => new Promise((res) => setTimeout(res, 10));
      // the proxies it need not wait for acknowledge first: still held while one it needs has not
      for (const p of ['http', 'kafka', 'dns']) if (!r.waits.includes(p)) gates.get(p)?.();
      await tick();
      assert.equal(
        released,
        r.waits.length === 0,
        'released once the kernel and the proxies it needs are done',
      );
      for (const p of r.waits) gates.get(p)?.();
      await done;
      await c.stop();
    });
  }
});

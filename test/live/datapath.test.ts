// The nftables datapath on real packets between namespaces, with EndpointPolicies set directly
// (the fake engine), so each row pins one datapath behaviour. Root + Linux + nft + ip, else skipped.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { must, run } from '../../src/datapath/exec.ts';
import { type LivePeer, NodeDatapath } from '../../src/datapath/node.ts';
import { FakeEngine } from '../../src/policy/testing/fake-engine.ts';
import { ProbePool, ping } from '../../src/testbed/probe.ts';
import { entry, liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason();

describe('live datapath', { skip }, () => {
  const eng = new FakeEngine();
  const dp = new NodeDatapath(eng, { node: testNode('dp') });
  const probes = new ProbePool();
  let a: LivePeer; // prod/a  identity 256
  let b: LivePeer; // prod/b  identity 257
  let c: LivePeer; // other/c identity 258
  let ext: LivePeer; // 192.168.5.5 outside
  let ext2: LivePeer; // 192.168.100.7 outside

  before(async () => {
    await dp.up();
    a = (await dp.addPod({ name: 'a', namespace: 'prod', labels: {}, ip: '10.0.1.10' }))!;
    b = (await dp.addPod({ name: 'b', namespace: 'prod', labels: {}, ip: '10.0.1.20' }))!;
    c = (await dp.addPod({ name: 'c', namespace: 'other', labels: {}, ip: '10.0.2.30' }))!;
    ext = await dp.addTestHost({ kind: 'ip', ip: '192.168.5.5' }, '192.168.5.5');
    ext2 = await dp.addTestHost({ kind: 'ip', ip: '192.168.100.7' }, '192.168.100.7');
    for (const h of [a, b, c, ext, ext2]) {
      for (const port of [80, 81, 5432, 8000, 8080, 9000]) await probes.get(h.ns).listen('tcp', port);
      await probes.get(h.ns).listen('udp', 53);
      await probes.get(h.ns).listen('udp', 54);
    }
    await probes.get(dp.node).listen('tcp', 10250);
  });

  after(async () => {
    probes.closeAll();
    await dp.down();
  });

  const tcp = async (from: LivePeer | string, to: string, port: number): Promise<boolean> =>
    (await probes.get(typeof from === 'string' ? from : from.ns).connect('tcp', to, port, 300)).passed;
  const udp = async (from: LivePeer, to: string, port: number): Promise<boolean> =>
    (await probes.get(from.ns).connect('udp', to, port, 300)).passed;

  it('allows everything while no policy selects anyone', async () => {
    await dp.sync();
    assert.equal(await tcp(a, b.ip, 80), true);
    assert.equal(await tcp(c, b.ip, 81), true);
  });

  it('pod-to-pod and cross-namespace ingress with default deny', async () => {
    eng.setPolicy('prod', 'b', {
      ingress: { enforced: true, defaultDeny: true },
      entries: [entry('INGRESS', 256, 6, 80), entry('INGRESS', 258, 6, 8080)],
    });
    await dp.sync();
    const rows: Array<[string, LivePeer, number, boolean]> = [
      ['same namespace, allowed port', a, 80, true],
      ['same namespace, other port (default deny)', a, 81, false],
      ['other namespace, its port', c, 8080, true],
      ['other namespace, not its port', c, 80, false],
    ];
    for (const [name, from, port, want] of rows) assert.equal(await tcp(from, b.ip, port), want, name);
  });

  it('deny over allow and port ranges', async () => {
    eng.setPolicy('prod', 'b', {
      ingress: { enforced: true, defaultDeny: true },
      entries: [
        entry('INGRESS', 256, 6, 1, 10000),
        entry('INGRESS', 256, 6, 8080, 9000, 'deny'),
        entry('INGRESS', 0, 6, 5432, 5432, 'deny'),
      ],
    });
    await dp.sync();
    const rows: Array<[string, number, boolean]> = [
      ['inside the allowed range', 80, true],
      ['range start of the deny hole', 8080, false],
      ['range end of the deny hole', 9000, false],
      ['below the hole', 8000, true],
      ['wildcard-peer deny', 5432, false],
    ];
    for (const [name, port, want] of rows) assert.equal(await tcp(a, b.ip, port), want, name);
  });

  it('UDP and ICMP', async () => {
    eng.setPolicy('prod', 'b', {
      ingress: { enforced: true, defaultDeny: true },
      entries: [entry('INGRESS', 256, 17, 53), entry('INGRESS', 256, 1, 8)],
    });
    await dp.sync();
    assert.equal(await udp(a, b.ip, 53), true, 'udp allowed port');
    assert.equal(await udp(a, b.ip, 54), false, 'udp other port');
    assert.equal(await tcp(a, b.ip, 53), false, 'tcp on a udp-only rule');
    assert.equal((await ping(a.ns, b.ip, 500)).passed, true, 'echo request from a');
    assert.equal((await ping(c.ns, b.ip, 500)).passed, false, 'echo request from c');
  });

  it('entities: host, and CIDR identities of outside hosts (egress)', async () => {
    eng.setPolicy('prod', 'b', { ingress: { enforced: false, defaultDeny: false }, entries: [] });
    const extId = eng.identityOf({ kind: 'ip', ip: '192.168.5.5' });
    eng.setPolicy('prod', 'a', {
      egress: { enforced: true, defaultDeny: true },
      entries: [entry('EGRESS', 1, 6, 10250), entry('EGRESS', extId, 6, 5432)],
    });
    await dp.sync();
    const rows: Array<[string, string, number, boolean]> = [
      ['to host (node ns)', dp.topo.nodeIp, 10250, true],
      ['to the allowed outside host', ext.ip, 5432, true],
      ['to another outside host', ext2.ip, 5432, false],
      ['to a pod (not allowed)', b.ip, 80, false],
    ];
    for (const [name, to, port, want] of rows) assert.equal(await tcp(a, to, port), want, name);
    // ingress from outside: default deny keeps the world out, the node may reach its pods
    eng.setPolicy('prod', 'a', {
      ingress: { enforced: true, defaultDeny: true },
      egress: { enforced: false, defaultDeny: false },
      entries: [],
    });
    await dp.sync();
    assert.equal(await tcp(ext, a.ip, 80), false, 'outside → pod under default deny');
    assert.equal(await tcp(dp.node, a.ip, 80), true, 'host → pod (allow-localhost)');
  });

  it('anti-spoofing: a pod sending with an address not its own is dropped at its veth', async () => {
    for (const p of ['a', 'b', 'c']) {
      eng.setPolicy(p === 'c' ? 'other' : 'prod', p, {
        ingress: { enforced: false, defaultDeny: false },
        egress: { enforced: false, defaultDeny: false },
        entries: [],
      });
    }
    await dp.sync();
    // packets that reach a: its eth0 receive counter (replies of forged pings go elsewhere)
    const rx = async (): Promise<number> => {
      const j = JSON.parse(await must('ip', ['-n', a.ns, '-s', '-j', 'link', 'show', 'eth0'])) as Array<{
        stats64: { rx: { packets: number } };
      }>;
      return j[0]?.stats64.rx.packets ?? 0;
    };
    const pings = async (src: string): Promise<number> => {
      const before = await rx();
      await run('ip', [
        'netns',
        'exec',
        c.ns,
        'ping',
        '-n',
        '-q',
        '-c',
        '20',
        '-i',
        '0.01',
        '-W',
        '0.2',
        '-I',
        src,
        a.ip,
      ]);
      return (await rx()) - before;
    };
    const forged = ['10.0.9.9', b.ip];
    for (const ip of forged) await must('ip', ['-n', c.ns, 'addr', 'add', `${ip}/32`, 'dev', 'eth0']);
    try {
      const rows: Array<[string, string, boolean]> = [
        ['own address', c.ip, true],
        ['another pod’s address (its egress policy would apply)', b.ip, false],
        ['an address no pod has', '10.0.9.9', false],
      ];
      for (const [name, src, want] of rows) {
        const got = await pings(src);
        if (want) assert.ok(got >= 20, `${name}: ${got} of 20 echo requests reached a`);
        else assert.ok(got < 3, `${name}: ${got} of 20 forged echo requests reached a`);
      }
      // and the TCP probe from c's own address still works
      assert.equal(await tcp(c, a.ip, 80), true);
    } finally {
      for (const ip of forged) await run('ip', ['-n', c.ns, 'addr', 'del', `${ip}/32`, 'dev', 'eth0']);
    }
  });

  it('enforced without default deny: only denies apply', async () => {
    eng.setPolicy('prod', 'a', {
      ingress: { enforced: true, defaultDeny: false },
      entries: [entry('INGRESS', 257, 6, 81, 81, 'deny')],
    });
    await dp.sync();
    assert.equal(await tcp(b, a.ip, 80), true);
    assert.equal(await tcp(b, a.ip, 81), false);
  });

  it('a policy change takes effect for new connections while traffic flows', async () => {
    eng.setPolicy('prod', 'a', {
      ingress: { enforced: true, defaultDeny: true },
      entries: [entry('INGRESS', 257, 6, 80)],
    });
    await dp.sync();
    let stop = false;
    const seen: boolean[] = [];
    const load = (async () => {
      while (!stop) seen.push(await tcp(b, a.ip, 80));
    })();
    await new Promise((r) => setTimeout(r, 200));
    eng.setPolicy('prod', 'a', {
      ingress: { enforced: true, defaultDeny: true },
      entries: [entry('INGRESS', 257, 6, 81)],
    });
    const st = await dp.sync();
    assert.equal(st.kind, 'delta');
    const cut = seen.length;
    await new Promise((r) => setTimeout(r, 800));
    stop = true;
    await load;
    assert.ok(
      seen.slice(0, cut).some((x) => x),
      'allowed before the change',
    );
    assert.deepEqual(
      seen.slice(cut + 1).filter((x) => x),
      [],
      'no new connection after the change',
    );
    assert.equal(await tcp(b, a.ip, 81), true);
  });

  it('1,000 policy updates while a client hammers a denied port: zero connections get through', async () => {
    eng.setPolicy('prod', 'a', {
      ingress: { enforced: true, defaultDeny: true },
      entries: [entry('INGRESS', 257, 6, 80), entry('INGRESS', 257, 6, 9000, 9000, 'deny')],
    });
    await dp.sync();
    let stop = false;
    let attempts = 0;
    let through = 0;
    const hammer = (async () => {
      while (!stop) {
        attempts++;
        if (await tcp(b, a.ip, 9000)) through++;
      }
    })();
    for (let i = 0; i < 1000; i++) {
      // the allowed set churns (adds, removes, reshapes) and the deny stays: 9000 must never pass
      const entries = [
        entry('INGRESS', 257, 6, 9000, 9000, 'deny'),
        entry('INGRESS', 257, 6, 1000 + (i % 50), 1000 + (i % 50) + (i % 7)),
      ];
      if (i % 3 === 0) entries.push(entry('INGRESS', 0, 6, 8000, 8999));
      if (i % 5 === 0) entries.push(entry('INGRESS', 256, 0, 0, 65535));
      eng.setPolicy('prod', 'a', { ingress: { enforced: true, defaultDeny: true }, entries });
      await dp.sync();
    }
    stop = true;
    await hammer;
    assert.ok(attempts > 0);
    assert.equal(through, 0, `${through} of ${attempts} connections to the denied port got through`);
  });
});

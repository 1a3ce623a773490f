// Restart and leftovers: an adopting restart removes namespaces no endpoint claims (or at another
// address) before the new table goes in; IPv6 from a pod passes no policy, so it is dropped at
// its veth; --cleanup stops processes left inside a crashed run's namespaces.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { cleanup } from '../../src/datapath/cleanup.ts';
import { must, run } from '../../src/datapath/exec.ts';
import { delNetns, netnsExists } from '../../src/datapath/netns.ts';
import { NodeDatapath } from '../../src/datapath/node.ts';
import { FakeEngine } from '../../src/policy/testing/fake-engine.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason();

describe('live restart and leftovers', { skip }, () => {
  const made: NodeDatapath[] = [];
  after(async () => {
    for (const d of made) {
      for (const h of d.topo.records) await delNetns(h.ns);
      await d.down();
    }
  });

  it('an adopting restart prunes unclaimed and moved hosts before the table', async () => {
    const node = testNode('rs');
    const first = new NodeDatapath(new FakeEngine(), { node });
    made.push(first);
    await first.up();
    const keep = (await first.addPod({ name: 'keep', namespace: 'p', labels: {}, ip: '10.0.9.1' }))!;
    const gone = (await first.addPod({ name: 'gone', namespace: 'p', labels: {}, ip: '10.0.9.2' }))!;
    const moved = (await first.addPod({ name: 'moved', namespace: 'p', labels: {}, ip: '10.0.9.3' }))!;
    first.nft.close(); // the "crash": namespaces and table stay
    const second = new NodeDatapath(new FakeEngine(), { node });
    made.push(second);
    await second.addPod(
      { name: 'keep', namespace: 'p', labels: {}, ip: '10.0.9.1' },
      { sync: false, connect: false },
    );
    await second.addPod(
      { name: 'moved', namespace: 'p', labels: {}, ip: '10.0.9.4' },
      { sync: false, connect: false },
    );
    await second.up({ adopt: true });
    assert.equal(netnsExists(keep.ns), true, 'claimed host adopted');
    assert.equal(netnsExists(gone.ns), false, 'unclaimed host removed before the table');
    assert.equal(netnsExists(moved.ns), false, 'host at another address removed before the table');
    await second.connect();
    assert.equal(second.topo.host('pod:p/moved')?.ip, '10.0.9.4');
  });

  it('drops IPv6 from a pod (no policy lookup could judge it)', async () => {
    const d = new NodeDatapath(new FakeEngine(), { node: testNode('v6') });
    made.push(d);
    await d.up();
    const a = (await d.addPod({ name: 'a', namespace: 'p', labels: {}, ip: '10.0.8.1' }))!;
    const veth = d.topo.host(a.key)!.veth;
    const six = await run('ip', ['-n', d.node, '-6', 'addr', 'add', 'fd00:5ea::1/128', 'dev', veth, 'nodad']);
    if (six.code !== 0) return; // IPv6 disabled in this kernel: nothing to bypass with
    await must('ip', ['-n', a.ns, '-6', 'addr', 'add', 'fd00:5ea::2/128', 'dev', 'eth0', 'nodad']);
    await must('ip', ['-n', a.ns, '-6', 'route', 'add', 'fd00:5ea::1/128', 'dev', 'eth0']);
    await must('ip', ['-n', d.node, '-6', 'route', 'replace', 'fd00:5ea::2/128', 'dev', veth]);
    const ping6 = () =>
      run('ip', ['netns', 'exec', a.ns, 'ping', '-6', '-n', '-c', '1', '-W', '1', 'fd00:5ea::1']);
    assert.notEqual((await ping6()).code, 0, 'IPv6 to the node dropped at the veth');
  });

  it('--cleanup stops processes left inside a crashed run and removes its namespaces', async () => {
    const d = new NodeDatapath(new FakeEngine(), { node: testNode('cl') });
    made.push(d);
    await d.up();
    const a = (await d.addPod({ name: 'a', namespace: 'p', labels: {}, ip: '10.0.7.1' }))!;
    const p = spawn('ip', ['netns', 'exec', a.ns, 'sleep', '300'], { stdio: 'ignore', detached: true });
    p.unref();
    await new Promise((r) => setTimeout(r, 200));
    d.nft.close();
    // a crashed run: its state file names a pid that is gone
    d.topo.persist();
    const { readFileSync, writeFileSync } = await import('node:fs');
    const st = JSON.parse(readFileSync(d.topo.stateFile, 'utf8')) as { pid: number };
    st.pid = 2 ** 22 + 1; // above pid_max's default: no such process
    writeFileSync(d.topo.stateFile, JSON.stringify(st));
    const exited = new Promise((r) => p.once('exit', r));
    const r = await cleanup({ node: d.node }); // only this test's run, never another's
    assert.ok(r.removed.includes(d.node) && r.removed.includes(a.ns), r.removed.join(' '));
    await exited;
    assert.equal(netnsExists(a.ns), false);
    assert.equal(netnsExists(d.node), false);
  });
});

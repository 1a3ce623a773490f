// An underlay shared by several nodes' agents: each node holds a reference, and neither a node
// leaving nor `--cleanup` removes the underlay while another live agent still uses it (whoever
// made it may be gone). Two node namespaces made here join one underlay made here.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanup } from '../../src/datapath/cleanup.ts';
import { run } from '../../src/datapath/exec.ts';
import { addNetns, delNetns, netnsExists } from '../../src/datapath/netns.ts';
import {
  Underlay,
  underlayLockFile,
  underlayNodeIp,
  underlayUsers,
  underlayUsersDir,
} from '../../src/datapath/underlay.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason();

/** A pid that no process has any more (a child that already exited). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

const linked = async (ns: string): Promise<boolean> =>
  (await run('ip', ['-n', ns, 'link', 'show', 'ul0'])).code === 0;

describe('underlay references', { skip }, () => {
  const made: string[] = [];
  const underlays: Underlay[] = [];
  after(async () => {
    for (const u of underlays) await u.down().catch(() => {});
    for (const n of made) await delNetns(n).catch(() => {});
  });

  /** Two node namespaces made here (removed after). */
  async function twoNodes(tag: string): Promise<[string, string]> {
    const nodes: [string, string] = [testNode(`${tag}a`), testNode(`${tag}b`)];
    for (const n of nodes) {
      await addNetns(n);
      made.push(n);
    }
    return nodes;
  }

  async function setup(tag: string): Promise<{ u: Underlay; a: string; b: string }> {
    const u = new Underlay(testNode(`ul${tag}`));
    underlays.push(u);
    const [a, b] = await twoNodes(tag);
    await u.up();
    await u.attach(a, underlayNodeIp(1));
    await u.attach(b, underlayNodeIp(2));
    return { u, a, b };
  }

  it('a node leaving keeps the underlay while another node references it; the last one removes it', async () => {
    const { u, a, b } = await setup('r');
    assert.deepEqual(
      underlayUsers(u.name).map((x) => [x.node, x.alive]),
      [a, b].sort().map((n) => [n, true]),
    );
    assert.equal(await u.release(a), false, 'released while node b still uses it');
    assert.ok(netnsExists(u.name), 'the underlay went with node a');
    assert.ok(await linked(b), "node b's underlay link went");
    assert.equal(await linked(a), false, "node a's link stayed");
    assert.equal(await u.release(b), true);
    assert.equal(netnsExists(u.name), false, 'the last node left and the underlay stayed');
    assert.equal(existsSync(u.stateFile), false);
    assert.equal(existsSync(underlayUsersDir(u.name)), false);
    assert.equal(existsSync(underlayLockFile(u.name)), false, 'the lock file stayed');
  });

  it('two agents joining at once (each its own Underlay) make one bridge and both attach', async () => {
    const name = testNode('ulj');
    const [u1, u2] = [new Underlay(name), new Underlay(name)];
    underlays.push(u1);
    const [a, b] = await twoNodes('j');
    await Promise.all([u1.join(a, underlayNodeIp(1)), u2.join(b, underlayNodeIp(2))]);
    assert.ok(await linked(a), 'node a has no underlay link');
    assert.ok(await linked(b), 'node b has no underlay link');
    const ports = await run('ip', ['-n', name, '-br', 'link', 'show', 'master', 'br0']);
    assert.equal(ports.stdout.trim().split('\n').length, 2, `bridge ports: ${ports.stdout}`);
    const ping = await run('ip', ['netns', 'exec', a, 'ping', '-c1', '-W1', underlayNodeIp(2)]);
    assert.equal(ping.code, 0, `node a cannot reach node b: ${ping.stdout}`);
    assert.deepEqual(
      underlayUsers(name).map((x) => x.node),
      [a, b].sort(),
    );
  });

  it('--cleanup keeps an underlay whose maker is dead while another agent references it', async () => {
    const { u, a, b } = await setup('c');
    // the maker (the agent of node a, say) is dead: its state file names a pid nobody has
    const st = JSON.parse(readFileSync(u.stateFile, 'utf8')) as { pid: number };
    st.pid = deadPid();
    writeFileSync(u.stateFile, JSON.stringify(st));
    writeFileSync(join(underlayUsersDir(u.name), a), `${st.pid}\n`);
    const r1 = await cleanup({ node: u.name });
    assert.deepEqual(r1.removed, [], 'cleanup removed an underlay a live agent uses');
    assert.ok(netnsExists(u.name));
    assert.ok(await linked(b));
    // node b's agent dies too: now it is a leftover
    writeFileSync(join(underlayUsersDir(u.name), b), `${st.pid}\n`);
    const r2 = await cleanup({ node: u.name });
    assert.deepEqual(r2.removed, [u.name]);
    assert.equal(netnsExists(u.name), false);
    assert.equal(existsSync(underlayUsersDir(u.name)), false);
  });
});

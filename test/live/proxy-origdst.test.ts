// The original-destination primitive, live: a pod namespace and a node namespace (both made
// here, unique names), an nft table of our own in the node namespace that REDIRECTs tcp dport X
// to the proxy's port, a client in the pod connecting to X, and the proxy (with the
// SO_ORIGINAL_DST addon) reporting X as the original destination, judging, and forwarding there.
// Everything is removed in `after`, also when a test failed.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ADDON_PATH } from '../../src/proxy/origdst.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
const skip =
  liveSkipReason() ??
  (existsSync(ADDON_PATH) ? undefined : `addon not built (${ADDON_PATH}); run scripts/build-addon.sh`);

const SERVER_PORT = 8080;
const PROXY_PORT = 15001;
const UNRELATED_PORT = 9090;

describe('SO_ORIGINAL_DST behind an nftables REDIRECT', { skip }, () => {
  const node = testNode('pxn');
  const pod = testNode('pxp');
  const table = `seawall_t${process.pid}_px`;
  const octet = 100 + (process.pid % 100);
  const nodeIP = `10.${octet}.7.1`;
  const podIP = `10.${octet}.7.2`;
  const vethN = `swpn${process.pid % 10000}`;
  const vethP = `swpp${process.pid % 10000}`;
  let child: ChildProcess | undefined;
  const events: Array<Record<string, unknown>> = [];

  const ip = (...args: string[]) => run('ip', args);
  const inNs = (ns: string, cmd: string, ...args: string[]) => run('ip', ['netns', 'exec', ns, cmd, ...args]);

  before(async () => {
    await ip('netns', 'add', node);
    await ip('netns', 'add', pod);
    await ip('link', 'add', vethN, 'netns', node, 'type', 'veth', 'peer', 'name', vethP, 'netns', pod);
    await inNs(node, 'ip', 'addr', 'add', `${nodeIP}/24`, 'dev', vethN);
    await inNs(pod, 'ip', 'addr', 'add', `${podIP}/24`, 'dev', vethP);
    for (const [ns, dev] of [
      [node, vethN],
      [pod, vethP],
    ] as const) {
      await inNs(ns, 'ip', 'link', 'set', dev, 'up');
      await inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    }
    await inNs(node, 'nft', 'add', 'table', 'ip', table);
    await inNs(
      node,
      'nft',
      'add',
      'chain',
      'ip',
      table,
      'pre',
      '{ type nat hook prerouting priority -100; }',
    );
    await inNs(
      node,
      'nft',
      'add',
      'rule',
      'ip',
      table,
      'pre',
      'tcp',
      'dport',
      String(SERVER_PORT),
      'redirect',
      'to',
      `:${PROXY_PORT}`,
    );
    child = spawn(
      'ip',
      ['netns', 'exec', node, process.execPath, '--import', 'tsx', 'test/live/testdata/proxy/node-side.ts'],
      {
        cwd: REPO,
        env: {
          ...process.env,
          SERVER_IP: nodeIP,
          SERVER_PORT: String(SERVER_PORT),
          PROXY_PORT: String(PROXY_PORT),
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const lines = createInterface({ input: child.stdout! });
    const ready = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the proxy did not start in 20 s')), 20_000);
      lines.on('line', (l) => {
        const e = JSON.parse(l) as Record<string, unknown>;
        events.push(e);
        if (e.ready === true) {
          clearTimeout(t);
          resolve();
        }
      });
      child!.once('exit', (code) => reject(new Error(`the proxy exited (${code})`)));
    });
    await ready;
  });

  after(async () => {
    if (child !== undefined && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    // Our table, our namespaces (the veth pair goes with them); each step even if one failed.
    await inNs(node, 'nft', 'delete', 'table', 'ip', table).catch(() => {});
    await ip('netns', 'del', pod).catch(() => {});
    await ip('netns', 'del', node).catch(() => {});
  });

  const curl = async (port: number, path: string) => {
    try {
      const r = await inNs(
        pod,
        'curl',
        '-s',
        '-m',
        '5',
        '-o',
        '-',
        '-w',
        '\n%{http_code}',
        `http://${nodeIP}:${port}${path}`,
      );
      const cut = r.stdout.lastIndexOf('\n');
      return { code: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
    } catch (e) {
      const out = (e as { stdout?: string }).stdout ?? '';
      return { code: Number(out.trim().split('\n').pop() ?? 0), body: '', failed: true };
    }
  };

  test('the proxy reports the port the client connected to as the original destination', async () => {
    const before = events.length;
    const r = await curl(SERVER_PORT, '/public/hello');
    assert.equal(r.code, 200, JSON.stringify(events.slice(before)));
    assert.equal(r.body, 'server saw GET /public/hello\n');
    const conn = events.slice(before).find((e) => e.conn !== undefined)?.conn as {
      originalDst: { address: string; port: number };
      local: { port: number };
      remote: { address: string };
    };
    assert.deepEqual(conn.originalDst, { address: nodeIP, port: SERVER_PORT });
    assert.equal(conn.local.port, PROXY_PORT);
    assert.equal(conn.remote.address, podIP);
  });

  test('a request the rules deny gets 403 through the redirect', async () => {
    const r = await curl(SERVER_PORT, '/admin');
    assert.equal(r.code, 403);
    assert.equal(r.body, 'Access denied\r\n');
  });

  test('a connection straight to the proxy port (no NAT entry) is refused', async () => {
    const before = events.length;
    const r = await curl(PROXY_PORT, '/public/hello');
    assert.equal(r.code, 0);
    const refused = events.slice(before).find((e) => e.refused !== undefined);
    // conntrack has an entry without NAT: the "original" destination is the proxy port itself.
    assert.match(String(refused?.refused), /not redirected/, JSON.stringify(events.slice(before)));
  });

  test('an unrelated port is not redirected', async () => {
    const r = await curl(UNRELATED_PORT, '/');
    assert.equal(r.code, 0, 'nothing listens there and nothing redirected it');
  });
});

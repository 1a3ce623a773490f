// Issue 8, agent items, live: the policy directory watcher survives renames and directory swaps
// and a resync corrects missed events (item 2); a non-atomic rewrite never opens the pod (item 3);
// more idle status connections than the limit do not hurt the agent (item 4); a FIFO in the
// policy directory is skipped with its reason (item 5). An agent in this process, so the test can
// take its watchers away (a missed event) and read its status directly.

import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, fetchStatus, STATUS_LIMITS } from '../../src/agent/agent.ts';
import { cleanup } from '../../src/datapath/cleanup.ts';
import { delNetns, netnsExists } from '../../src/datapath/netns.ts';
import { NodeDatapath } from '../../src/datapath/node.ts';
import { runDirFor, stateFileFor, Topology } from '../../src/datapath/topology.ts';
import { findUlogdPluginDir } from '../../src/flow/nflog.ts';
import { FakeEngine } from '../../src/policy/testing/fake-engine.ts';
import { ProbePool } from '../../src/testbed/probe.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason();
const TESTDATA = join(import.meta.dirname, 'testdata', 'agent');

function policy(ports: number[]): string {
  const list = ports.map((p) => `{port: "${p}", protocol: TCP}`).join(', ');
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ledger-from-client, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: ledger}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [${list}]}]
`;
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('agent hardening (issue 8 items 2, 3, 4, 5)', { skip }, () => {
  const node = testNode('hd');
  const dir = mkdtempSync(join(tmpdir(), 'seawall-hardening-'));
  const socket = join(dir, 'agent.sock');
  const policies = join(dir, 'policies');
  const file = join(policies, 'ledger.yaml');
  const topo = new Topology({ node });
  const clientNs = topo.nsName('pod:shop/client');
  const ledgerNs = topo.nsName('pod:shop/ledger');
  const probes = new ProbePool();
  const logs: string[] = [];
  let agent: Agent | undefined;
  const tcp = async (port: number, timeoutMs = 300): Promise<boolean> =>
    (await probes.get(clientNs).connect('tcp', '10.0.7.20', port, timeoutMs)).passed;
  /** Exactly these ports of 7070, 8080, 9090 get through. */
  const enforces = (open: number[]): Promise<boolean> =>
    waitFor(async () => {
      for (const p of [7070, 8080, 9090]) if ((await tcp(p)) !== open.includes(p)) return false;
      return true;
    }, 10_000);
  /** Replaces a file the way editors and `sed -i` do: a new file renamed over the old. */
  const replaceByRename = (path: string, text: string): void => {
    const tmp = `${path}.tmp${Date.now()}`;
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  };

  before(async () => {
    mkdirSync(policies);
    writeFileSync(file, policy([8080]));
    agent = new Agent({
      policies,
      endpoints: join(TESTDATA, 'endpoints.yaml'),
      node,
      socket,
      flows: false,
      resyncMs: 1000,
      log: (l) => logs.push(l),
    });
    await agent.start();
    for (const p of [7070, 8080, 9090]) await probes.get(ledgerNs).listen('tcp', p);
  });

  after(async () => {
    probes.closeAll();
    await agent?.stop();
    for (const ns of [clientNs, ledgerNs, node]) if (netnsExists(ns)) await delNetns(ns);
    rmSync(stateFileFor(node), { force: true });
    rmSync(runDirFor(node), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('item 2: edits after a file was replaced by rename are applied, every time', async () => {
    assert.ok(await enforces([8080]), 'initial policy');
    replaceByRename(file, policy([9090]));
    assert.ok(await enforces([9090]), 'first rename applied');
    replaceByRename(file, policy([7070]));
    assert.ok(await enforces([7070]), 'a later rename applied too');
    writeFileSync(file, policy([8080]));
    assert.ok(await enforces([8080]), 'an in-place write after the renames applied');
  });

  it('item 2: a swap of the whole directory is applied, and so are later edits in the new one', async () => {
    const fresh = join(dir, 'policies.new');
    mkdirSync(fresh);
    writeFileSync(join(fresh, 'ledger.yaml'), policy([9090]));
    renameSync(policies, join(dir, 'policies.old'));
    renameSync(fresh, policies);
    assert.ok(await enforces([9090]), 'the swapped-in directory applied');
    writeFileSync(file, policy([7070]));
    assert.ok(await enforces([7070]), 'an edit in the new directory applied');
    const s = await fetchStatus(socket);
    assert.ok(s.watch.rearms >= 1, `watchers re-armed: ${JSON.stringify(s.watch)}`);
    rmSync(join(dir, 'policies.old'), { recursive: true, force: true });
  });

  it('item 2: a missed event is corrected by the resync within seconds, and counted', async (t) => {
    const a = agent as unknown as { watchers: Map<string, { close(): void }> };
    const before = (await fetchStatus(socket)).resync.corrections;
    // every watcher gone: no event will announce the next change
    for (const w of a.watchers.values()) w.close();
    a.watchers.clear();
    writeFileSync(file, policy([8080]));
    const t0 = Date.now();
    assert.ok(await enforces([8080]), 'applied without any watch event');
    const took = Date.now() - t0;
    t.diagnostic(`missed event corrected in ${took} ms (resync every 1000 ms, settle 300 ms)`);
    assert.ok(took < 6000, `within seconds (${took} ms)`);
    const s = await fetchStatus(socket);
    assert.ok(s.resync.corrections > before, `corrections counted: ${JSON.stringify(s.resync)}`);
    assert.ok(s.watch.watchers > 0, 'watchers re-armed by the resync');
  });

  it('item 3: truncating and rewriting a policy lets no denied connection through', async (t) => {
    assert.ok(await enforces([8080]));
    const original = readFileSync(file, 'utf8');
    let stop = false;
    let attempts = 0;
    let through = 0;
    // four clients hammering the denied port for the whole change
    const hammer = async (): Promise<void> => {
      while (!stop) {
        attempts++;
        if (await tcp(9090, 100)) through++;
      }
    };
    const clients = [hammer(), hammer(), hammer(), hammer()];
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(file, ''); // truncate: valid, zero policies: the pod would be open
    await new Promise((r) => setTimeout(r, 120));
    const pending = (await fetchStatus(socket)).pendingChanges;
    await new Promise((r) => setTimeout(r, 80));
    writeFileSync(file, original); // written back 200 ms later
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await Promise.all(clients);
    assert.deepEqual(
      pending.map((p) => [p.file, p.change]),
      [[file, 'modified']],
      'status shows the change as pending',
    );
    t.diagnostic(`${through} of ${attempts} denied connections got through`);
    assert.ok(attempts >= 20, `${attempts} attempts`);
    assert.equal(through, 0, `${through} of ${attempts} denied connections got through`);
    assert.equal(await tcp(8080), true, 'the allowed port stays allowed');
    assert.deepEqual((await fetchStatus(socket)).pendingChanges, []);
  });

  it('item 5: a FIFO named x.yaml is skipped with its reason; the agent keeps working', async () => {
    const fifo = join(policies, 'x.yaml');
    execFileSync('mkfifo', [fifo]);
    try {
      assert.ok(
        await waitFor(
          async () =>
            (await fetchStatus(socket)).skippedFiles.some((f) => f.file === fifo && /FIFO/.test(f.reason)),
          6000,
        ),
        'skipped with its reason',
      );
      writeFileSync(file, policy([9090]));
      assert.ok(await enforces([9090]), 'changes still applied next to the FIFO');
    } finally {
      unlinkSync(fifo);
    }
  });

  it('item 4: more idle status connections than the limit; the agent survives and answers after', async (t) => {
    const n = STATUS_LIMITS.maxConnections * 3;
    const idle: Socket[] = await Promise.all(
      Array.from(
        { length: n },
        () =>
          new Promise<Socket>((resolve) => {
            const c = connect(socket, () => resolve(c));
            c.on('error', () => resolve(c));
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 300));
    const held = idle.filter((c) => !c.destroyed && c.readyState === 'open').length;
    t.diagnostic(`${n} idle connections opened, ${held} held by the agent`);
    assert.ok(held <= STATUS_LIMITS.maxConnections, `${held} idle connections held`);
    for (const c of idle) c.destroy();
    assert.ok(
      await waitFor(async () => (await fetchStatus(socket)).counts.endpoints === 2, 5000),
      'answers after they closed',
    );
    assert.equal(await tcp(9090), true, 'still enforcing the last policy');
    assert.equal(await tcp(8080), false);
    assert.equal(
      logs.some((l) => /EMFILE/.test(l)),
      false,
    );
  });
});

// The CLI side: a second agent refusing a live agent's socket (item 11), the per-node socket
// and `agent status --node`, node names, IPv6 endpoints, a clean stop's run dir and file modes,
// and `--cleanup --node`.

const REPO = join(import.meta.dirname, '..', '..');
const SEAWALL = join(REPO, 'bin', 'seawall.js');

describe('seawall agent (CLI): sockets, names, addresses, clean stop', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-agent-cli-'));
  const policies = join(dir, 'policies');
  cpSync(join(TESTDATA, 'policies'), policies, { recursive: true });
  const nodes: string[] = [];
  const children: Array<ReturnType<typeof spawn>> = [];

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    const { stopStaleUlogd } = await import('../../src/datapath/ulogd.ts');
    for (const n of nodes) {
      stopStaleUlogd(runDirFor(n));
      const t = new Topology({ node: n });
      for (const k of ['pod:shop/client', 'pod:shop/ledger', 'pod:shop/v6']) {
        if (netnsExists(t.nsName(k))) await delNetns(t.nsName(k));
      }
      if (netnsExists(n)) await delNetns(n);
      rmSync(stateFileFor(n), { force: true });
      rmSync(runDirFor(n), { recursive: true, force: true });
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (args: string[]): { code: number | null; out: string; err: string } => {
    const r = spawnSync(process.execPath, [SEAWALL, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  it('item 11: a second agent refuses a live agent socket (exit 1); the first stays reachable; status --node finds it; a clean stop leaves only the flow log, nothing world-readable', async () => {
    const a = testNode('ka');
    const b = testNode('kb');
    nodes.push(a, b);
    const first = spawn(
      process.execPath,
      [
        SEAWALL,
        'agent',
        '--policies',
        policies,
        '--endpoints',
        join(TESTDATA, 'endpoints.yaml'),
        '--node',
        a,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.push(first);
    let firstErr = '';
    first.stderr!.on('data', (d: Buffer) => {
      firstErr += d.toString();
    });
    const sock = join(runDirFor(a), 'agent.sock');
    assert.ok(await waitFor(async () => (await fetchStatus(sock)).counts.endpoints === 2, 30_000), firstErr);
    const st = run(['agent', 'status', '--node', a]);
    assert.equal(st.code, 0, st.err);
    assert.match(st.out, new RegExp(`^node ${a} `));
    assert.match(st.out, /watch: \d+ watchers/);

    const second = run([
      'agent',
      '--policies',
      policies,
      '--endpoints',
      join(TESTDATA, 'endpoints.yaml'),
      '--node',
      b,
      '--socket',
      sock,
    ]);
    assert.equal(second.code, 1, second.err);
    assert.match(second.err, /another agent is running on .*agent\.sock/);
    assert.equal(netnsExists(b), false, 'the refused agent made nothing');
    assert.equal(existsSync(stateFileFor(b)), false, 'nor its state file');
    assert.equal((await fetchStatus(sock)).node, a, 'the first agent is still reachable');

    if (findUlogdPluginDir() !== undefined) {
      assert.ok(
        await waitFor(async () => existsSync(join(runDirFor(a), 'ulogd.log')), 5000),
        'ulogd running',
      );
      for (const f of readdirSync(runDirFor(a))) {
        const mode = statSync(join(runDirFor(a), f)).mode & 0o777;
        assert.equal(mode & 0o007, 0, `${f} is not world-accessible (${mode.toString(8)})`);
      }
    }
    const exited = new Promise<number | null>((r) => first.once('exit', (code) => r(code)));
    first.kill('SIGTERM');
    assert.equal(await exited, 0, firstErr);
    const left = existsSync(runDirFor(a)) ? readdirSync(runDirFor(a)) : [];
    assert.deepEqual(
      left.filter((f) => !/^flows\.jsonl(\.\d+)?$/.test(f)),
      [],
      'a clean stop leaves only the flow log (no ulogd.log, sockets, ulogd files)',
    );
  });

  it('a node name without seawall- or sw- is refused before anything is written', () => {
    const r = run([
      'agent',
      '--policies',
      policies,
      '--endpoints',
      join(TESTDATA, 'endpoints.yaml'),
      '--node',
      'node9x',
    ]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /must start with seawall- or sw-/);
    assert.equal(existsSync(stateFileFor('node9x')), false, 'no state file left behind');
    assert.match(run(['agent', '--help']).out, /Node\s+names start with seawall- or sw-/);
  });

  it('an IPv6 endpoint address is refused at load, naming the endpoint', () => {
    const n = testNode('v6');
    nodes.push(n);
    const eps = join(dir, 'v6.yaml');
    writeFileSync(
      eps,
      `apiVersion: seawall/v1
kind: PolicyTest
metadata: {name: v6}
spec:
  endpoints:
    - {name: client, namespace: shop, labels: {app: client}, ip: 10.0.7.10}
    - {name: v6, namespace: shop, labels: {app: v6}, ip: "fd00:5ea::5"}
  flows: []
`,
    );
    const r = run(['agent', '--policies', policies, '--endpoints', eps, '--node', n]);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /endpoint shop\/v6: address fd00:5ea::5 is IPv6; the live datapath is IPv4 only/);
    assert.doesNotMatch(r.err, /nft|Error: /);
    assert.equal(netnsExists(n), false);
    assert.equal(existsSync(stateFileFor(n)), false);
  });

  it('--cleanup --node X cleans only node X', async () => {
    const made: NodeDatapath[] = [];
    for (const tag of ['cx', 'cy']) {
      const d = new NodeDatapath(new FakeEngine(), { node: testNode(tag) });
      nodes.push(d.node);
      await d.up();
      await d.addPod({ name: 'client', namespace: 'shop', labels: {}, ip: '10.0.7.10' });
      d.nft.close(); // the "crash"
      // a dead owner: above pid_max's default, no such process
      const stFile = d.topo.stateFile;
      const st = JSON.parse(readFileSync(stFile, 'utf8')) as { pid: number };
      st.pid = 2 ** 22 + 1;
      writeFileSync(stFile, JSON.stringify(st));
      made.push(d);
    }
    const [x, y] = made as [NodeDatapath, NodeDatapath];
    const r = await cleanup({ node: x.node });
    assert.ok(r.removed.includes(x.node), r.removed.join(' '));
    assert.ok(!r.removed.includes(y.node), 'the other dead run is left alone');
    assert.equal(netnsExists(x.node), false);
    assert.equal(netnsExists(y.node), true);
    const r2 = await cleanup({ node: y.node });
    assert.ok(r2.removed.includes(y.node));
    assert.equal(netnsExists(y.node), false);
  });
});

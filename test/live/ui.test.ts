// The web UI (src/ui/) against a live node's data: a node of its own (real engine, nftables, ulogd2 flow
// pipeline) with real TCP connections, its ring served by the Hubble Observer API on a unix
// socket, `seawall ui --server unix://…` style following it, and chromium checking the map, a
// filter, the detail panel's policy and file:line, the policy view and an export.
// Skips without root, nft, ulogd2's JSON plugin or chromium; always removes its namespaces.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { FlowPipeline } from '../../src/agent/flows.ts';
import { delNetns } from '../../src/datapath/netns.ts';
import { type LivePeer, NodeDatapath } from '../../src/datapath/node.ts';
import { liveUnavailable } from '../../src/datapath/preflight.ts';
import { findUlogdPluginDir } from '../../src/flow/nflog.ts';
import { parseFlowText } from '../../src/flow/read.ts';
import type { FlowEvent } from '../../src/flow/types.ts';
import { startHubbleServer } from '../../src/observe/hubble/server.ts';
import { defaultEngineFactory } from '../../src/policy/default-engine.ts';
import { loadPolicyBytes } from '../../src/policy-api/load.ts';
import { ProbePool } from '../../src/testbed/probe.ts';
import { hubbleSource } from '../../src/ui/server/sources.ts';
import { chromiumSkipReason, type LaunchedBrowser, launchChromium } from '../../src/ui/testing/browser.ts';
import { type Harness, startHarness } from '../../src/ui/testing/harness.ts';
import { testNode } from './helpers.ts';

const POLICIES = join(import.meta.dirname, '..', '..', 'src', 'ui', 'testdata', 'live-policies.yaml');
const skip =
  liveUnavailable(['ip', 'nft']) ??
  (findUlogdPluginDir() === undefined
    ? 'needs ulogd2 and ulogd2-json (apt-get install ulogd2 ulogd2-json)'
    : undefined) ??
  chromiumSkipReason();

const IP = { frontend: '10.0.46.10', backend: '10.0.46.20', db: '10.0.46.30' };

function lineOf(text: string): number {
  const i = readFileSync(POLICIES, 'utf8')
    .split('\n')
    .findIndex((l) => l.includes(text));
  assert.ok(i >= 0, text);
  return i + 1;
}

describe('seawall ui in chromium: a live node', { skip, timeout: 240_000 }, () => {
  const nodeName = testNode('ui');
  const dir = mkdtempSync(join(tmpdir(), 'seawall-ui-live-'));
  const socket = join(dir, 'hubble.sock');
  const probes = new ProbePool();
  let node: NodeDatapath | undefined;
  let pipeline: FlowPipeline | undefined;
  let hubble: Awaited<ReturnType<typeof startHubbleServer>> | undefined;
  let h: Harness | undefined;
  let b: LaunchedBrowser | undefined;
  let page: Page;
  const pods: Record<string, LivePeer> = {};
  const uuids: Record<string, string[]> = {};

  before(async () => {
    const engine = defaultEngineFactory({});
    engine.upsertNamespace('shop', {});
    const loaded = loadPolicyBytes(POLICIES, readFileSync(POLICIES), { lint: false });
    for (const p of loaded.policies) engine.upsertPolicy(p);
    node = new NodeDatapath(engine, { node: nodeName });
    await node.up();
    for (const [name, ip] of Object.entries(IP)) {
      const p = await node.addPod({ name, namespace: 'shop', labels: { app: name }, ip }, { sync: false });
      assert.ok(p);
      pods[name] = p;
    }
    await node.sync();
    pipeline = new FlowPipeline(node, { runDir: dir, socket: false, flowLog: false, pollMs: 20 });
    const st = await pipeline.start();
    assert.equal(st.state, 'running', st.reason);
    for (const port of [8080, 9090, 7070]) await probes.get(pods.backend!.ns).listen('tcp', port);
    await probes.get(pods.db!.ns).listen('tcp', 5432);
    const conns: [string, string, number, 'INGRESS' | 'EGRESS'][] = [
      ['frontend', 'backend', 8080, 'INGRESS'],
      ['frontend', 'backend', 9090, 'INGRESS'],
      ['frontend', 'backend', 7070, 'INGRESS'],
      ['frontend', 'db', 5432, 'EGRESS'],
    ];
    for (const [from, to, port, direction] of conns) {
      const seq = pipeline.nextSeq;
      await probes.get(pods[from]!.ns).connect('tcp', pods[to]!.ip, port, 300);
      const mine = (e: { event: FlowEvent }) =>
        e.event.flow.IP?.destination === pods[to]!.ip &&
        e.event.flow.traffic_direction === direction &&
        (e.event.flow.l4 as { TCP?: { destination_port?: number } } | undefined)?.TCP?.destination_port ===
          port;
      const got = await pipeline.waitFor(seq, (es) => es.some(mine), 5000);
      uuids[`${to}:${port}`] = got.filter(mine).map((e) => e.event.flow.uuid);
    }
    hubble = await startHubbleServer({ ring: pipeline.ring, nodeName }, { unixSocket: socket });
    h = await startHarness({ source: hubbleSource(`unix://${socket}`), policies: [POLICIES] });
    b = await launchChromium();
    page = await b.browser.newPage();
    await page.goto(`${h.url}/#map`);
    await page.locator('[data-card-id="shop/db"]').waitFor({ timeout: 30_000 });
  });

  after(async () => {
    await b?.close();
    await h?.close();
    await hubble?.close();
    probes.closeAll();
    await pipeline?.stop();
    const names = Object.values(pods).map((p) => p.ns);
    await node?.down().catch(() => {});
    for (const ns of [...names, nodeName]) await delNetns(ns);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the map shows the pods and arrows coloured by what the kernel did', async () => {
    const ids = await page
      .locator('[data-card-id]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-card-id')));
    for (const want of ['shop/frontend', 'shop/backend', 'shop/db'])
      assert.ok(ids.includes(want), ids.join(','));
    const status = (id: string) => page.locator(`[data-arrow-id="${id}"]`).getAttribute('data-status');
    assert.equal(await status('shop/frontend→shop/backend:8080/TCP'), 'forwarded');
    assert.equal(await status('shop/frontend→shop/backend:9090/TCP'), 'dropped');
    assert.equal(await status('shop/frontend→shop/backend:7070/TCP'), 'dropped');
    assert.equal(await status('shop/frontend→shop/db:5432/TCP'), 'dropped');
  });

  it('a filter narrows the table to the records of one port; the detail names the deny with file:line', async () => {
    await page.click('[data-tab="flows"]');
    await page.getByTestId('filter').fill('to:pod=shop/backend to:port=7070');
    const rows = await page.locator('.row').evaluateAll((els) => els.map((e) => e.getAttribute('data-uuid')));
    assert.ok(uuids['backend:7070']!.length > 0);
    for (const u of uuids['backend:7070']!) assert.ok(rows.includes(u), `${u} in ${rows.join(',')}`);
    await page.click(`.row[data-uuid="${uuids['backend:7070']![0]}"]`);
    const detail = page.getByTestId('detail');
    assert.equal((await detail.getByTestId('drop-reason').textContent()) ?? '', 'POLICY_DENY');
    const rules = (await detail.getByTestId('rule').allTextContents()).join('\n');
    assert.match(rules, /denied at ingress by CiliumNetworkPolicy shop\/backend-deny-admin ingressDeny\[0\]/);
    assert.ok(rules.includes(`live-policies.yaml:${lineOf('ingressDeny:') + 1}:`), rules);
  });

  it("the policy view lists the allow rule's flows", async () => {
    await page.click('[data-tab="policy"]');
    await page.getByTestId('endpoint').selectOption('shop/backend');
    const card = page.locator(
      '[data-testid="ingress"] [data-rule="CiliumNetworkPolicy/shop/backend-ingress#0/ingress/0"]',
    );
    await card.locator('li[data-seq]').first().waitFor();
    assert.match((await card.textContent()) ?? '', /FORWARDED/);
    const deny = page.locator(
      '[data-testid="ingress"] [data-rule="CiliumNetworkPolicy/shop/backend-deny-admin#0/ingressDeny/0"]',
    );
    assert.match((await deny.textContent()) ?? '', /DROPPED/);
  });

  it('an export reads back as the same flows', async () => {
    await page.click('[data-tab="flows"]');
    await page.getByTestId('filter').fill('from:pod=shop/frontend');
    const shown = (
      await page.locator('.row').evaluateAll((els) => els.map((e) => e.getAttribute('data-uuid') ?? ''))
    ).sort();
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export').click()]);
    const file = join(dir, 'export.jsonl');
    await dl.saveAs(file);
    const read = parseFlowText(file, readFileSync(file, 'utf8'));
    assert.deepEqual(read.issues, []);
    assert.deepEqual(read.flows.map((f) => f.uuid).sort(), shown);
  });
});

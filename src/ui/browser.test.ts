// The UI in a real browser (Debian's chromium through playwright-core) against a saved flow file
// and a policy file: map cards, arrows and their verdict colours, toggles, a filter narrowing the
// table to the right rows, the detail panel naming the policy with file:line, the policy view
// listing each rule's flows (and marking a rule that matched nothing), trace from the page, and
// an export that reads back as flows. Skips when /usr/bin/chromium is absent.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { parseFlowText } from '../flow/read.ts';
import {
  dnsL7Egress,
  icmpDefaultDenyIngress,
  tcpAllowedIngress,
  udpExplicitDenyEgress,
} from '../flow/testing/flows.ts';
import { hostProbe, httpGet, manyFlows, remoteNodeDrop, uiFlows } from './domain/testing/flows.ts';
import { chromiumSkipReason, type LaunchedBrowser, launchChromium } from './testing/browser.ts';
import { type Harness, startHarness } from './testing/harness.ts';

const REPO = join(import.meta.dirname, '..', '..');
const POLICIES = join(import.meta.dirname, 'testdata', 'policies.yaml');
const skip = chromiumSkipReason();

/** The 1-based line of the nth (0-based) line of the policy file that contains `text`. */
function lineOf(text: string, nth = 0): number {
  const lines = readFileSync(POLICIES, 'utf8').split('\n');
  let seen = 0;
  for (let i = 0; i < lines.length; i++) if (lines[i]!.includes(text) && seen++ === nth) return i + 1;
  throw new Error(`${text} not in ${POLICIES}`);
}

async function attrs(page: Page, selector: string, attr: string): Promise<string[]> {
  return page.locator(selector).evaluateAll((els, a) => els.map((e) => e.getAttribute(a) ?? ''), attr);
}

interface Drawn {
  id: string;
  status: string;
  label: string;
  stroke: string;
  marker: string;
  dashed: boolean;
  /** The end at the peer card touches its facing side; the other touches the endpoint box. */
  startsAtPeer: boolean;
  endsAtEndpoint: boolean;
}

interface Rect {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** Every connector of the policy view, with where its ends are against the boxes they join. */
async function connectors(page: Page): Promise<Drawn[]> {
  // Raw facts from the page (no helper functions inside: tsx would name them, the page has no
  // __name), judged here.
  const raw = await page.locator('[data-connector]').evaluateAll((list) => {
    interface El {
      getAttribute(a: string): string | null;
      querySelector(s: string): El | null;
      getBoundingClientRect(): { toJSON(): Rect };
      textContent: string | null;
    }
    const g = globalThis as unknown as {
      document: { querySelector(s: string): El };
      getComputedStyle(e: unknown): { stroke: string; strokeDasharray: string };
    };
    const npe = g.document.querySelector('[data-testid="policy-view"]').getBoundingClientRect().toJSON();
    const center = g.document.querySelector('.npe .center').getBoundingClientRect().toJSON();
    return (list as unknown as El[]).map((e) => {
      const id = e.getAttribute('data-connector') ?? '';
      const path = e.querySelector('path')!;
      return {
        id,
        status: e.getAttribute('data-status') ?? '',
        label: e.querySelector('text')?.textContent ?? '',
        xy: ['data-x1', 'data-y1', 'data-x2', 'data-y2'].map((a) => Number(e.getAttribute(a))),
        d: path.getAttribute('d') ?? '',
        marker: path.getAttribute('marker-end') ?? '',
        stroke: g.getComputedStyle(path).stroke,
        dash: g.getComputedStyle(path).strokeDasharray,
        npe,
        center,
        card: g.document.querySelector(`[data-connect="${id}"]`).getBoundingClientRect().toJSON(),
      };
    });
  });
  const near = (a: number, b: number) => Math.abs(a - b) < 1.5;
  const within = (v: number, lo: number, hi: number) => v >= lo - 0.5 && v <= hi + 0.5;
  const r1 = (v: number) => Math.round(v * 10) / 10;
  return raw.map((c) => {
    const ingress = c.id.startsWith('ingress/');
    const [x1, y1, x2, y2] = c.xy as [number, number, number, number];
    const a = { x: x1 + c.npe.left, y: y1 + c.npe.top };
    const b = { x: x2 + c.npe.left, y: y2 + c.npe.top };
    const peer = ingress ? a : b;
    const ep = ingress ? b : a;
    return {
      id: c.id,
      status: c.status,
      label: c.label,
      stroke: c.stroke,
      marker: c.marker,
      dashed: c.dash !== 'none',
      startsAtPeer:
        near(peer.x, ingress ? c.card.right : c.card.left) &&
        within(peer.y, c.card.top, c.card.bottom) &&
        c.d.startsWith(`M ${r1(x1)} ${r1(y1)} `),
      endsAtEndpoint:
        near(ep.x, ingress ? c.center.left : c.center.right) &&
        within(ep.y, c.center.top, c.center.bottom) &&
        c.d.endsWith(` ${r1(x2)} ${r1(y2)}`),
    };
  });
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [join(REPO, 'bin', 'seawall.js'), ...args],
      { timeout: 60_000 },
      (e, stdout, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

describe('seawall ui in chromium: saved flows', { skip, timeout: 180_000 }, () => {
  let h: Harness;
  let b: LaunchedBrowser;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    h = await startHarness({ flows: uiFlows(), policies: [POLICIES] });
    b = await launchChromium();
    page = await b.browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
    await page.goto(`${h.url}/#map`);
    await page.getByTestId('source').filter({ hasText: '10 flows' }).waitFor();
    // the map is drawn after the flows are counted (its redraws are paced): wait for its cards
    await page.locator('[data-card-id="production/backend"]').waitFor();
  });
  after(async () => {
    await b?.close();
    await h?.close();
  });

  it('the map shows the namespace busiest first, a card per workload and entity', async () => {
    assert.equal(await page.getByTestId('namespace').inputValue(), 'production');
    assert.deepEqual((await attrs(page, '[data-card-id]', 'data-card-id')).sort(), [
      'host',
      'kube-system/coredns',
      'production/backend',
      'production/frontend',
      'remote-node',
      'world',
    ]);
    const l7 = await attrs(page, '[data-card-id="production/backend"] [data-l7]', 'data-l7');
    assert.deepEqual(l7, ['GET /api/users']);
    // Entity cards name the addresses seen there.
    assert.deepEqual(await attrs(page, '[data-card-id="world"] [data-address]', 'data-address'), [
      '198.51.100.7',
      '203.0.113.10',
    ]);
    assert.deepEqual(await attrs(page, '[data-card-id="remote-node"] [data-address]', 'data-address'), [
      '10.0.2.1',
    ]);
  });

  it('arrows are coloured by verdict', async () => {
    const colour = (id: string) =>
      page
        .locator(`[data-arrow-id="${id}"] path`)
        .evaluate(
          (p) =>
            (globalThis as unknown as { getComputedStyle(e: unknown): { stroke: string } }).getComputedStyle(
              p,
            ).stroke,
        );
    const rows: [string, string, string][] = [
      ['production/frontend→production/backend:8080/TCP', 'forwarded', 'rgb(31, 157, 85)'],
      ['production/frontend→production/backend:ICMPv4 8', 'dropped', 'rgb(217, 45, 32)'],
      ['remote-node→production/backend:9090/TCP', 'dropped', 'rgb(217, 45, 32)'],
      ['production/frontend→production/backend:8443/TCP', 'audit', 'rgb(220, 138, 0)'],
    ];
    for (const [id, status, rgb] of rows) {
      assert.equal(await page.locator(`[data-arrow-id="${id}"]`).getAttribute('data-status'), status, id);
      assert.equal(await colour(id), rgb, id);
    }
  });

  const toggles: [string, string][] = [
    ['hide-host', 'host'],
    ['hide-kube-dns', 'kube-system/coredns'],
    ['hide-remote-node', 'remote-node'],
  ];
  for (const [toggle, card] of toggles)
    it(`the ${toggle} toggle hides the ${card} card and its arrows`, async () => {
      await page.getByTestId(toggle).check();
      assert.equal(await page.locator(`[data-card-id="${card}"]`).count(), 0);
      assert.equal(
        await page.locator(`[data-arrow-id^="${card}→"], [data-arrow-id*="→${card}:"]`).count(),
        0,
      );
      assert.equal(await page.locator('[data-card-id="production/backend"]').count(), 1);
      await page.getByTestId(toggle).uncheck();
      assert.equal(await page.locator(`[data-card-id="${card}"]`).count(), 1);
    });

  it('the namespace picker draws the chosen namespace and the cards that talk to it', async () => {
    await page.getByTestId('namespace').selectOption('kube-system');
    await page.locator('[data-card-id="production/backend"]').waitFor({ state: 'detached' });
    assert.deepEqual((await attrs(page, '[data-card-id]', 'data-card-id')).sort(), [
      'kube-system/coredns',
      'production/frontend',
    ]);
    await page.getByTestId('namespace').selectOption('production');
    await page.locator('[data-card-id="production/backend"]').waitFor();
  });

  it('a filter and the verdict filter narrow the table to the right rows', async () => {
    await page.click('[data-tab="flows"]');
    assert.equal((await attrs(page, '.row', 'data-uuid')).length, 10);
    await page.getByTestId('filter').fill('to:pod=production/backend');
    await page.getByTestId('verdict').selectOption('dropped');
    assert.deepEqual(
      (await attrs(page, '.row', 'data-uuid')).sort(),
      [icmpDefaultDenyIngress.uuid, remoteNodeDrop.uuid].sort(),
    );
    await page.getByTestId('verdict').selectOption('all');
    await page.getByTestId('filter').fill('!from:label=reserved:host to:port=8080');
    assert.deepEqual(
      (await attrs(page, '.row', 'data-uuid')).sort(),
      [tcpAllowedIngress.uuid, httpGet.uuid].sort(),
    );
    await page.getByTestId('filter').fill('colour=red');
    assert.match((await page.locator('.bar .err').textContent()) ?? '', /"colour" is not a filter kind/);
  });

  it('columns are selectable: a checked column shows in the header and the rows, an unchecked one goes', async () => {
    await page.getByTestId('filter').fill('');
    const headers = () => page.locator('.thead span').allTextContents();
    assert.ok(!(await headers()).includes('Source IP'));
    await page.getByTestId('columns').click();
    await page.locator('input[data-col="src-ip"]').check();
    await page.locator('input[data-col="policy"]').uncheck();
    await page.getByTestId('columns').click();
    assert.ok((await headers()).includes('Source IP'));
    assert.ok(!(await headers()).includes('Policy'));
    const cell = page.locator(`.row[data-uuid="${tcpAllowedIngress.uuid}"] [data-col="src-ip"]`);
    assert.equal(await cell.textContent(), '10.0.1.10');
    assert.equal(await page.locator('.row [data-col="policy"]').count(), 0);
    await page.getByTestId('columns').click();
    await page.locator('input[data-col="src-ip"]').uncheck();
    await page.locator('input[data-col="policy"]').check();
    await page.getByTestId('columns').click();
  });

  it('the detail panel names the policy with file:line, and the drop reason', async () => {
    await page.getByTestId('filter').fill('');
    await page.click(`.row[data-uuid="${tcpAllowedIngress.uuid}"]`);
    const detail = page.getByTestId('detail');
    const rules = await detail.getByTestId('rule').allInnerTexts();
    const ingress = rules.find((r) => r.includes('backend-ingress'));
    assert.ok(ingress, rules.join('\n'));
    assert.match(
      ingress,
      /allowed at ingress by CiliumNetworkPolicy production\/backend-ingress ingress\[0\]/,
    );
    assert.ok(ingress.includes(`policies.yaml:${lineOf('- fromEndpoints:')}:`), ingress);
    assert.ok(
      rules.some((r) => r.includes('frontend-egress') && r.includes('egress[0]')),
      rules.join('\n'),
    );
    assert.equal((await detail.locator('[data-field="IP.source"]').textContent()) ?? '', '10.0.1.10');

    await page.click(`.row[data-uuid="${udpExplicitDenyEgress.uuid}"]`);
    assert.equal((await detail.getByTestId('drop-reason').textContent()) ?? '', 'POLICY_DENY');
    const deny = (await detail.getByTestId('rule').allInnerTexts()).join('\n');
    assert.match(deny, /denied at egress by CiliumNetworkPolicy production\/no-dns egressDeny\[0\]/);
    assert.ok(deny.includes(`policies.yaml:${lineOf('- toCIDR:')}:`), deny);
  });

  it('the policy view lists each rule entry with its flows, and marks one that matched nothing', async () => {
    await page.click('[data-tab="policy"]');
    await page.getByTestId('endpoint').selectOption('production/backend');
    const view = page.getByTestId('policy-view');
    await view.waitFor();
    const card = (group: string, entry: number) =>
      page.locator(
        `[data-testid="ingress"] [data-group="${group}"] [data-rule="CiliumNetworkPolicy/production/backend-ingress#0/ingress/${entry}"]`,
      );
    const seqs = async (group: string, entry: number) =>
      (
        await attrs(
          page,
          `[data-testid="ingress"] [data-group="${group}"] [data-rule$="/ingress/${entry}"] li[data-seq]`,
          'data-seq',
        )
      )
        .map(Number)
        .sort();
    const bySeq = new Map(uiFlows().map((u) => [u.flow.uuid, u.seq]));
    assert.deepEqual(
      await seqs('in-namespace', 0),
      [bySeq.get(tcpAllowedIngress.uuid), bySeq.get(httpGet.uuid)].sort(),
    );
    assert.deepEqual(await seqs('in-cluster', 1), [bySeq.get(hostProbe.uuid)]);
    assert.match(
      (await card('in-namespace', 0).textContent()) ?? '',
      new RegExp(`policies.yaml:${lineOf('- fromEndpoints:')}:`),
    );
    assert.match((await card('in-namespace', 2).textContent()) ?? '', /matched no flow/);
    assert.doesNotMatch((await card('in-namespace', 0).textContent()) ?? '', /matched no flow/);
    // Egress of frontend: the world group holds the KNP ipBlock and the CIDR deny.
    await page.getByTestId('endpoint').selectOption('production/frontend');
    await page.locator('[data-testid="egress"] [data-group="outside"] [data-rule*="no-dns"]').waitFor();
    const outside = (await page.locator('[data-testid="egress"] [data-group="outside"]').textContent()) ?? '';
    assert.match(outside, /203\.0\.113\.0\/24/);
    assert.match(outside, /198\.51\.100\.0\/24/);
    const dns = await attrs(
      page,
      '[data-testid="egress"] [data-rule*="frontend-dns"] li[data-seq]',
      'data-seq',
    );
    assert.deepEqual(dns.map(Number), [bySeq.get(dnsL7Egress.uuid)]);
  });

  it('the policy view joins each rule card to the endpoint with a line coloured by what it did', async () => {
    await page.click('[data-tab="policy"]');
    await page.getByTestId('endpoint').selectOption('production/backend');
    await page.locator('[data-connector]').first().waitFor();
    const backend = 'CiliumNetworkPolicy/production/backend-ingress#0/ingress';
    // id, status, stroke: ingress lines run from the peer card's right edge to the endpoint's left.
    const rows: [string, string, string][] = [
      [`ingress/in-namespace/${backend}/0`, 'allowed', 'rgb(31, 157, 85)'],
      [`ingress/in-cluster/${backend}/1`, 'allowed', 'rgb(31, 157, 85)'],
      [`ingress/in-namespace/${backend}/2`, 'nothing', 'rgb(152, 162, 179)'],
      ['ingress/undecided', 'denied', 'rgb(217, 45, 32)'],
    ];
    // the lines are measured from the laid-out page and redrawn after it settles: read them once
    // the view shows backend's cards and they stand still
    const want = rows.map((r) => r[0]).sort();
    let drawn: Drawn[] = [];
    for (const end = Date.now() + 15_000; Date.now() < end; await page.waitForTimeout(100)) {
      drawn = await connectors(page).catch(() => []);
      if (JSON.stringify(drawn.map((c) => c.id).sort()) === JSON.stringify(want)) break;
    }
    assert.deepEqual(
      drawn.map((c) => c.id).sort(),
      rows.map((r) => r[0]).sort(),
      'one line per rule card of backend (it has no egress policy)',
    );
    for (const [id, status, stroke] of rows) {
      const c = drawn.find((x) => x.id === id)!;
      assert.equal(c.status, status, id);
      assert.equal(c.stroke, stroke, id);
      assert.ok(c.startsAtPeer && c.endsAtEndpoint, `${id}: ${JSON.stringify(c)}`);
      assert.equal(c.marker, `url(#conn-${status})`, id);
    }
    assert.equal(drawn.find((x) => x.id.endsWith('/0'))!.label, '8080/TCP');
    assert.equal(drawn.find((x) => x.id.endsWith('/2'))!.label, '9000/TCP');
    assert.equal(drawn.find((x) => x.id.endsWith('/2'))!.dashed, true);
    // Egress of frontend: the CIDR deny red, the DNS rule with its L7 rule green, lines from the
    // endpoint's right edge to the peer card's left; the KNP ipBlock allowed the ICMP to the world.
    await page.getByTestId('endpoint').selectOption('production/frontend');
    await page.locator('[data-connector^="egress/outside/CiliumNetworkPolicy/production/no-dns"]').waitFor();
    const egress = (await connectors(page)).filter((c) => c.id.startsWith('egress/'));
    const byName = (n: string) => egress.find((c) => c.id.includes(n))!;
    assert.equal(byName('no-dns').status, 'denied');
    assert.equal(byName('no-dns').stroke, 'rgb(217, 45, 32)');
    assert.equal(byName('no-dns').label, '53/UDP');
    assert.equal(byName('frontend-dns').status, 'allowed');
    assert.equal(byName('frontend-dns').label, '53/UDP + 1 L7 rule');
    assert.equal(byName('allow-world').status, 'allowed');
    assert.equal(byName('allow-world').label, 'all ports');
    for (const c of egress) assert.ok(c.startsAtPeer && c.endsAtEndpoint, JSON.stringify(c));
  });

  it('trace from the page gives seawall trace explanation', async () => {
    await page.click('[data-tab="trace"]');
    await page.getByTestId('from').selectOption('production/frontend');
    await page.getByTestId('to').selectOption('production/backend');
    await page.getByTestId('port').fill('8080');
    await page.getByTestId('trace').click();
    await page.getByTestId('trace-verdict').waitFor();
    const out = (await page.getByTestId('trace-out').textContent()) ?? '';
    assert.match(out, /Verdict: FORWARDED/);
    assert.match(out, /backend-ingress/);
    await page.getByTestId('port').fill('9090');
    await page.getByTestId('trace').click();
    await page.getByTestId('trace-out').filter({ hasText: 'DROPPED' }).waitFor();
    // An HTTP request on the connection.
    await page.getByTestId('port').fill('8080');
    await page.getByTestId('http-method').fill('POST');
    await page.getByTestId('http-path').fill('/api/orders');
    await page.getByTestId('trace').click();
    await page.getByTestId('trace-out').filter({ hasText: 'HTTP POST /api/orders' }).waitFor();
    assert.match((await page.getByTestId('trace-out').textContent()) ?? '', /Verdict: FORWARDED/);
    // A DNS query to kube-dns, decided by frontend's DNS rule.
    await page.getByTestId('http-method').fill('');
    await page.getByTestId('http-path').fill('');
    await page.getByTestId('to').selectOption('kube-system/coredns');
    await page.getByTestId('port').fill('53');
    await page.getByTestId('protocol').selectOption('UDP');
    await page.getByTestId('dns').fill('api.github.com');
    await page.getByTestId('trace').click();
    await page.getByTestId('trace-out').filter({ hasText: 'DNS A api.github.com' }).waitFor();
    const dns = (await page.getByTestId('trace-out').textContent()) ?? '';
    assert.match(dns, /frontend-dns/);
    assert.match(dns, /Verdict: FORWARDED/);
  });

  it('an export of the shown flows round-trips through the flow reader and seawall observe', async () => {
    await page.click('[data-tab="flows"]');
    await page.getByTestId('filter').fill('from:pod=production/frontend');
    const shown = (await attrs(page, '.row', 'data-uuid')).sort();
    assert.equal(shown.length, 7);
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export').click()]);
    const file = join(h.dir, 'export.jsonl');
    await dl.saveAs(file);
    const read = parseFlowText(file, readFileSync(file, 'utf8'));
    assert.deepEqual(read.issues, []);
    assert.deepEqual(read.flows.map((f) => f.uuid).sort(), shown);
    const line = JSON.parse(readFileSync(file, 'utf8').split('\n')[0]!) as object;
    assert.deepEqual(Object.keys(line), ['flow', 'node_name', 'time']);
    const r = await run(['observe', '--input-file', file, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const back = r.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { flow: { uuid: string } }).flow.uuid)
      .sort();
    assert.deepEqual(back, shown);
  });

  it('live flows stream in; pause holds them back, resume shows them', async () => {
    await page.click('[data-tab="flows"]');
    await page.getByTestId('filter').fill('');
    await page.getByTestId('count').filter({ hasText: '10 of 10 flows' }).waitFor();
    await page.getByTestId('pause').click();
    h.server.store.add(
      {
        flow: { ...tcpAllowedIngress, uuid: 'live-paused' },
        node_name: 'node-1',
        time: tcpAllowedIngress.time,
      },
      [],
    );
    await page.getByTestId('source').filter({ hasText: '(+1 paused)' }).waitFor();
    assert.equal(await page.locator('.row[data-uuid="live-paused"]').count(), 0);
    assert.match((await page.getByTestId('count').textContent()) ?? '', /^10 of 10 flows$/);
    await page.getByTestId('pause').click();
    await page.locator('.row[data-uuid="live-paused"]').waitFor();
    assert.match((await page.getByTestId('count').textContent()) ?? '', /^11 of 11 flows$/);
  });

  it('the page logged no error on the way (no failed request, no exception)', () => {
    assert.deepEqual(errors, []);
  });
});

describe('seawall ui in chromium: 10,000 flows and 200 cards', { skip, timeout: 180_000 }, () => {
  it('the table keeps only the visible rows in the page; the map draws 200 cards', async () => {
    const h = await startHarness({ flows: manyFlows(10_000) });
    const b = await launchChromium();
    try {
      const page = await b.browser.newPage();
      await page.goto(`${h.url}/#flows`);
      await page
        .getByTestId('count')
        .filter({ hasText: '10000 of 10000 flows' })
        .waitFor({ timeout: 60_000 });
      const rows = await page.locator('.row').count();
      assert.ok(rows > 10 && rows < 100, `${rows} rows in the DOM`);
      await page.getByTestId('filter').fill('to:pod=ns-1/app-1-');
      await page
        .getByTestId('count')
        .filter({ hasText: /^\d+ of 10000 flows$/ })
        .waitFor();
      const n = Number(((await page.getByTestId('count').textContent()) ?? '').split(' ')[0]);
      const want = manyFlows(10_000).filter(
        (u) => u.flow.destination?.pod_name?.startsWith('app-1-') && u.flow.destination.namespace === 'ns-1',
      ).length;
      assert.equal(n, want);
      await page.click('[data-tab="map"]');
      await page.getByTestId('namespace').waitFor();
      const ns = await page.getByTestId('namespace').inputValue();
      const cards = await page.locator('[data-card-id]').count();
      const expected = new Set<string>();
      for (const u of manyFlows(10_000)) {
        const f = u.flow;
        if (f.source?.namespace !== ns && f.destination?.namespace !== ns) continue;
        expected.add(`${f.source?.namespace}/${f.source?.pod_name}`);
        expected.add(`${f.destination?.namespace}/${f.destination?.pod_name}`);
      }
      assert.equal(cards, expected.size);
    } finally {
      await b.close();
      await h.close();
    }
  });
});

// The web UI in chromium with 10,000 flows (200 workloads): time to first render of the flows
// table (page load, the SSE window, the virtualised table), time to apply a filter, and time to
// draw the service map (200 workloads in one namespace: 200 cards) and the policy view, against
// rendering the same 10,000 rows as plain text (one <pre>, every row, substring filter) in the
// same browser and run. Medians of RUNS interleaved runs; the load average is printed with the
// table because the machine is shared.

import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { manyFlows } from '../src/ui/domain/testing/flows.ts';
import { chromiumSkipReason, launchChromium } from '../src/ui/testing/browser.ts';
import { startHarness } from '../src/ui/testing/harness.ts';

const POLICIES = new URL('../src/ui/testdata/policies.yaml', import.meta.url).pathname;

import { median, table } from './lib.ts';

const N = 10_000;
const RUNS = 5;
const FILTER = 'to:pod=ns-1/app-1-';

/** The baseline, in the page: fetch the same rows, print one text line each, wait for paint. */
const PLAIN_RENDER = `(async () => {
  const text = await (await fetch('/api/export')).text();
  const lines = text.trim().split('\\n').map((l) => {
    const f = JSON.parse(l).flow;
    const p = (f.l4.TCP || {}).destination_port;
    return [f.time, f.source.namespace + '/' + f.source.pod_name, f.destination.namespace + '/' + f.destination.pod_name, p + '/TCP', f.verdict].join('  ');
  });
  window.__lines = lines;
  const pre = document.createElement('pre');
  pre.id = 'plain';
  pre.textContent = lines.join('\\n');
  pre.dataset.n = String(lines.length);
  document.body.replaceChildren(pre);
  return lines.length;
})()`;
const PLAIN_FILTER = `(async () => {
  const shown = window.__lines.filter((l) => l.split('  ')[2].startsWith('ns-1/app-1-'));
  const pre = document.getElementById('plain');
  pre.textContent = shown.join('\\n');
  pre.dataset.n = String(shown.length);
  return shown.length;
})()`;

export default async function run(): Promise<void> {
  const skip = chromiumSkipReason();
  if (skip) {
    process.stdout.write(`skipped: ${skip}\n`);
    return;
  }
  const flows = manyFlows(N);
  const want = flows.filter(
    (u) => u.flow.destination?.namespace === 'ns-1' && u.flow.destination.pod_name?.startsWith('app-1-'),
  ).length;
  const h = await startHarness({ flows });
  // The map's case: every workload in one namespace, so the map holds all 200 cards; with the
  // UI's test policies loaded, for the policy view of one pod among the same flows.
  const mapFlows = manyFlows(N, 200, 1);
  const hMap = await startHarness({ flows: mapFlows, policies: [POLICIES] });
  const b = await launchChromium();
  const t = {
    uiRender: [] as number[],
    uiFilter: [] as number[],
    uiMap: [] as number[],
    uiPolicy: [] as number[],
    uiMapUpdate: [] as number[],
    uiStreamLag: [] as number[],
    plainRender: [] as number[],
    plainFilter: [] as number[],
  };
  let cards = 0;
  let added = 0;
  try {
    for (let i = 0; i < RUNS; i++) {
      // The UI: a fresh page each run (nothing cached between runs but the browser's HTTP cache).
      const page = await b.browser.newPage();
      let t0 = performance.now();
      await page.goto(`${h.url}/#flows`);
      await page
        .getByTestId('count')
        .filter({ hasText: `${N} of ${N} flows` })
        .waitFor({ timeout: 120_000 });
      await page.locator('.row').first().waitFor();
      t.uiRender.push(performance.now() - t0);
      t0 = performance.now();
      await page.getByTestId('filter').fill(FILTER);
      await page
        .getByTestId('count')
        .filter({ hasText: `${want} of ${N} flows` })
        .waitFor({ timeout: 60_000 });
      t.uiFilter.push(performance.now() - t0);
      await page.close();

      // The map of 200 cards: from the tab click to the last card drawn (the window is loaded).
      const mp = await b.browser.newPage();
      await mp.goto(`${hMap.url}/#flows`);
      // The runs before added flows.
      await mp
        .getByTestId('count')
        .filter({ hasText: `${N + added} of ${N + added} flows` })
        .waitFor({ timeout: 120_000 });
      t0 = performance.now();
      await mp.click('[data-tab="map"]');
      await mp.locator('[data-card-id]').nth(199).waitFor({ timeout: 120_000 });
      t.uiMap.push(performance.now() - t0);
      cards = await mp.locator('[data-card-id]').count();
      // A flow arrives on a known arrow of the drawn map: until its count shows (no relayout).
      const first = mapFlows[0]!;
      const arrow = mp.locator(`[data-arrow-id="ns-0/app-0→ns-0/app-3:8000/TCP"] text`);
      const before = (await arrow.textContent()) ?? '';
      t0 = performance.now();
      hMap.server.store.add({ flow: { ...first.flow, uuid: `bench-${i}` }, time: first.time }, []);
      added++;
      await mp.waitForFunction(
        ([sel, was]) =>
          (
            globalThis as unknown as {
              document: { querySelector(s: string): { textContent: string } | null };
            }
          ).document.querySelector(sel!)?.textContent !== was,
        [`[data-arrow-id="ns-0/app-0→ns-0/app-3:8000/TCP"] text`, before],
        { timeout: 60_000 },
      );
      t.uiMapUpdate.push(performance.now() - t0);
      // A stream of 20 flows/s onto the drawn map for 3 s (new ones on known arrows): how long the
      // page takes to answer (a round trip into its main thread), 90th percentile.
      const lag: number[] = [];
      const end = performance.now() + 3000;
      let k = 0;
      const stream = setInterval(() => {
        hMap.server.store.add({ flow: { ...first.flow, uuid: `bench-${i}-${k++}` }, time: first.time }, []);
      }, 50);
      try {
        while (performance.now() < end) {
          const s0 = performance.now();
          await mp.evaluate('0');
          lag.push(performance.now() - s0);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        clearInterval(stream);
      }
      lag.sort((a, b) => a - b);
      t.uiStreamLag.push(lag[Math.floor(lag.length * 0.9)] ?? 0);
      added += k;
      // The policy view with its connector lines, over the same 10,000 flows.
      t0 = performance.now();
      await mp.click('[data-tab="policy"]');
      await mp.getByTestId('endpoint').selectOption('ns-0/app-1-5d9c');
      await mp.locator('[data-connector]').first().waitFor({ timeout: 60_000 });
      t.uiPolicy.push(performance.now() - t0);
      await mp.close();

      // The baseline: the same rows as plain text, same browser, same server.
      const plain = await b.browser.newPage();
      await plain.goto(`${h.url}/api/info`);
      t0 = performance.now();
      const n = (await plain.evaluate(PLAIN_RENDER)) as number;
      // Waited for the way the UI's figures are: Playwright sees the rendered element.
      await plain.locator(`#plain[data-n="${N}"]`).waitFor();
      t.plainRender.push(performance.now() - t0);
      if (n !== N) throw new Error(`plain text rendered ${n} rows`);
      t0 = performance.now();
      const m = (await plain.evaluate(PLAIN_FILTER)) as number;
      await plain.locator(`#plain[data-n="${want}"]`).waitFor();
      t.plainFilter.push(performance.now() - t0);
      if (m !== want) throw new Error(`plain filter kept ${m} rows, want ${want}`);
      await plain.close();
    }
  } finally {
    await b.close();
    await h.close();
    await hMap.close();
  }
  const ms = (xs: number[]) => median(xs).toFixed(0);
  const ratio = (a: number[], b: number[]) => `${(median(a) / median(b)).toFixed(2)}x`;
  process.stdout.write(
    `${table([
      ['measure (10,000 flows, median of ' + RUNS + ')', 'seawall ui ms', 'plain text ms', 'ui ÷ plain'],
      ['first render of the table', ms(t.uiRender), ms(t.plainRender), ratio(t.uiRender, t.plainRender)],
      [
        `apply a filter (${want} rows left)`,
        ms(t.uiFilter),
        ms(t.plainFilter),
        ratio(t.uiFilter, t.plainFilter),
      ],
      [`draw the service map (${cards} cards)`, ms(t.uiMap), '-', '-'],
      ['a new flow shows on that map', ms(t.uiMapUpdate), '-', '-'],
      ['page answers while 20 flows/s stream in (p90)', ms(t.uiStreamLag), '-', '-'],
      ['open a policy view (lines drawn)', ms(t.uiPolicy), '-', '-'],
    ])}\n`,
  );
  process.stdout.write(
    `load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} (${RUNS} runs each, interleaved)\n`,
  );
}

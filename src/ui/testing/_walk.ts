import { launchChromium } from '/work/w16/src/ui/testing/browser.ts';

const url = process.argv[2]!;
const out = process.argv[3]!;
const b = await launchChromium({ width: 1440, height: 860 });
try {
  const page = await b.browser.newPage();
  page.on('console', (m) => console.log('console:', m.type(), m.text()));
  page.on('pageerror', (e) => console.log('pageerror:', e.message));
  await page.goto(`${url}/#map`);
  await page.waitForTimeout(2500);
  console.log('source:', await page.getByTestId('source').textContent());
  console.log(
    'cards:',
    await page
      .locator('[data-card-id]')
      .evaluateAll((els) =>
        els.map(
          (e) =>
            e.getAttribute('data-card-id') +
            ' ' +
            [...e.querySelectorAll('[data-l7],[data-address]')].map((x) => x.textContent).join('|'),
        ),
      ),
  );
  console.log(
    'arrows:',
    await page
      .locator('[data-arrow-id]')
      .evaluateAll((els) =>
        els.map((e) => e.getAttribute('data-arrow-id') + ' ' + e.getAttribute('data-status')),
      ),
  );
  await page.screenshot({ path: `${out}/map.png` });
  await page.click('[data-tab="flows"]');
  await page.waitForTimeout(500);
  await page.screenshot({ path: `${out}/flows.png` });
  await page.click('[data-tab="policy"]');
  await page.getByTestId('endpoint').selectOption('shop/catalog');
  await page.waitForTimeout(1000);
  await page.screenshot({ path: `${out}/policy.png` });
  console.log(
    'connectors:',
    await page
      .locator('[data-connector]')
      .evaluateAll((els) =>
        els.map((e) => e.getAttribute('data-connector') + ' ' + e.getAttribute('data-status')),
      ),
  );
} finally {
  await b.close();
}

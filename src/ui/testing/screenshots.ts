// Takes the docs/ screenshots: `seawall ui -f src/ui/testdata/demo.policytest.yaml` in chromium,
// the service map, the flows table with a denied flow's detail, and postgres's policy view.
// Run: node --import tsx src/ui/testing/screenshots.ts [OUT_DIR]   (default docs/)

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { launchChromium } from './browser.ts';

const REPO = join(import.meta.dirname, '..', '..', '..');
const out = process.argv[2] ?? join(REPO, 'docs');
const child = spawn(
  process.execPath,
  [
    join(REPO, 'bin', 'seawall.js'),
    'ui',
    '-f',
    'src/ui/testdata/demo.policytest.yaml',
    '--listen',
    '127.0.0.1:0',
  ],
  { stdio: ['ignore', 'pipe', 'inherit'], cwd: REPO },
);
const url = await new Promise<string>((resolve, reject) => {
  let text = '';
  child.stdout.on('data', (d: Buffer) => {
    text += d.toString();
    const m = /open (http:\/\/\S+?)\/?\n/.exec(text);
    if (m) resolve(m[1]!);
  });
  child.on('exit', (c) => reject(new Error(`seawall ui exited ${c}`)));
});
const b = await launchChromium({ width: 1440, height: 860 });
try {
  const page = await b.browser.newPage();
  await page.goto(`${url}/#map`);
  await page.locator('[data-card-id="shop/postgres"]').waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(out, 'ui-map.png') });

  await page.click('[data-tab="flows"]');
  await page.locator('.row').first().waitFor();
  await page.locator('.row[data-uuid]', { hasText: '198.51.100.20' }).first().click();
  await page.getByTestId('detail').waitFor();
  await page.screenshot({ path: join(out, 'ui-flows.png') });

  await page.click('[data-tab="policy"]');
  await page.getByTestId('endpoint').selectOption('shop/postgres');
  await page.locator('[data-testid="policy-view"] [data-rule]').first().waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(out, 'ui-policy.png') });
  process.stdout.write(`screenshots in ${out}\n`);
} finally {
  await b.close();
  child.kill('SIGTERM');
}

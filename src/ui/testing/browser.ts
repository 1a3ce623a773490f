// Debian's chromium driven by playwright-core, for the UI's browser tests, screenshots and bench:
// headless, no sandbox (the tests run as root), no network chatter, a fresh profile each launch.
// `chromiumSkipReason()` says why a test cannot run here (no /usr/bin/chromium).

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.SEAWALL_CHROMIUM ?? '/usr/bin/chromium';

export function chromiumSkipReason(): string | undefined {
  if (!existsSync(CHROMIUM))
    return `needs ${CHROMIUM} (apt-get install chromium; scripts/setup-debian.sh installs it)`;
  return undefined;
}

export interface LaunchedBrowser {
  browser: BrowserContext;
  close(): Promise<void>;
}

/** A persistent context on a fresh --user-data-dir (removed on close). */
export async function launchChromium(viewport = { width: 1440, height: 900 }): Promise<LaunchedBrowser> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'seawall-ui-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    acceptDownloads: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
  return {
    browser: ctx,
    async close() {
      await ctx.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export type { Browser };

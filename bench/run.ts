// Runs benchmarks: `node --import tsx bench/run.ts [bench/x.bench.ts ...]` (default: every
// bench/*.bench.ts). Each module's default export runs its measurements and prints its table.

import { readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const files =
  args.length > 0
    ? args.map((a) => resolve(a))
    : readdirSync(here)
        .filter((f) => f.endsWith('.bench.ts'))
        .sort()
        .map((f) => join(here, f));

let failed = 0;
for (const file of files) {
  process.stdout.write(`\n## ${basename(file, '.bench.ts')}\n\n`);
  try {
    const mod = (await import(pathToFileURL(file).href)) as { default?: () => Promise<void> };
    if (typeof mod.default !== 'function') throw new Error('no default export `run(): Promise<void>`');
    await mod.default();
  } catch (e) {
    failed++;
    process.stderr.write(`bench ${file} failed: ${(e as Error).stack ?? e}\n`);
  }
}
if (failed > 0) process.exitCode = 1;

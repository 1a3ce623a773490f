// Builds the SPA (src/ui/app/) with esbuild into src/ui/app/dist/: app.js (Preact, dagre and the
// pure domain code in one minified bundle) and app.css. Run by `npm ci` (postinstall) so that
// `seawall ui` works offline; the server builds in memory when dist/ is missing or older than
// the sources (a checkout being edited). esbuild is already a dependency of tsx: no new download.

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const UI = dirname(fileURLToPath(import.meta.url));
export const APP_DIR = join(UI, 'app');
export const DIST_DIR = join(APP_DIR, 'dist');

export interface Assets {
  js: string;
  css: string;
}

export async function buildAssets(): Promise<Assets> {
  const esbuild = await import('esbuild');
  const r = await esbuild.build({
    entryPoints: [join(APP_DIR, 'main.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    write: false,
    outfile: join(DIST_DIR, 'app.js'),
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'silent',
  });
  const js = r.outputFiles.find((f) => f.path.endsWith('.js'))?.text;
  if (js === undefined || js === '') throw new Error('esbuild produced no app.js');
  const css = readFileSync(join(APP_DIR, 'app.css'), 'utf8');
  return { js, css };
}

/** Newest modification time of the app and domain sources (what the bundle is built from). */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'dist' || e.name === 'testing') continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(tsx?|css)$/.test(e.name) && !e.name.endsWith('.test.ts'))
        newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(APP_DIR);
  walk(join(UI, 'domain'));
  return newest;
}

/** The built bundle when it is current, else a fresh in-memory build. */
export async function loadAssets(): Promise<Assets & { built: 'dist' | 'memory' }> {
  const js = join(DIST_DIR, 'app.js');
  const css = join(DIST_DIR, 'app.css');
  if (existsSync(js) && existsSync(css)) {
    const stale = (() => {
      try {
        return statSync(js).mtimeMs < newestSource();
      } catch {
        return false; // sources not shipped: the bundle is what there is
      }
    })();
    if (!stale) return { js: readFileSync(js, 'utf8'), css: readFileSync(css, 'utf8'), built: 'dist' };
  }
  return { ...(await buildAssets()), built: 'memory' };
}

export async function writeAssets(): Promise<void> {
  const a = await buildAssets();
  mkdirSync(DIST_DIR, { recursive: true });
  writeFileSync(join(DIST_DIR, 'app.js'), a.js);
  writeFileSync(join(DIST_DIR, 'app.css'), a.css);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await writeAssets();
  process.stdout.write(`seawall ui: built ${DIST_DIR}\n`);
}

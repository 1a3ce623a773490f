// The layer table of ARCHITECTURE.md, enforced: every import (static, dynamic, re-export) of every
// file under src/ must run to a folder of a lower layer or stay in its own folder. The table is
// read from ARCHITECTURE.md itself, so the document and the check cannot drift apart.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';

const ROOT = join(import.meta.dirname, '..');

/** folder → layer, from the `| layer | folders | ... |` table. */
export function layerTable(markdown: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of markdown.split('\n')) {
    const m = /^\|\s*(\d+)\s*\|\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*\|/.exec(line);
    if (!m) continue;
    for (const f of m[2]!.split(',')) out.set(f.trim(), Number(m[1]));
  }
  return out;
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm;

/** Relative import specifiers of a source text (static, dynamic, side-effect, re-export). */
export function importsOf(text: string): string[] {
  return [...text.matchAll(IMPORT)].map((m) => m[1]!);
}

/** The top folder under src/ of a repository-relative path, or undefined outside src/. */
function folderOf(path: string): string | undefined {
  const parts = path.split('/');
  return parts[0] === 'src' && parts.length > 2 ? parts[1] : undefined;
}

export interface Violation {
  file: string;
  spec: string;
  why: string;
}

/** Checks files (repository-relative path → text) against the table. */
export function checkLayers(files: Map<string, string>, table: Map<string, number>): Violation[] {
  const out: Violation[] = [];
  for (const [file, text] of files) {
    const from = folderOf(file);
    if (from === undefined) continue;
    const fromLayer = table.get(from);
    if (fromLayer === undefined) {
      out.push({ file, spec: '', why: `src/${from}/ is not in ARCHITECTURE.md's layer table` });
      continue;
    }
    for (const spec of importsOf(text)) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), spec))
        .split('\\')
        .join('/');
      const to = folderOf(target);
      if (to === from) continue;
      if (to === undefined) {
        out.push({ file, spec, why: 'imports from outside src/' });
        continue;
      }
      const toLayer = table.get(to);
      if (toLayer === undefined) out.push({ file, spec, why: `src/${to}/ is not in the layer table` });
      else if (toLayer >= fromLayer)
        out.push({
          file,
          spec,
          why: `${from}/ (layer ${fromLayer}) imports ${to}/ (layer ${toLayer}): imports run downward only`,
        });
    }
  }
  return out;
}

function sources(dir: string, out = new Map<string, string>()): Map<string, string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'testdata' && name !== 'node_modules') sources(p, out);
    } else if (name.endsWith('.ts'))
      out.set(relative(ROOT, p).split('\\').join('/'), readFileSync(p, 'utf8'));
  }
  return out;
}

const table = layerTable(readFileSync(join(ROOT, 'ARCHITECTURE.md'), 'utf8'));

describe('layers', () => {
  test('the table names every folder under src/', () => {
    const folders = readdirSync(join(ROOT, 'src')).filter((f) =>
      statSync(join(ROOT, 'src', f)).isDirectory(),
    );
    for (const f of folders) assert.ok(table.has(f), `src/${f}/ has no row in ARCHITECTURE.md`);
    assert.equal(table.get('core'), 0);
    assert.ok(
      (table.get('cli') ?? 0) > Math.max(...[...table].filter(([f]) => f !== 'cli').map(([, l]) => l)),
    );
  });

  test('no import in src/ runs against the table', () => {
    const v = checkLayers(sources(join(ROOT, 'src')), table);
    assert.deepEqual(
      v.map((x) => `${x.file}: '${x.spec}' ${x.why}`),
      [],
    );
  });

  // The check itself, on planted files: each row must give exactly the violations it names.
  const rows: Array<{ name: string; file: string; text: string; bad: number }> = [
    {
      name: 'downward import',
      file: 'src/policy/x.ts',
      text: "import { a } from '../labels/label.ts';",
      bad: 0,
    },
    { name: 'same folder', file: 'src/policy/x.ts', text: "import { a } from './engine.ts';", bad: 0 },
    {
      name: 'upward import',
      file: 'src/policy/x.ts',
      text: "import { a } from '../datapath/node.ts';",
      bad: 1,
    },
    {
      name: 'same-layer import (datapath → policytest)',
      file: 'src/datapath/x.ts',
      text: "import type { A } from '../policytest/types.ts';",
      bad: 1,
    },
    {
      name: 'proxy → datapath',
      file: 'src/proxy/http.ts',
      text: "import { a } from '../datapath/node.ts';",
      bad: 1,
    },
    {
      name: 'dynamic import upward',
      file: 'src/agent/x.ts',
      text: "const m = await import('../testbed/live-test.ts');",
      bad: 1,
    },
    {
      name: 're-export upward',
      file: 'src/flow/x.ts',
      text: "export { a } from '../observe/sink.ts';",
      bad: 1,
    },
    { name: 'anything → cli', file: 'src/testbed/x.ts', text: "import { a } from '../cli/main.ts';", bad: 1 },
    { name: 'out of src', file: 'src/policy/x.ts', text: "import { a } from '../../bench/lib.ts';", bad: 1 },
    {
      name: 'folder without a row',
      file: 'src/misc/x.ts',
      text: "import { a } from '../core/errors.ts';",
      bad: 1,
    },
    {
      name: 'cli may import anything',
      file: 'src/cli/x.ts',
      text: "import { a } from '../testbed/live-test.ts';",
      bad: 0,
    },
  ];
  for (const r of rows) {
    test(`check: ${r.name}`, () => {
      const v = checkLayers(new Map([[r.file, r.text]]), table);
      assert.equal(v.length, r.bad, JSON.stringify(v));
    });
  }
});

// `seawall agent --secrets DIR`: a path that is not a directory is refused before anything starts.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { liveUnavailable } from '../datapath/preflight.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'seawall.js');
const skip = liveUnavailable();

function agent(args: string[]): Promise<{ code: number; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'agent', ...args], { timeout: 60_000 }, (e, _out, err) =>
      resolve({ code: (e as { code?: number } | null)?.code ?? 0, err: String(err) }),
    );
  });
}

describe('seawall agent --secrets', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-agent-secrets-'));
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  const rows = [
    { name: 'missing path', secrets: join(dir, 'absent') },
    { name: 'a file, not a directory', secrets: file },
  ];
  for (const r of rows) {
    it(`${r.name}: exit 2, says which flag and path`, async () => {
      const res = await agent([
        '--node',
        `seawall-sec${process.pid % 10000}`,
        '--policies',
        dir,
        '--endpoints',
        dir,
        '--secrets',
        r.secrets,
      ]);
      assert.equal(res.code, 2, res.err);
      assert.match(res.err, new RegExp(`--secrets: not a directory: ${r.secrets.replaceAll('/', '\\/')}`));
    });
  }
  after(() => rmSync(dir, { recursive: true, force: true }));
});

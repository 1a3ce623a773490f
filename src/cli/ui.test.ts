// `seawall ui`: what the command refuses (with exit 2 and why), and that each source starts a
// server that answers.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { uiFlows } from '../ui/domain/testing/flows.ts';
import { writeFlowFile } from '../ui/testing/harness.ts';
import { capture } from './testing/capture.ts';
import { runUICommand, type UIFlags } from './ui.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const POLICIES = join(ROOT, 'src/ui/testdata/policies.yaml');
const DEMO = join(ROOT, 'src/ui/testdata/demo.policytest.yaml');
const base: UIFlags = { listen: '127.0.0.1:0', window: '20000' };

describe('seawall ui', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-ui-cli-'));
  const flows = join(dir, 'flows.jsonl');
  writeFlowFile(flows, uiFlows());
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, '{"flow": {"verdict": "FORWARDED"}}\nnot json\n');

  const refused: { name: string; flags: Partial<UIFlags>; err: RegExp }[] = [
    { name: 'no source', flags: {}, err: /give --server ADDRESS, --input-file FILE, or policies/ },
    { name: 'two sources', flags: { server: '127.0.0.1:4245', inputFile: flows }, err: /not both/ },
    { name: 'a bad window', flags: { inputFile: flows, window: '0' }, err: /--window 0/ },
    { name: 'a bad --server', flags: { server: 'http://x' }, err: /write unix:\/\/\/PATH or HOST:PORT/ },
    {
      name: 'a bad --listen',
      flags: { inputFile: flows, listen: 'localhost' },
      err: /--listen localhost: write HOST:PORT/,
    },
    { name: 'a file that is not flows', flags: { inputFile: bad }, err: /bad\.jsonl:2: error: not JSON/ },
    {
      name: '--node and --server',
      flags: { node: 'node-1', server: '127.0.0.1:1' },
      err: /--server or --node, not both/,
    },
    { name: 'a bad node name', flags: { node: '../etc' }, err: /--node \.\.\/etc: not a node name/ },
    { name: 'a missing file', flags: { inputFile: join(dir, 'nope.jsonl') }, err: /nope\.jsonl/ },
  ];
  for (const r of refused)
    it(`refuses ${r.name}`, async () => {
      const io = capture();
      const h = await runUICommand({ ...base, ...r.flags }, io);
      await h?.close();
      assert.equal(h, undefined);
      assert.equal(io.code, 2);
      assert.match(io.err, r.err);
    });

  const sources: { name: string; flags: Partial<UIFlags>; flows: number; policies: boolean }[] = [
    {
      name: 'a saved flow file with policies',
      flags: { inputFile: flows, policies: [POLICIES] },
      flows: 10,
      policies: true,
    },
    { name: 'a PolicyTest alone', flags: { file: [DEMO] }, flows: 19, policies: true },
  ];
  for (const s of sources)
    it(`serves ${s.name}`, async () => {
      const io = capture();
      const h = await runUICommand({ ...base, ...s.flags }, io);
      assert.ok(h, io.err);
      try {
        assert.match(io.out, /open http:\/\/127\.0\.0\.1:\d+\//);
        const info = (await (await fetch(`${h.url}/api/info`)).json()) as {
          flows: number;
          policies: boolean;
        };
        assert.equal(info.flows, s.flows);
        assert.equal(info.policies, s.policies);
      } finally {
        await h.close();
      }
    });

  it('--node follows that node agent socket (retrying while it is absent)', async () => {
    const io = capture();
    const h = await runUICommand({ ...base, node: 'seawall-no-such-node' }, io);
    assert.ok(h, io.err);
    try {
      const info = (await (await fetch(`${h.url}/api/info`)).json()) as { source: string };
      assert.equal(info.source, 'agent unix:///run/seawall/seawall-no-such-node/hubble.sock');
    } finally {
      await h.close();
    }
  });

  it('cleans up', () => rmSync(dir, { recursive: true, force: true }));
});

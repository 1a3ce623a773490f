// `seawall observe` against a fake flow API: lines not of the API's shape are skipped, never a
// crash, whatever the filters and the output format read.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runObserve } from './observe.ts';

const flow = JSON.parse(
  readFileSync(
    join(import.meta.dirname, '..', 'flow', 'testdata', 'record-tcp-allowed-ingress.golden.json'),
    'utf8',
  ),
) as { time: string };
const good = JSON.stringify({ flow, node_name: 'n', time: flow.time });
const LINES = [
  'null',
  '42',
  '"text"',
  '{"flow": 5}',
  '{"flow": null}',
  '{"flow": {"l4": "x", "source": 7}}',
  '{"flow": {"l4": {"TCP": null}, "IP": 3}}',
  '{not json',
  good,
];

describe('seawall observe', () => {
  const rows: Array<{ name: string; args: Record<string, unknown> }> = [
    { name: 'compact, no filter', args: {} },
    { name: 'json', args: { output: 'json' } },
    { name: 'protocol filter', args: { protocol: ['tcp'] } },
    { name: 'port and pod filters', args: { port: ['8080'], pod: ['x'], namespace: ['ns'] } },
    { name: 'ip and direction filters', args: { ip: ['10.0.1.11'], trafficDirection: ['ingress'] } },
  ];
  for (const r of rows) {
    it(`skips malformed lines: ${r.name}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'seawall-observe-'));
      const socket = join(dir, 'hubble.sock');
      const server = createServer((_req, res) => {
        res.writeHead(200);
        res.end(`${LINES.join('\n')}\n`);
      });
      await new Promise<void>((res) => server.listen(socket, res));
      const out: string[] = [];
      const err: string[] = [];
      try {
        const code = await runObserve(
          { socket, ...r.args },
          { write: (l) => out.push(l), error: (l) => err.push(l) },
        );
        assert.equal(code, 0);
        assert.deepEqual(err, []);
        assert.ok(out.length <= 1, `at most the one good line: ${out.join(' | ')}`);
        if (r.args.output === 'json') assert.deepEqual(out, [good]);
      } finally {
        await new Promise((res) => server.close(res));
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

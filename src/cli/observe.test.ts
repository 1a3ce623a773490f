// `seawall observe` against a fake flow API: lines not of the API's shape are skipped, never a
// crash, whatever the filters and the output format read.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tcpAllowedIngress as flow } from '../flow/testing/flows.ts';
import { runObserve } from './observe.ts';

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

describe('seawall observe: the stream breaks', () => {
  // How the fake API ends its response after sending one good record.
  const rows: Array<{
    name: string;
    follow: boolean;
    end: 'destroy' | 'end';
    want: { code: number; err: RegExp | undefined };
  }> = [
    {
      name: '--follow, connection reset mid-stream: exit 1 with a message',
      follow: true,
      end: 'destroy',
      want: { code: 1, err: /connection to .* lost/ },
    },
    {
      name: '--follow, the API ends the stream: exit 1 with a message',
      follow: true,
      end: 'end',
      want: { code: 1, err: /closed the stream/ },
    },
    {
      name: 'no --follow, connection reset before the end: exit 1',
      follow: false,
      end: 'destroy',
      want: { code: 1, err: /connection to .* lost/ },
    },
    {
      name: 'no --follow, complete answer: exit 0',
      follow: false,
      end: 'end',
      want: { code: 0, err: undefined },
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'seawall-observe-'));
      const socket = join(dir, 'hubble.sock');
      const server = createServer((_req, res) => {
        // chunked, as the real follow stream: the client cannot tell the end from the length
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.write(`${good}\n`);
        setTimeout(() => (r.end === 'destroy' ? res.socket?.destroy() : res.end()), 50);
      });
      await new Promise<void>((res) => server.listen(socket, res));
      const out: string[] = [];
      const err: string[] = [];
      try {
        const code = await runObserve(
          { socket, follow: r.follow, last: 10 },
          { write: (l) => out.push(l), error: (l) => err.push(l) },
        );
        assert.equal(code, r.want.code);
        assert.equal(out.length, 1, 'the record before the break is printed');
        if (r.want.err === undefined) assert.deepEqual(err, []);
        else {
          assert.equal(err.length, 1, err.join('\n'));
          assert.match(err[0] ?? '', r.want.err);
        }
      } finally {
        server.closeAllConnections();
        await new Promise((res) => server.close(res));
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('--follow stopped by the user (abort): exit 0, no error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seawall-observe-'));
    const socket = join(dir, 'hubble.sock');
    const server = createServer((_req, res) => {
      res.writeHead(200);
      res.write(`${good}\n`);
    });
    await new Promise<void>((res) => server.listen(socket, res));
    const ac = new AbortController();
    const err: string[] = [];
    try {
      setTimeout(() => ac.abort(), 50);
      const code = await runObserve(
        { socket, follow: true },
        { write: () => {}, error: (l) => err.push(l), signal: ac.signal },
      );
      assert.equal(code, 0);
      assert.deepEqual(err, []);
    } finally {
      server.closeAllConnections();
      await new Promise((res) => server.close(res));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

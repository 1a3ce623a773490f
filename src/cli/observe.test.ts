// `seawall observe` against a fake flow API: lines not of the API's shape are skipped, never a
// crash, whatever the filters and the output format read.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tcpAllowedIngress as flow } from '../flow/testing/flows.ts';
import { type HubbleServerHandle, startHubbleServer } from '../observe/hubble/server.ts';
import { corpus, ringOf, tempDir } from '../observe/hubble/testing.ts';
import { runObserve, runObserveArgs } from './observe.ts';

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
        // every line but the good one is malformed, or filtered out (then not counted)
        assert.ok(err.length <= 1, err.join('\n'));
        if (r.args.output === 'json' || Object.keys(r.args).length === 0) {
          assert.deepEqual(err, [`seawall observe: skipped ${LINES.length - 1} malformed records`]);
        }
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

describe('seawall observe: a misbehaving server', () => {
  /** Serves `body` (chunks written in order, then `end`) on a unix socket in a temp dir. */
  async function observe(
    chunks: Array<string | Buffer>,
    args: Record<string, unknown> = {},
    end: 'end' | 'destroy' = 'end',
  ): Promise<{ code: number; out: string[]; err: string[] }> {
    const dir = mkdtempSync(join(tmpdir(), 'seawall-observe-'));
    const socket = join(dir, 'hubble.sock');
    const server = createServer(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      for (const c of chunks) {
        if (!res.write(c)) await new Promise((r) => res.once('drain', r));
      }
      if (end === 'end') res.end();
      else setTimeout(() => res.socket?.destroy(), 50);
    });
    await new Promise<void>((res) => server.listen(socket, res));
    const out: string[] = [];
    const err: string[] = [];
    try {
      const code = await runObserve(
        { socket, ...args },
        { write: (l) => out.push(l), error: (l) => err.push(l) },
      );
      return { code, out, err };
    } finally {
      server.closeAllConnections();
      await new Promise((res) => server.close(res));
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const evil = JSON.stringify({
    flow: {
      ...flow,
      source: { namespace: 'ns', pod_name: '\u001b[2J\u001b]0;pwned\u0007x\u009bq\u202eabc' },
    },
    node_name: 'n',
    time: flow.time,
  });

  it('oversized lines: a line over 1 MiB is skipped and counted, the next one printed', async () => {
    const MiB = 1024 * 1024;
    const huge = [Buffer.from('{"flow": "'), ...Array.from({ length: 8 }, () => Buffer.alloc(MiB, 0x61))];
    const r = await observe([...huge, Buffer.from('"}\n'), `${good}\n`], { output: 'json' });
    assert.equal(r.code, 0);
    assert.deepEqual(r.out, [good]);
    assert.deepEqual(r.err, ['seawall observe: skipped 1 line longer than 1 MiB']);
  });

  it('oversized lines: a line of exactly 1 MiB is still read', async () => {
    const pad = ' '.repeat(1024 * 1024 - good.length);
    const r = await observe([`${good}${pad}\n`], { output: 'json' });
    assert.deepEqual(r.out, [`${good}${pad}`]);
    assert.deepEqual(r.err, []);
  });

  it('ANSI escapes: control characters in fields are escaped in compact output', async () => {
    const r = await observe([`${evil}\n`]);
    assert.equal(r.out.length, 1);
    assert.doesNotMatch(r.out[0]!, /[\u0000-\u001f\u007f-\u009f\u202e]/);
    assert.match(r.out[0]!, / ns\/\\x1b\[2J\\x1b\]0;pwned\\x07x\\x9bq\\u202eabc:\d+ \(ID:\d+\) -> /);
  });

  it('ANSI escapes: json output stays the raw JSON line', async () => {
    const r = await observe([`${evil}\n`], { output: 'json' });
    assert.deepEqual(r.out, [evil]);
  });

  it('malformed records: skipped with a count on stderr, never printed as undefined', async () => {
    const bad = [
      '{"flow": {"IP": {"source": "1.2.3.4"}}, "time": "2025-01-01T00:00:00Z"}',
      '{"flow": {"verdict": "FORWARDED"}}',
      '{"flow": {"verdict": "FORWARDED", "l4": {"TCP": 5}}, "time": "x"}',
      '{"flow": {"verdict": "FORWARDED", "ingress_allowed_by": 7}, "time": "x"}',
      '[1, 2]',
      '{not json',
    ];
    const r = await observe([`${bad.join('\n')}\n${good}\n`]);
    assert.equal(r.out.length, 1);
    assert.doesNotMatch(r.out.join('\n'), /undefined/);
    assert.deepEqual(r.err, ['seawall observe: skipped 6 malformed records']);
  });

  it('a last line without a newline is printed at the end of the stream', async () => {
    const r = await observe([`${good}\n`, good], { output: 'json' });
    assert.deepEqual(r.out, [good, good]);
    assert.equal(r.code, 0);
  });

  it('a last line without a newline before the connection breaks is printed too', async () => {
    const r = await observe([`${good}\n`, good], { output: 'json', follow: true, last: 10 }, 'destroy');
    assert.deepEqual(r.out, [good, good]);
    assert.equal(r.code, 1);
  });

  it('a record split across writes, in the middle of a UTF-8 character, is read whole', async () => {
    const line = JSON.stringify({
      flow: { ...flow, source: { namespace: 'ns', pod_name: 'café-😀' } },
      time: flow.time,
    });
    const b = Buffer.from(`${line}\n`);
    const cut = b.indexOf(Buffer.from('😀')) + 2;
    const r = await observe([b.subarray(0, cut), b.subarray(cut)], { output: 'json' });
    assert.deepEqual(r.out, [line]);
  });
});

describe('seawall observe ARGS: hubble flags over gRPC and --input-file', () => {
  const named = corpus();
  const nameOf = new Map(named.map(([n, f]) => [f.uuid, n]));
  const tmp = tempDir();
  const ring = ringOf(named.map(([, f]) => f));
  const saved = join(tmp.dir, 'flows.json');
  let server: HubbleServerHandle;
  before(async () => {
    server = await startHubbleServer(
      { ring, nodeName: 'node-1' },
      { unixSocket: join(tmp.dir, 'hubble.sock') },
    );
    writeFileSync(
      saved,
      `${ring
        .fromSeq(0)
        .map((e) => JSON.stringify(e.event))
        .join('\n')}\nnot json\n`,
    );
  });
  after(async () => {
    await server?.close();
    tmp.remove();
  });
  const run = async (argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runObserveArgs(argv, { write: (l) => out.push(l), error: (l) => err.push(l) });
    return { code, out, err };
  };
  const names = (out: string[]): string[] =>
    out.map((l) => nameOf.get((JSON.parse(l) as { flow: { uuid: string } }).flow.uuid) ?? '?');
  const all = named.map(([n]) => n);
  const rows: { name: string; argv: string[]; want: (ns: string[]) => boolean }[] = [
    { name: 'every flow (--all)', argv: ['--all'], want: (ns) => ns.length === all.length },
    { name: '--first 2', argv: ['--first', '2'], want: (ns) => ns.join() === all.slice(0, 2).join() },
    { name: '--last 2', argv: ['--last', '2'], want: (ns) => ns.join() === all.slice(-2).join() },
    {
      name: '--verdict DROPPED',
      argv: ['--all', '--verdict', 'DROPPED'],
      want: (ns) => ns.length > 0 && !ns.includes('tcpAllowedIngress'),
    },
    {
      name: '--not --verdict DROPPED',
      argv: ['--all', '--not', '--verdict', 'DROPPED'],
      want: (ns) => ns.includes('tcpAllowedIngress') && !ns.includes('udpDefaultDenyEgress'),
    },
    {
      name: '-t l7 --protocol http',
      argv: ['--all', '-t', 'l7', '--protocol', 'http'],
      want: (ns) => ns.join() === 'httpGet,http404',
    },
    {
      name: '--http-status 4+',
      argv: ['--all', '--http-status', '4+'],
      want: (ns) => ns.join() === 'http404',
    },
    {
      name: '--node-name node-2',
      argv: ['--all', '--node-name', 'node-2'],
      want: (ns) => ns.join() === 'worldByName',
    },
  ];
  for (const r of rows) {
    for (const source of ['server', 'input-file'] as const) {
      it(`${r.name} (${source})`, async () => {
        const src =
          source === 'server' ? ['--server', `unix://${server.unixSocket}`] : ['--input-file', saved];
        const got = await run([...r.argv, ...src, '-o', 'jsonpb']);
        assert.equal(got.code, 0, got.err.join('\n'));
        assert.ok(r.want(names(got.out)), names(got.out).join(','));
        // the bad last line is reached (and counted) unless --first stops before it
        for (const l of got.err)
          assert.match(l, /^seawall observe: skipped 1 malformed record of \d+ lines$/);
      });
    }
  }
  it('the compact line by default, the last 20', async () => {
    const got = await run(['--server', `unix://${server.unixSocket}`]);
    assert.equal(got.code, 0);
    assert.equal(got.out.length, Math.min(20, all.length));
    assert.match(got.out[0]!, /^Jan {2}2 03:04:\d\d\.000: \S+ \(ID:\d+\) (->|<-|<>) \S+ \((ID:\d+|world)\) /);
  });
  it('a wrong value is an error, exit 2, nothing asked', async () => {
    const got = await run(['--verdict', 'dropped', '--server', 'unix:///nonexistent.sock']);
    assert.equal(got.code, 2);
    assert.match(got.err[0]!, /invalid --verdict value: dropped/);
  });
  it('--print-raw-filters prints the filters and exits', async () => {
    const got = await run(['--pod', 'client', '-n', 'shop', '--print-raw-filters']);
    assert.deepEqual(got.out, [
      `allowlist:\n- '{"source_pod":["shop/client"]}'\n- '{"destination_pod":["shop/client"]}'`,
    ]);
  });
  it('-o table: one header, aligned rows', async () => {
    const got = await run(['--last', '2', '-o', 'table', '--server', `unix://${server.unixSocket}`]);
    assert.equal(got.out.length, 3);
    assert.match(got.out[0]!, /^TIMESTAMP {3,}SOURCE {3,}DESTINATION {3,}TYPE {3,}VERDICT {3,}SUMMARY$/);
  });
  it('--input-file of a missing file is an error', async () => {
    const got = await run(['--input-file', join(tmp.dir, 'nope.json')]);
    assert.equal(got.code, 2);
    assert.match(got.err[0]!, /--input-file: ENOENT/);
  });
});

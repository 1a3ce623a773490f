// The proxies' upstream sockets: from the client's address in transparent mode, from the process's
// own otherwise, and never from the process's own once transparent mode is on (fail closed). The
// transparent rows bind loopback addresses (127.0.0.0/8 is local): nothing leaves the machine, and
// the machine's routes and rules are not touched.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import { ingress, rules, startProxy, startUpstream } from './http/test-support.ts';
import { ADDON_PATH } from './origdst.ts';
import {
  connectUpstream,
  udpUpstream,
  upstreamMode,
  useNodeUpstream,
  useTransparentUpstream,
} from './upstream-socket.ts';

const MISSING = '/nonexistent/seawall_origdst.node';
const canTransparent = process.platform === 'linux' && process.getuid?.() === 0 && existsSync(ADDON_PATH);
const needsRoot = canTransparent ? undefined : 'needs root and the built addon (scripts/build-addon.sh)';

/** A TCP server on 127.0.0.1 that records the address of each connection. */
async function tcpServer(): Promise<{ port: number; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server = net.createServer((s) => {
    seen.push(s.remoteAddress ?? '');
    s.on('error', () => {}); // the client hangs up at once
    s.end('hi');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Connects through connectUpstream: the local address it got, or the error's code. */
function dial(port: number, source: string): Promise<{ local?: string; error?: string }> {
  return new Promise((resolve) => {
    const s = connectUpstream({ address: '127.0.0.1', port }, source);
    s.once('connect', () => {
      const local = s.localAddress ?? '';
      s.destroy();
      resolve({ local });
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
  });
}

describe('connectUpstream', () => {
  afterEach(() => useNodeUpstream());
  const rows: Array<{
    name: string;
    mode: 'node' | 'transparent' | 'transparent-missing';
    source: string;
    local?: string;
    error?: string;
    skip?: string | undefined;
  }> = [
    {
      name: 'node mode: from the process, whatever the client',
      mode: 'node',
      source: '127.0.0.5',
      local: '127.0.0.1',
    },
    {
      name: 'transparent: from the client address',
      mode: 'transparent',
      source: '127.0.0.5',
      local: '127.0.0.5',
      skip: needsRoot,
    },
    {
      name: 'transparent: an IPv4-mapped client is plain IPv4',
      mode: 'transparent',
      source: '::ffff:127.0.0.6',
      local: '127.0.0.6',
      skip: needsRoot,
    },
    {
      name: 'transparent, not an address: refused, no connection',
      mode: 'transparent',
      source: 'nope',
      error: 'EUPSTREAM_SOURCE',
      skip: needsRoot,
    },
    {
      name: 'transparent without the addon: refused, never from the process address',
      mode: 'transparent-missing',
      source: '127.0.0.5',
      error: 'EUPSTREAM_SOURCE',
    },
  ];
  for (const r of rows) {
    it(r.name, { skip: r.skip }, async () => {
      if (r.mode === 'transparent') assert.equal(useTransparentUpstream(), undefined);
      if (r.mode === 'transparent-missing') assert.match(useTransparentUpstream(MISSING) ?? '', /not built/);
      assert.equal(upstreamMode(), r.mode === 'node' ? 'node' : 'transparent');
      const srv = await tcpServer();
      try {
        const got = await dial(srv.port, r.source);
        if (r.error !== undefined) {
          assert.equal(got.error, r.error);
          await new Promise((res) => setTimeout(res, 50));
          assert.deepEqual(srv.seen, [], 'no connection reached the server');
        } else {
          assert.equal(got.local, r.local);
          await new Promise((res) => setTimeout(res, 50));
          assert.deepEqual(srv.seen, [r.local]);
        }
      } finally {
        await srv.close();
      }
    });
  }
});

describe('udpUpstream', () => {
  afterEach(() => useNodeUpstream());
  const query = (source: string): Promise<{ from?: string; error?: string }> =>
    new Promise((resolve) => {
      const server = dgram.createSocket('udp4');
      server.on('message', (_m, rinfo) => {
        server.close();
        resolve({ from: rinfo.address });
      });
      server.bind(0, '127.0.0.1', () => {
        const port = server.address().port;
        const s = udpUpstream({ ip: '127.0.0.1', port }, source, () => s.send('q'));
        const close = () => {
          try {
            s.close();
          } catch {
            // closed already (the error row closes it first)
          }
        };
        s.once('error', (e: NodeJS.ErrnoException) => {
          server.close();
          close();
          resolve({ error: e.code ?? e.message });
        });
        setTimeout(close, 500).unref();
      });
    });
  it('transparent: the datagram leaves from the client address', { skip: needsRoot }, async () => {
    useTransparentUpstream();
    assert.deepEqual(await query('127.0.0.8'), { from: '127.0.0.8' });
  });
  it('transparent without the addon: an error, nothing sent', async () => {
    useTransparentUpstream(MISSING);
    assert.deepEqual(await query('127.0.0.8'), { error: 'EUPSTREAM_SOURCE' });
  });
});

describe('the HTTP proxy forwards from the client address (transparent mode)', () => {
  after(() => useNodeUpstream());
  /** GET / from `local` through the proxy: the status line. */
  const get = (port: number, local: string): Promise<string> =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: local });
      let data = '';
      s.on('connect', () => s.write('GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n'));
      s.on('data', (d) => {
        data += d.toString('latin1');
      });
      s.on('close', () => resolve(data.split('\r\n')[0] ?? ''));
      s.on('error', () => {});
    });
  const rows: Array<{
    name: string;
    addon: string;
    status: string;
    seen: string[];
    skip?: string | undefined;
  }> = [
    {
      name: 'the upstream sees the client (127.0.0.9), not the proxy',
      addon: ADDON_PATH,
      status: 'HTTP/1.1 200 OK',
      seen: ['127.0.0.9'],
      skip: needsRoot,
    },
    {
      name: 'no transparent socket: 503 and the upstream sees nothing',
      addon: MISSING,
      status: 'HTTP/1.1 503 Service Unavailable',
      seen: [],
    },
  ];
  for (const r of rows) {
    it(r.name, { skip: r.skip }, async () => {
      useTransparentUpstream(r.addon);
      const peers: string[] = [];
      const up = await startUpstream((req, res) => {
        peers.push(req.socket.remoteAddress ?? '');
        res.end('ok');
      });
      const p = await startProxy(up.address, [ingress(rules({ method: 'GET' }))]);
      try {
        assert.equal(await get(p.address.port, '127.0.0.9'), r.status);
        assert.deepEqual(peers, r.seen);
      } finally {
        await p.close();
        await up.close();
      }
    });
  }
});

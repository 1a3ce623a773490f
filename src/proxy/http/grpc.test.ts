// gRPC through the h2c proxy with @grpc/grpc-js on both ends: each call is a stream judged as
// POST /package.Service/Method; a denied call gets PERMISSION_DENIED (7), as behind Cilium's Envoy.

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { httpOf, ingress, rawExchange, rules, startProxy, type TestProxy } from './test-support.ts';

const id = (b: Buffer): Buffer => b;
const method = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: id,
  requestDeserialize: id,
  responseSerialize: id,
  responseDeserialize: id,
});
const service = {
  Echo: method('/shop.Cart/Echo', false, false),
  Remove: method('/shop.Cart/Remove', false, false),
  Chat: method('/shop.Cart/Chat', true, true),
  Fail: method('/shop.Cart/Fail', false, false),
} as unknown as grpc.ServiceDefinition;

type Unary = (req: Buffer, cb: (e: grpc.ServiceError | null, v?: Buffer) => void) => void;
interface CartClient extends grpc.Client {
  Echo: Unary;
  Remove: Unary;
  Fail: Unary;
  Chat: () => grpc.ClientDuplexStream<Buffer, Buffer>;
}

function call(
  c: CartClient,
  m: 'Echo' | 'Remove' | 'Fail',
  body: string,
): Promise<{ code: number; details: string; value?: string }> {
  return new Promise((resolve) => {
    c[m](Buffer.from(body), (e, v) => {
      if (e !== null) resolve({ code: e.code, details: e.details });
      else resolve({ code: 0, details: '', value: v?.toString() ?? '' });
    });
  });
}

describe('HTTP/2 failure paths', () => {
  test('upstream down: UNAVAILABLE, no hang', async () => {
    const p = await startProxy({ address: '127.0.0.1', port: 1 }, [ingress(rules({}))]);
    const Client = grpc.makeGenericClientConstructor(service, 'Cart');
    const c = new Client(
      `127.0.0.1:${p.address.port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as CartClient;
    try {
      const r = await call(c, 'Echo', 'x');
      assert.equal(r.code, grpc.status.UNAVAILABLE);
    } finally {
      c.close();
      await p.close();
    }
  });

  test('an idle HTTP/2 connection is closed after the keep-alive timeout', async () => {
    const p = await startProxy({ address: '127.0.0.1', port: 1 }, [ingress(rules({}))], {
      keepAliveTimeoutMs: 200,
    });
    try {
      const s = http2.connect(`http://127.0.0.1:${p.address.port}`);
      s.on('error', () => {});
      const closed = await Promise.race([
        new Promise((r) => s.once('close', () => r(true))),
        new Promise((r) => setTimeout(() => r(false), 3000)),
      ]);
      s.destroy();
      assert.equal(closed, true, 'the proxy closed the idle connection');
    } finally {
      await p.close();
    }
  });
});

describe('gRPC through the h2c proxy', () => {
  let server: grpc.Server;
  let p: TestProxy;
  let client: CartClient;
  const served: string[] = [];
  before(async () => {
    server = new grpc.Server();
    server.addService(service, {
      Echo: (c: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        served.push('Echo');
        cb(null, Buffer.concat([Buffer.from('echo:'), c.request]));
      },
      Remove: (_c: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        served.push('Remove');
        cb(null, Buffer.from('removed'));
      },
      Fail: (_c: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        served.push('Fail');
        cb({ code: grpc.status.NOT_FOUND, details: 'no such cart' });
      },
      Chat: (c: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        served.push('Chat');
        c.on('data', (d: Buffer) => c.write(Buffer.concat([Buffer.from('>'), d])));
        c.on('end', () => c.end());
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) =>
        e ? reject(e) : resolve(port),
      ),
    );
    p = await startProxy({ address: '127.0.0.1', port }, [
      ingress(rules({ method: 'POST', path: '/shop\\.Cart/(Echo|Chat|Fail)' })),
    ]);
    const Client = grpc.makeGenericClientConstructor(service, 'Cart');
    client = new Client(
      `127.0.0.1:${p.address.port}`,
      grpc.credentials.createInsecure(),
    ) as unknown as CartClient;
  });
  after(async () => {
    client.close();
    await p.close();
    server.forceShutdown();
  });

  test('unary call allowed', async () => {
    const r = await call(client, 'Echo', 'hi');
    assert.deepEqual(r, { code: 0, details: '', value: 'echo:hi' });
  });

  test('denied call: PERMISSION_DENIED, never reaches the server', async () => {
    const before = served.length;
    const r = await call(client, 'Remove', 'x');
    assert.equal(r.code, grpc.status.PERMISSION_DENIED);
    assert.equal(r.details, 'Access denied');
    assert.equal(served.length, before);
  });

  test("the server's own error status passes through", async () => {
    const r = await call(client, 'Fail', 'x');
    assert.equal(r.code, grpc.status.NOT_FOUND);
    assert.equal(r.details, 'no such cart');
  });

  test('bidirectional streaming call streams both ways', async () => {
    const s = client.Chat();
    const got: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      s.on('data', (d: Buffer) => {
        got.push(d.toString());
        if (got.length === 1) {
          // The second message goes out only after the first answer came back: real streaming.
          s.write(Buffer.from('b'));
          s.end();
        }
      });
      s.on('end', () => resolve());
      s.on('error', reject);
    });
    s.write(Buffer.from('a'));
    await done;
    assert.deepEqual(got, ['>a', '>b']);
  });

  test('many calls on one connection, each judged on its own', async () => {
    const rs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => call(client, i % 2 === 0 ? 'Echo' : 'Remove', String(i))),
    );
    assert.deepEqual(
      rs.map((r) => r.code),
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 0 : 7)),
    );
  });

  test('records: HTTP/2 request and response, DROPPED for the denied call', async () => {
    p.flows.length = 0;
    await call(client, 'Echo', 'r');
    await call(client, 'Remove', 'r');
    const lines = p.flows.map(
      (f) => `${f.l7?.type} ${f.verdict} ${httpOf(f).url.replace(/^http:\/\/[^/]+/, '')}`,
    );
    assert.deepEqual(lines, [
      'REQUEST FORWARDED /shop.Cart/Echo',
      'RESPONSE FORWARDED /shop.Cart/Echo',
      'REQUEST DROPPED /shop.Cart/Remove',
      'RESPONSE FORWARDED /shop.Cart/Remove',
    ]);
    assert.equal(httpOf(p.flows[0]!).protocol, 'HTTP/2');
    assert.equal(httpOf(p.flows[0]!).method, 'POST');
  });

  test('a connection preface split across packets is still HTTP/2', async () => {
    const r = await rawExchange(p.address, ['PRI * HTT', 'P/2.0\r\n\r\nS', 'M\r\n\r\n'], {
      gapMs: 50,
      timeoutMs: 600,
    });
    // The server's first frame: its SETTINGS (frame type 4 at offset 3), not an HTTP/1 answer.
    assert.ok(r.data.length >= 9, JSON.stringify(r.data));
    assert.equal(r.data.charCodeAt(3), 4);
  });

  test('bytes that start like the preface and then differ are HTTP/1: 400', async () => {
    const r = await rawExchange(p.address, ['PRI * HTTP/1.1\r\nHost: x\r\n\r\n'], { timeoutMs: 600 });
    assert.match(r.data, /^HTTP\/1\.1 400/);
  });

  test('a plain HTTP/2 request that is denied gets 403 Access denied', async () => {
    const s = http2.connect(`http://127.0.0.1:${p.address.port}`);
    try {
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = s.request({ ':method': 'GET', ':path': '/other' });
        let body = '';
        let status = 0;
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.setEncoding('utf8');
        req.on('data', (d: string) => {
          body += d;
        });
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
        req.end();
      });
      assert.deepEqual(r, { status: 403, body: 'Access denied\r\n' });
    } finally {
      s.close();
    }
  });

  test('a gRPC path with an escaped slash: INTERNAL, not forwarded', async () => {
    const s = http2.connect(`http://127.0.0.1:${p.address.port}`);
    const before = served.length;
    try {
      const h = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const req = s.request({
          ':method': 'POST',
          ':path': '/shop.Cart%2FEcho',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        req.on('response', resolve);
        req.on('error', reject);
        req.end();
      });
      assert.equal(h['grpc-status'], '13');
      assert.equal(served.length, before);
    } finally {
      s.close();
    }
  });
});

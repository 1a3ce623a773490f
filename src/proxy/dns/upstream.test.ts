import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { query, startUpstream, type Upstream } from './testing/upstream.ts';
import { UDPUpstreams } from './upstream.ts';

let up: Upstream;
before(async () => {
  up = await startUpstream({
    'a.example': { answers: [{ type: 'A', name: 'a.example', ttl: 5, data: '192.0.2.1' }] },
  });
});
after(() => up.close());

describe('UDPUpstreams', () => {
  test('the pod id is put back; the server saw another id', async () => {
    const u = new UDPUpstreams(() => {});
    const before = up.received.length;
    const r = await u.exchange({ ip: '127.0.0.1', port: up.port }, query('a.example', 'A', 4321), 1000);
    assert.equal(r.kind, 'answer');
    assert.equal(r.kind === 'answer' && r.buf.readUInt16BE(0), 4321);
    assert.equal(up.received.length, before + 1);
    u.close();
  });

  test('sockets are retired after maxUses and replaced (answers still arrive)', async () => {
    const u = new UDPUpstreams(() => {}, 1, 2);
    for (let i = 0; i < 7; i++) {
      const r = await u.exchange({ ip: '127.0.0.1', port: up.port }, query('a.example', 'A', i), 1000);
      assert.equal(r.kind === 'answer' && dnsPacket.decode(r.buf).id, i);
    }
    u.close();
  });

  test('a datagram from another address or with an unknown id is stray: dropped, still waiting', async () => {
    // A server that answers with a wrong id first, then the right one.
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    s.on('message', (m, rinfo) => {
      const wrong = Buffer.from(m);
      wrong.writeUInt16BE((m.readUInt16BE(0) + 1) & 0xffff, 0);
      wrong[2] = 0x81;
      s.send(wrong, rinfo.port, rinfo.address);
      const right = Buffer.from(m);
      right[2] = 0x81;
      setTimeout(() => s.send(right, rinfo.port, rinfo.address), 20);
    });
    let strays = 0;
    const u = new UDPUpstreams(() => strays++);
    const r = await u.exchange({ ip: '127.0.0.1', port: s.address().port }, query('a.example', 'A', 9), 1000);
    assert.equal(r.kind === 'answer' && r.buf.readUInt16BE(0), 9);
    assert.equal(strays, 1);
    u.close();
    s.close();
  });

  test('no answer: timeout', async () => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const u = new UDPUpstreams(() => {});
    const r = await u.exchange({ ip: '127.0.0.1', port: s.address().port }, query('a.example'), 100);
    assert.equal(r.kind, 'timeout');
    u.close();
    s.close();
  });
});

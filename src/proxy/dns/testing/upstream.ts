// Test support: a tiny DNS server on loopback (UDP and TCP on one port) answering from a table,
// and UDP/TCP clients that send raw bytes and wait for one answer. Loopback only.

import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { frame, TCPFramer } from '../wire.ts';

export interface ZoneEntry {
  answers?: dnsPacket.Answer[];
  rcode?: string;
  /** Delay before answering (ms). */
  delayMs?: number;
  /** Set the TC bit. */
  truncated?: boolean;
  /** Answer with these bytes instead (id rewritten to the query's). */
  raw?: (query: Buffer) => Buffer;
}

export interface Upstream {
  port: number;
  /** Every query the server received, decoded. */
  received: dnsPacket.Packet[];
  close(): Promise<void>;
}

export async function startUpstream(zone: Record<string, ZoneEntry>): Promise<Upstream> {
  const received: dnsPacket.Packet[] = [];
  const answer = async (buf: Buffer): Promise<Buffer | undefined> => {
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(buf);
    } catch {
      return undefined;
    }
    received.push(q);
    const name = (q.questions?.[0]?.name ?? '').toLowerCase();
    const z = zone[name] ?? { rcode: 'NXDOMAIN' };
    if (z.delayMs) await new Promise((r) => setTimeout(r, z.delayMs));
    if (z.raw) {
      const out = z.raw(buf);
      out.writeUInt16BE(q.id ?? 0, 0);
      return out;
    }
    const flags = dnsPacket.RECURSION_AVAILABLE | (z.truncated ? dnsPacket.TRUNCATED_RESPONSE : 0);
    return dnsPacket.encode({
      type: 'response',
      id: q.id ?? 0,
      flags,
      rcode: z.rcode ?? 'NOERROR',
      questions: q.questions ?? [],
      answers: z.answers ?? [],
    } as dnsPacket.Packet);
  };
  const tcp = net.createServer((s) => {
    const f = new TCPFramer(65535);
    s.on('error', () => {});
    s.on('data', async (c: Buffer) => {
      for (const m of f.push(c)) {
        const out = await answer(m);
        if (out && !s.destroyed) s.write(frame(out));
      }
    });
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  const port = (tcp.address() as net.AddressInfo).port;
  const udp = dgram.createSocket('udp4');
  udp.on('message', async (m, rinfo) => {
    const out = await answer(m);
    if (out) udp.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', () => r()));
  return {
    port,
    received,
    close: () =>
      Promise.all([
        new Promise<void>((r) => tcp.close(() => r())),
        new Promise<void>((r) => udp.close(() => r())),
      ]).then(() => {}),
  };
}

export function query(name: string, type: dnsPacket.RecordType = 'A', id = 0x1234): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
  } as dnsPacket.Packet);
}

/** Sends one datagram; resolves with the first answer or undefined after `timeoutMs`. */
export function udpAsk(port: number, msg: Buffer, timeoutMs = 2000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const t = setTimeout(() => done(undefined), timeoutMs);
    const done = (b: Buffer | undefined) => {
      clearTimeout(t);
      s.close();
      resolve(b);
    };
    s.on('message', (m) => done(m));
    s.on('error', () => done(undefined));
    s.send(msg, port, '127.0.0.1');
  });
}

/** Writes raw bytes on a TCP connection; resolves with the answers and whether the proxy closed it. */
export function tcpAsk(
  port: number,
  bytes: Buffer,
  opts: { want?: number; timeoutMs?: number } = {},
): Promise<{ answers: Buffer[]; closed: boolean }> {
  return new Promise((resolve) => {
    const answers: Buffer[] = [];
    const f = new TCPFramer(65535);
    const s = net.connect(port, '127.0.0.1');
    let closed = false;
    const t = setTimeout(() => done(), opts.timeoutMs ?? 2000);
    const done = () => {
      clearTimeout(t);
      s.destroy();
      resolve({ answers, closed });
    };
    s.on('error', () => {});
    s.on('connect', () => s.write(bytes));
    s.on('data', (c: Buffer) => {
      answers.push(...f.push(c));
      if (answers.length >= (opts.want ?? 1)) done();
    });
    s.on('close', () => {
      closed = true;
      done();
    });
  });
}

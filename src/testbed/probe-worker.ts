// Runs inside one network namespace (started with `ip netns exec NS node --import tsx ...`) and
// serves the live replay: TCP/UDP listeners that answer, and clients that report whether a
// connection or an exchange got through. One JSON command per stdin line, one reply per line.

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, Socket } from 'node:net';
import { createInterface } from 'node:readline';

type Cmd =
  | { id: number; op: 'listen'; proto: 'tcp' | 'udp'; port: number }
  | { id: number; op: 'connect'; proto: 'tcp' | 'udp'; host: string; port: number; timeoutMs: number }
  | { id: number; op: 'exit' };

const servers: Array<Server | UdpSocket> = [];
/** Accepted connections, closed at exit with their servers. */
const conns = new Set<Socket>();

function reply(id: number, body: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ id, ...body })}\n`);
}

function listen(id: number, proto: 'tcp' | 'udp', port: number): void {
  if (proto === 'tcp') {
    const s = createServer((c) => {
      conns.add(c);
      c.on('close', () => conns.delete(c));
      c.on('error', () => {});
      c.on('data', (d) => c.write(d));
    });
    s.on('error', (e) => reply(id, { ok: false, error: e.message }));
    s.listen(port, '0.0.0.0', () => reply(id, { ok: true }));
    servers.push(s);
    return;
  }
  const u = createSocket('udp4');
  u.on('message', (msg, rinfo) => u.send(msg, rinfo.port, rinfo.address));
  u.on('error', (e) => reply(id, { ok: false, error: e.message }));
  u.bind(port, '0.0.0.0', () => reply(id, { ok: true }));
  servers.push(u);
}

function connect(id: number, proto: 'tcp' | 'udp', host: string, port: number, timeoutMs: number): void {
  const t0 = performance.now();
  let done = false;
  const finish = (passed: boolean, detail: string): void => {
    if (done) return;
    done = true;
    reply(id, { ok: true, passed, detail, ms: performance.now() - t0 });
  };
  if (proto === 'tcp') {
    const s = new Socket();
    const timer = setTimeout(() => {
      s.destroy();
      finish(false, 'timeout');
    }, timeoutMs);
    s.on('connect', () => {
      clearTimeout(timer);
      s.destroy();
      finish(true, 'connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // a refusal means the packet reached the destination: policy let it through
      finish(e.code === 'ECONNREFUSED', e.code ?? e.message);
    });
    s.connect(port, host);
    return;
  }
  const u = createSocket('udp4');
  const timer = setTimeout(() => {
    u.close();
    finish(false, 'timeout');
  }, timeoutMs);
  u.on('message', () => {
    clearTimeout(timer);
    u.close();
    finish(true, 'echoed');
  });
  u.on('error', (e) => {
    clearTimeout(timer);
    u.close();
    finish(false, e.message);
  });
  u.send(Buffer.from('seawall'), port, host);
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let c: Cmd;
  try {
    c = JSON.parse(line) as Cmd;
  } catch {
    return;
  }
  if (c.op === 'listen') listen(c.id, c.proto, c.port);
  else if (c.op === 'connect') connect(c.id, c.proto, c.host, c.port, c.timeoutMs);
  else rl.close();
});
// stdin closed (or `exit`): close every listener and connection and let the process end by
// itself (the testbed never calls process.exit; a client in flight ends within its timeout)
rl.on('close', () => {
  for (const s of servers) s.close();
  for (const c of conns) c.destroy();
});
reply(0, { ok: true, ready: true });

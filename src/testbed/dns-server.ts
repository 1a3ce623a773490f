// A real DNS server for live tests and `seawall test --live` (issue 10): dnsmasq (Debian) inside a
// pod's network namespace (the kube-dns pod), answering only from a table (A records with their
// TTLs, CNAMEs), no upstream, no hosts file, every query logged so a test can count what reached
// it. And the clients: dig, and the pod's libc resolver (`getent ahostsv4` with
// /etc/netns/<ns>/resolv.conf, which `ip netns exec` bind-mounts over /etc/resolv.conf).

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface DNSRecordSpec {
  name: string;
  /** IPv4 addresses (A records). */
  ips?: string[];
  /** A CNAME to this name instead. */
  cname?: string;
  /** Seconds (default 30). */
  ttl?: number;
}

export interface DNSServer {
  ns: string;
  ip: string;
  /** Queries dnsmasq received (its query log), in order: `A api.example.com`. */
  readonly queries: string[];
  stop(): Promise<void>;
}

/** dnsmasq's arguments for a table (exported for the golden-free unit test of the mapping). */
export function dnsmasqArgs(ip: string, records: readonly DNSRecordSpec[], port = 53): string[] {
  const args = [
    '--keep-in-foreground',
    '--no-daemon',
    `--port=${port}`,
    `--listen-address=${ip}`,
    '--bind-interfaces',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    '--conf-file=/dev/null',
    '--pid-file=',
    '--user=root',
    '--log-queries',
    '--log-facility=-',
    // names not in the table: NXDOMAIN from the table's server, never a forward (no upstream)
    '--address=/#/',
  ];
  for (const r of records) {
    const name = r.name.replace(/\.$/, '');
    const ttl = r.ttl ?? 30;
    if (r.cname !== undefined) args.push(`--cname=${name},${r.cname.replace(/\.$/, '')},${ttl}`);
    for (const a of r.ips ?? []) args.push(`--host-record=${name},${a},${ttl}`);
  }
  return args;
}

/** Starts dnsmasq in `ns` on `ip`:53 (or `port`), UDP and TCP; resolves once it has started. */
export async function startDNSServer(
  ns: string,
  ip: string,
  records: readonly DNSRecordSpec[],
  opts: { timeoutMs?: number; port?: number } = {},
): Promise<DNSServer> {
  const args = dnsmasqArgs(ip, records, opts.port ?? 53);
  const child: ChildProcess = spawn('ip', ['netns', 'exec', ns, 'dnsmasq', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const queries: string[] = [];
  let started = false;
  const startedP = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`dnsmasq in ${ns} did not start`)), opts.timeoutMs ?? 10_000);
    child.once('exit', (code) => {
      clearTimeout(t);
      if (!started) reject(new Error(`dnsmasq in ${ns} exited (${code})`));
    });
    createInterface({ input: child.stderr! }).on('line', (l) => {
      // "dnsmasq: query[A] api.example.com from 10.1.2.3"
      const m = /query\[(\w+)\] (\S+) from/.exec(l);
      if (m) queries.push(`${m[1]} ${m[2]!.toLowerCase()}`);
      if (!started && /started, version/.test(l)) {
        started = true;
        clearTimeout(t);
        resolve();
      }
    });
  });
  await startedP;
  return {
    ns,
    ip,
    queries,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

export interface DigResult {
  status: string;
  answers: string[];
  /** dig gave up (no answer: timeout or connection refused). */
  noAnswer: boolean;
}

/** `dig` from inside `ns`: +tcp for TCP; short timeouts (one try). */
export function dig(
  ns: string,
  server: string,
  name: string,
  opts: { tcp?: boolean; type?: string; timeoutS?: number; port?: number } = {},
): Promise<DigResult> {
  const args = [
    'netns',
    'exec',
    ns,
    'dig',
    `@${server}`,
    '-p',
    String(opts.port ?? 53),
    name,
    opts.type ?? 'A',
  ];
  args.push('+tries=1');
  args.push(`+time=${opts.timeoutS ?? 2}`, '+noall', '+comments', '+answer');
  if (opts.tcp) args.push('+tcp');
  return new Promise((resolve) => {
    execFile('ip', args, (_err, stdout) => {
      const status = /status: (\w+)/.exec(stdout)?.[1] ?? '';
      const answers = stdout
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith(';'))
        .map((l) => l.split(/\s+/).slice(-1)[0]!)
        .filter((x) => x !== undefined);
      resolve({ status, answers, noAnswer: status === '' });
    });
  });
}

/** /etc/netns/<ns>/resolv.conf naming `server`: the pod's libc resolver asks it. Returns a remover. */
export function writePodResolvConf(ns: string, server: string): () => void {
  const dir = join('/etc/netns', ns);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'resolv.conf'), `nameserver ${server}\noptions timeout:2 attempts:1\n`);
  return () => rmSync(dir, { recursive: true, force: true });
}

/** The pod's libc resolver (getent ahostsv4): the addresses, or [] when it failed. */
export function libcResolve(ns: string, name: string): Promise<string[]> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, 'getent', 'ahostsv4', name], (err, stdout) => {
      if (err) return resolve([]);
      resolve([
        ...new Set(
          stdout
            .split('\n')
            .map((l) => l.split(/\s+/)[0]!)
            .filter((x) => x !== ''),
        ),
      ]);
    });
  });
}

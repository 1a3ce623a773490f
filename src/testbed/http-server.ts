// Real HTTP servers for `seawall test --live`: one small node:http process per pod namespace,
// answering 200 on every port an http flow (or a TCP flow to the same port) targets, so the L7
// proxy forwards to a real server and the client's status is what a pod would see.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { DatapathError } from '../datapath/exec.ts';
import { stopChildren } from './children.ts';

const SERVER_CODE = `
const http = require('node:http');
const ports = process.argv.slice(1).map(Number);
let up = 0;
for (const port of ports) {
  http.createServer((req, res) => { req.resume(); res.end('ok ' + req.method + ' ' + req.url + '\\n'); })
    .listen(port, '0.0.0.0', () => { if (++up === ports.length) process.stdout.write('ready\\n'); });
}
process.on('SIGTERM', () => process.exit(0));
`;

export class HTTPServers {
  private readonly procs: ChildProcess[] = [];

  /** Starts a server in `ns` on `ports`; resolves once every port listens. */
  async start(ns: string, ports: readonly number[]): Promise<void> {
    const c = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER_CODE, ...ports.map(String)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.procs.push(c);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new DatapathError('listen-failed', `http server in ${ns}: no answer`)),
        15_000,
      );
      createInterface({ input: c.stdout! }).once('line', () => {
        clearTimeout(t);
        resolve();
      });
      c.once('exit', (code) => {
        clearTimeout(t);
        reject(new DatapathError('listen-failed', `http server in ${ns} exited (${code})`));
      });
    });
  }

  async closeAll(): Promise<void> {
    await stopChildren(this.procs.splice(0));
  }
}

export interface HTTPProbe {
  method: string;
  path: string;
  host?: string;
  headers?: Record<string, string>;
}

/** curl from `ns`: the status it got (0: no HTTP answer: reset, dropped, timed out). */
export function curlStatus(
  ns: string,
  ip: string,
  port: number,
  r: HTTPProbe,
  timeoutMs: number,
): Promise<number> {
  const args = ['netns', 'exec', ns, 'curl', '-s', '--path-as-is', '-o', '/dev/null', '-w', '%{http_code}'];
  args.push('-m', String(Math.max(1, timeoutMs / 1000)), '-X', r.method);
  if (r.host !== undefined) args.push('-H', `Host: ${r.host}`);
  for (const [k, v] of Object.entries(r.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(`http://${ip}:${port}${r.path.startsWith('/') ? r.path : `/${r.path}`}`);
  return new Promise((resolve) => {
    execFile('ip', args, (_err, stdout) => resolve(Number(String(stdout).trim()) || 0));
  });
}

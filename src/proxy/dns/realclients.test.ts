// The proxy between real software: dnsmasq (Debian) as the server on a loopback port, dig
// (bind9-dnsutils) as the client, over UDP and TCP. Skips itself when either is not installed.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DNSProxy, type LearnedAnswer } from './proxy.ts';
import { query, udpAsk } from './testing/upstream.ts';

const run = promisify(execFile);
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip = !have('dnsmasq') || !have('dig') ? 'needs dnsmasq and dig (scripts/setup-debian.sh)' : undefined;
const pos = { file: 't.yaml', line: 1, column: 1 };

async function freeUDPPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

let dnsmasq: ChildProcess | undefined;
let dnsmasqPort = 0;
let proxy: DNSProxy;
const learned: LearnedAnswer[] = [];

before(async () => {
  if (skip) return;
  dnsmasqPort = await freeUDPPort();
  dnsmasq = spawn(
    'dnsmasq',
    [
      '--no-daemon',
      `--port=${dnsmasqPort}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      '--conf-file=/dev/null',
      '--pid-file=',
      '--local-ttl=30',
      '--host-record=api.example.com,203.0.113.10',
      '--cname=www.example.com,api.example.com',
      '--address=/other.example/192.0.2.99',
    ],
    { stdio: 'ignore' },
  );
  // Ready when it answers.
  for (let i = 0; i < 50; i++) {
    if (await udpAsk(dnsmasqPort, query('api.example.com'), 100)) break;
  }
  proxy = new DNSProxy({
    resolveRedirect: () => ({
      endpoint: { key: 'prod/app', identity: 1234 },
      server: { ip: '127.0.0.1', port: dnsmasqPort },
      rules: [
        { pos, matchName: 'api.example.com' },
        { pos, matchName: 'www.example.com' },
      ],
    }),
    onAnswer: (a) => {
      learned.push(a);
    },
  });
  await proxy.start();
});

after(async () => {
  await proxy?.close();
  dnsmasq?.kill('SIGTERM');
});

async function dig(args: string[]): Promise<{ status: string; answer: string[] }> {
  const { stdout } = await run('dig', [
    '@127.0.0.1',
    '-p',
    String(proxy.port),
    '+tries=1',
    '+time=3',
    ...args,
  ]);
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1] ?? '?';
  const answer = /;; ANSWER SECTION:\n([\s\S]*?)\n\n/.exec(stdout)?.[1]?.split('\n') ?? [];
  return { status, answer: answer.map((l) => l.split(/\s+/).filter(Boolean).join(' ')) };
}

describe('dig → proxy → dnsmasq', { skip }, () => {
  const rows: Array<{ name: string; args: string[]; status: string; answer: string[] }> = [
    {
      name: 'allowed over UDP',
      args: ['api.example.com', 'A'],
      status: 'NOERROR',
      answer: ['api.example.com. 30 IN A 203.0.113.10'],
    },
    {
      name: 'allowed over TCP',
      args: ['+tcp', 'API.example.com', 'A'],
      status: 'NOERROR',
      answer: ['API.example.com. 30 IN A 203.0.113.10'],
    },
    { name: 'refused over UDP', args: ['other.example', 'A'], status: 'REFUSED', answer: [] },
    { name: 'refused over TCP', args: ['+tcp', 'other.example', 'A'], status: 'REFUSED', answer: [] },
    {
      name: 'CNAME chain relayed',
      args: ['www.example.com', 'A'],
      status: 'NOERROR',
      answer: ['www.example.com. 30 IN CNAME api.example.com.', 'api.example.com. 30 IN A 203.0.113.10'],
    },
  ];
  for (const r of rows) {
    test(r.name, async () => {
      const got = await dig(r.args);
      assert.equal(got.status, r.status);
      assert.deepEqual(got.answer, r.answer);
    });
  }

  test('what dnsmasq answered was learnt, the chain collapsed onto the queried name', () => {
    const www = learned.find((a) => a.name === 'www.example.com.');
    assert.deepEqual(www && { ips: www.ips, ttl: www.ttl, cnames: www.cnames }, {
      ips: ['203.0.113.10'],
      ttl: 30,
      cnames: ['api.example.com.'],
    });
    assert.ok(!learned.some((a) => a.name === 'other.example.'), 'a refused name teaches nothing');
  });
});

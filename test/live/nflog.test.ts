// Live: nftables in a throwaway namespace logs to NFLOG group 1, ulogd2 (run by UlogdProcess)
// writes JSON, the tailer turns it into KernelEvents. Skips without root, Linux, ip, nft, ulogd
// and its JSON plugin. Namespaces (and with them the table and the veth) are always removed.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { JsonLineTailer, UlogdProcess } from '../../src/datapath/ulogd.ts';
import { findUlogdPluginDir, type KernelEvent } from '../../src/flow/nflog.ts';

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
const skip =
  process.platform !== 'linux'
    ? 'needs Linux'
    : process.getuid?.() !== 0
      ? 'needs root'
      : !has('ip') || !has('nft') || !has('ulogd')
        ? 'needs iproute2, nftables and ulogd2'
        : findUlogdPluginDir() === undefined
          ? 'needs ulogd2-json'
          : false;

const run = (args: string[], input?: string): void => {
  execFileSync(args[0]!, args.slice(1), { input, stdio: ['pipe', 'ignore', 'pipe'] });
};
const quiet = (args: string[]): void => {
  spawnSync(args[0]!, args.slice(1), { stdio: 'ignore', timeout: 5000 });
};

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}

describe('live NFLOG → ulogd2 → KernelEvent', { skip }, () => {
  it('reports allowed, denied and default-denied packets with their prefixes', async () => {
    const tag = `${process.pid % 100000}`;
    const nsA = `swl-a${tag}`;
    const nsB = `swl-b${tag}`;
    const runDir = mkdtempSync(join(tmpdir(), 'sw-nflog-'));
    const ulogd = new UlogdProcess({ netns: nsB, runDir, maxRestarts: 0 });
    let tailer: JsonLineTailer | undefined;
    try {
      run(['ip', 'netns', 'add', nsA]);
      run(['ip', 'netns', 'add', nsB]);
      run(['ip', '-n', nsA, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth0', 'netns', nsB]);
      run(['ip', '-n', nsA, 'addr', 'add', '10.231.0.1/24', 'dev', 'veth0']);
      run(['ip', '-n', nsB, 'addr', 'add', '10.231.0.2/24', 'dev', 'veth0']);
      for (const ns of [nsA, nsB]) {
        run(['ip', '-n', ns, 'link', 'set', 'veth0', 'up']);
        run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      }
      run(
        ['ip', 'netns', 'exec', nsB, 'nft', '-f', '-'],
        `table inet seawall_nflog_test {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 7001 ct state new log group 1 prefix "sw/fwd/in/41/" accept
    tcp dport 7002 log group 1 prefix "sw/deny/in/41/" drop
    udp dport 7003 log group 1 prefix "sw/denied/in/41/" drop
    icmp type echo-request log group 1 prefix "sw/denied/in/41/" drop
  }
}
`,
      );
      await ulogd.start();
      const events: KernelEvent[] = [];
      tailer = new JsonLineTailer(ulogd.jsonPath, {
        onEvent: (e) => events.push(e),
        from: 'start',
        pollMs: 20,
        dedupWindowMs: 10_000, // SYN retransmits come 1 s and 3 s later
      });
      tailer.start();

      // Traffic from A to B: bash's /dev/tcp and /dev/udp, ping for ICMP; failures are expected.
      const send = (script: string): void =>
        quiet(['ip', 'netns', 'exec', nsA, 'timeout', '3', 'bash', '-c', script]);
      send('echo x > /dev/tcp/10.231.0.2/7001');
      send('echo x > /dev/tcp/10.231.0.2/7002'); // SYN retransmits: deduplicated
      send('echo x > /dev/udp/10.231.0.2/7003');
      quiet(['ip', 'netns', 'exec', nsA, 'ping', '-c', '1', '-W', '1', '10.231.0.2']);
      await waitFor(() => events.length >= 4, 5000);
      tailer.poll();

      const byPort = (p: number): KernelEvent[] => events.filter((e) => e.dport === p);
      assert.equal(byPort(7001)[0]?.verdict, 'fwd');
      assert.equal(byPort(7002).length, 1, 'retransmitted SYNs within the window make one event');
      assert.equal(byPort(7002)[0]?.verdict, 'deny');
      assert.deepEqual(byPort(7002)[0]?.tcpFlags, { SYN: true });
      assert.equal(byPort(7003)[0]?.verdict, 'denied');
      assert.equal(byPort(7003)[0]?.proto, 17);
      const icmp = events.find((e) => e.proto === 1);
      if (has('ping')) assert.deepEqual(icmp?.icmp, { type: 8, code: 0 });
      for (const e of events) {
        assert.equal(e.endpointId, 41);
        assert.equal(e.dir, 'in');
        assert.equal(e.srcIP, '10.231.0.1');
      }
    } finally {
      tailer?.stop();
      await ulogd.stop();
      quiet(['ip', 'netns', 'del', nsA]);
      quiet(['ip', 'netns', 'del', nsB]);
      rmSync(runDir, { recursive: true, force: true });
    }
    assert.ok(!spawnSync('ip', ['netns', 'list']).stdout.toString().includes(nsB), 'namespace removed');
  });
});

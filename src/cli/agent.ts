// `seawall agent`: runs the node agent (--policies DIR --endpoints FILE|DIR), `seawall agent
// status` asks a running agent what it enforces, `seawall agent --cleanup` removes what a
// crashed run left behind. Linux and root only; says so otherwise.

import type { Command } from 'commander';

export function registerAgent(program: Command): void {
  const agent = program
    .command('agent')
    .description('enforce policies on this machine (network namespaces + nftables)')
    .option('--policies <dir>', 'directory of policy YAML, watched and re-applied on change')
    .option('--endpoints <path>', 'PolicyTest file(s) or Kubernetes Pod/Namespace manifests')
    .option('--node <name>', 'node namespace name: seawall-... or sw-... (default seawall-node1)')
    .option('--socket <path>', 'unix socket of the status API (default /run/seawall/<node>/agent.sock)')
    .option('--flow-log <file>', 'flow records as JSON lines (default /run/seawall/<node>/flows.jsonl)')
    .option('--flow-socket <path>', 'HTTP flow API, NDJSON (default /run/seawall/<node>/flows.sock)')
    .option(
      '--hubble-socket <path>',
      "Hubble's gRPC API for `seawall observe`, hubble, Relay (default /run/seawall/<node>/hubble.sock)",
    )
    .option('--hubble-listen-address <host:port>', "also serve Hubble's API on TCP (Hubble's port: 4244)")
    .option('--hubble-event-buffer-capacity <n>', 'flows the ring holds: 2^n-1 between 1 and 65535', '4095')
    .option(
      '--hubble-metrics <list>',
      "Hubble's metrics: `flow drop policy tcp icmp port-distribution flows-to-world`, each `name[:option=value;...]` (default flow drop policy)",
    )
    .option(
      '--hubble-drop-fold-window <ms>',
      'fold identical drops within this window into one record, counted (0: every drop, as Cilium)',
      '0',
    )
    .option('--no-flows', 'enforce only: no ulogd2, no flow records')
    .option(
      '--nft-timeout <ms>',
      'kill a hung `nft -i` after this long and replace the table in one transaction (0: never)',
      '5000',
    )
    .option(
      '--cleanup',
      'remove namespaces and tables left by crashed runs (with --node: only that node), then exit',
    )
    .option('--force', 'with --cleanup: also remove what live runs hold')
    .option('--debounce <ms>', 'apply a changed file once it is stable this long', '300')
    .option(
      '--policy-audit-mode',
      'every endpoint in PolicyAuditMode: what policy would drop passes, reported AUDIT (per endpoint: seawall endpoint config)',
    )
    .option(
      '--secrets <dir>',
      'secrets for headerMatches `secret:` references: DIR/NAMESPACE/NAME files (read by the HTTP proxy at start)',
    )
    .option('--kvstore <url>', 'share identities, the ipcache and nodes through etcd: etcd://HOST:PORT')
    .option('--node-index <k>', 'with --kvstore: node k of the underlay (address 172.31.254.k)')
    .option('--node-ip <ip>', "with --kvstore: this node's address (instead of --node-index)")
    .option('--underlay <name>', 'with --kvstore: join this underlay namespace (sw-...), made if missing')
    .option('--pod-cidr <cidr...>', "with --kvstore: this node's pod CIDRs, routed to it by the others")
    .option('--node-label <k=v...>', 'with --kvstore: node labels (fromNodes/toNodes)')
    .option('--k8s-node <name>', 'with --kvstore: endpoints whose node: is this run here (default: --node)')
    .option('--lease-ttl <s>', "with --kvstore: lease of this agent's keys in seconds", '15')
    .addHelpText(
      'after',
      `
Needs root on Linux (nftables, iproute2; ulogd2 + ulogd2-json for flow records). Everything lives
in the node namespace (default seawall-node1): the machine's own network is never touched. Node
names start with seawall- or sw- (letters, digits, _.-; at most 40 characters). Each node's
agent serves its status on /run/seawall/<node>/agent.sock; an agent refuses a socket another
live agent holds (exit 1). Endpoints are IPv4 only.

A changed policy file is applied once its content is stable (unchanged for --debounce ms): a
truncate-and-rewrite never applies the empty file in between. The directory is watched (also
when files are replaced by rename or the whole directory is swapped) and re-read every few
seconds; \`agent status\` shows pending changes, skipped files and resync corrections.

Examples:
  # Enforce a directory of policies on the endpoints of a PolicyTest file (Ctrl-C stops and cleans up)
  $ sudo seawall agent --policies policies/ --endpoints tests/shop.policytest.yaml

  # Endpoints from Kubernetes manifests (Pods, Deployments, ..., Namespaces)
  $ sudo seawall agent --policies policies/ --endpoints deploy/

  # What is enforced now, and the flow records so far (--node NAME: another node's agent)
  $ sudo seawall agent status
  $ sudo seawall agent status --node seawall-node2
  $ sudo seawall observe --last 20

  # Run a program inside a pod's namespace
  $ sudo seawall exec shop/frontend -- curl -s http://10.0.1.22:8080/

  # After a crash (SIGKILL): enforcement stayed in place; remove it (one node, or every dead run)
  $ sudo seawall agent --cleanup --node seawall-node1
  $ sudo seawall agent --cleanup

  # Two nodes through etcd (Cilium's kvstore mode), each agent enforcing its own endpoints
  $ sudo seawall agent --node seawall-node1 --kvstore etcd://127.0.0.1:2379 --node-index 1 \\
      --underlay sw-underlay --pod-cidr 10.1.0.0/16 --k8s-node node-1 --policies p/ --endpoints e.yaml
  $ sudo seawall agent --node seawall-node2 --kvstore etcd://127.0.0.1:2379 --node-index 2 \\
      --underlay sw-underlay --pod-cidr 10.2.0.0/16 --k8s-node node-2 --policies p/ --endpoints e.yaml
  $ seawall node list --kvstore etcd://127.0.0.1:2379
`,
    )
    .action(
      async (o: {
        policies?: string;
        endpoints?: string;
        node?: string;
        socket?: string;
        debounce?: string;
        cleanup?: boolean;
        force?: boolean;
        flowLog?: string;
        flowSocket?: string;
        hubbleSocket?: string;
        hubbleListenAddress?: string;
        hubbleEventBufferCapacity: string;
        hubbleDropFoldWindow: string;
        hubbleMetrics?: string;
        flows: boolean;
        nftTimeout?: string;
        policyAuditMode?: boolean;
        secrets?: string;
        kvstore?: string;
        nodeIndex?: string;
        nodeIp?: string;
        underlay?: string;
        podCidr?: string[];
        nodeLabel?: string[];
        k8sNode?: string;
        leaseTtl?: string;
      }) => {
        const { liveUnavailable } = await import('../datapath/preflight.ts');
        const why = liveUnavailable();
        if (why) {
          process.stderr.write(`seawall agent: ${why}\n`);
          process.exitCode = 2;
          return;
        }
        const { checkNodeName } = await import('../agent/agent.ts');
        try {
          if (o.node !== undefined) checkNodeName(o.node);
        } catch (e) {
          process.stderr.write(`seawall agent: --node: ${(e as Error).message}\n`);
          process.exitCode = 2;
          return;
        }
        if (o.cleanup) {
          const { cleanup } = await import('../datapath/cleanup.ts');
          const r = await cleanup({
            all: o.force === true,
            ...(o.node !== undefined ? { node: o.node } : {}),
          });
          process.stdout.write(
            r.removed.length > 0 ? `removed: ${r.removed.join(' ')}\n` : 'nothing to clean up\n',
          );
          for (const k of r.keptLive) process.stdout.write(`kept (agent running): ${k}\n`);
          return;
        }
        if (!o.policies || !o.endpoints) {
          process.stderr.write('seawall agent: --policies DIR and --endpoints FILE|DIR are required\n');
          process.exitCode = 2;
          return;
        }
        let nftTimeoutMs: number | undefined;
        if (o.nftTimeout !== undefined) {
          if (!/^\d+$/.test(o.nftTimeout)) {
            process.stderr.write(`seawall agent: --nft-timeout: not a number of ms: ${o.nftTimeout}\n`);
            process.exitCode = 2;
            return;
          }
          nftTimeoutMs = Number(o.nftTimeout);
        }
        if (o.debounce !== undefined && !/^\d+$/.test(o.debounce)) {
          process.stderr.write(`seawall agent: --debounce: not a number of ms: ${o.debounce}\n`);
          process.exitCode = 2;
          return;
        }
        const { checkHubbleCapacity } = await import('../observe/sink.ts');
        const cap = Number(o.hubbleEventBufferCapacity);
        const capProblem = /^\d+$/.test(o.hubbleEventBufferCapacity)
          ? checkHubbleCapacity(cap)
          : `not a number: ${o.hubbleEventBufferCapacity}`;
        if (capProblem !== undefined) {
          process.stderr.write(`seawall agent: --hubble-event-buffer-capacity: ${capProblem}\n`);
          process.exitCode = 2;
          return;
        }
        if (!/^\d+$/.test(o.hubbleDropFoldWindow)) {
          process.stderr.write(
            `seawall agent: --hubble-drop-fold-window: not a number of ms: ${o.hubbleDropFoldWindow}\n`,
          );
          process.exitCode = 2;
          return;
        }
        if (o.hubbleMetrics !== undefined) {
          const { parseMetricsConfig } = await import('../observe/metrics.ts');
          try {
            parseMetricsConfig(o.hubbleMetrics);
          } catch (e) {
            process.stderr.write(`seawall agent: --hubble-metrics: ${(e as Error).message}\n`);
            process.exitCode = 2;
            return;
          }
        }
        let kvstore: import('../agent/kvstore.ts').AgentKvstoreOptions | undefined;
        if (o.kvstore !== undefined) {
          const { agentKvstoreOptions } = await import('../agent/kvstore.ts');
          try {
            kvstore = agentKvstoreOptions(o);
          } catch (e) {
            process.stderr.write(`seawall agent: ${(e as Error).message}\n`);
            process.exitCode = 2;
            return;
          }
        }
        if (o.secrets !== undefined) {
          const { statSync } = await import('node:fs');
          if (!statSync(o.secrets, { throwIfNoEntry: false })?.isDirectory()) {
            process.stderr.write(`seawall agent: --secrets: not a directory: ${o.secrets}\n`);
            process.exitCode = 2;
            return;
          }
        }
        const hubbleAddr = o.hubbleListenAddress;
        if (hubbleAddr !== undefined && !/^[^\s]*:\d{1,5}$/.test(hubbleAddr)) {
          process.stderr.write(`seawall agent: --hubble-listen-address: not host:port: ${hubbleAddr}\n`);
          process.exitCode = 2;
          return;
        }
        // what the agent and its ulogd create (flow log, ulogd's raw output and log, sockets)
        // is never world-readable: 0640 files, 0750 directories
        process.umask(0o027);
        const { Agent } = await import('../agent/agent.ts');
        const a = new Agent({
          policies: o.policies,
          endpoints: o.endpoints,
          ...(o.node !== undefined ? { node: o.node } : {}),
          ...(o.debounce !== undefined ? { debounceMs: Number(o.debounce) } : {}),
          ...(o.socket ? { socket: o.socket } : {}),
          ...(o.flowLog ? { flowLog: o.flowLog } : {}),
          ...(o.flowSocket ? { flowSocket: o.flowSocket } : {}),
          hubble: {
            eventBufferCapacity: cap,
            dropFoldWindowMs: Number(o.hubbleDropFoldWindow),
            ...(o.hubbleMetrics !== undefined ? { metrics: o.hubbleMetrics } : {}),
            ...(o.hubbleSocket ? { socket: o.hubbleSocket } : {}),
            // Hubble's `:4244` means every address; grpc-js wants a host
            ...(hubbleAddr !== undefined
              ? { listenAddress: hubbleAddr.startsWith(':') ? `0.0.0.0${hubbleAddr}` : hubbleAddr }
              : {}),
          },
          ...(nftTimeoutMs !== undefined ? { nftTimeoutMs } : {}),
          ...(kvstore !== undefined ? { kvstore } : {}),
          flows: o.flows,
          ...(o.policyAuditMode === true ? { policyAuditMode: true } : {}),
          ...(o.secrets !== undefined ? { secretsDir: o.secrets } : {}),
        });
        // Handlers go in before start(): a Ctrl-C while namespaces are being made must remove
        // them, not kill the process with them left behind. Later signals while stopping are
        // absorbed for the same reason.
        let signal: NodeJS.Signals | undefined;
        let stopped: Promise<void> | undefined;
        let wake: () => void = () => {};
        const onSignal = (sig: NodeJS.Signals): void => {
          if (signal !== undefined) {
            process.stderr.write(`seawall agent: ${sig}: already stopping, removing what was made\n`);
            return;
          }
          signal = sig;
          stopped = a.stop();
          wake();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        try {
          let failed = false;
          try {
            await a.start();
          } catch (e) {
            if (signal === undefined) {
              process.stderr.write(`seawall agent: ${(e as Error).message}\n`);
              failed = true;
              stopped = a.stop();
            }
          }
          if (signal === undefined && !failed) {
            // running: wait for a signal; a clean stop after startup exits 0
            await new Promise<void>((r) => {
              wake = r;
            });
            await stopped;
            return;
          }
          await stopped;
          if (failed) {
            process.exitCode = 1;
            return;
          }
          // stopped during startup: the shell's convention for a death by signal
          process.exitCode = signal === 'SIGINT' ? 130 : 143;
          process.stderr.write(`seawall agent: ${signal} during startup; removed what was made\n`);
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      },
    );
  agent
    .command('status')
    .description('what a running agent enforces')
    .option('--node <name>', 'the node whose agent to ask (its socket is /run/seawall/<node>/agent.sock)')
    .option('--socket <path>', 'unix socket of the status API (overrides --node)')
    .option('-o, --output <format>', 'human | json', 'human')
    .action(async (o: { node?: string; socket?: string; output: string }, cmd: Command) => {
      const { fetchStatus, defaultSocket } = await import('../agent/agent.ts');
      // `agent` has --socket and --node too: commander gives `agent status --socket X` to the parent
      const parent = (cmd.parent?.opts() ?? {}) as { socket?: string; node?: string };
      const socket = o.socket ?? parent.socket ?? defaultSocket(o.node ?? parent.node);
      let s: Awaited<ReturnType<typeof fetchStatus>>;
      try {
        s = await fetchStatus(socket);
      } catch (e) {
        process.stderr.write(`seawall agent status: ${(e as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      if (o.output === 'json') {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      const lines = [
        `node ${s.node} (agent pid ${s.pid}): ${s.counts.endpoints} endpoints, ${s.counts.ipcache} identities in the ipcache, ${s.counts.elements} policy set elements, ${s.applies} applies`,
        `policies: ${s.policies.length === 0 ? '(none)' : s.policies.join(', ')}`,
      ];
      lines.push(flowLine(s.flows));
      if (s.fqdn !== undefined) lines.push(fqdnLine(s.fqdn));
      if (s.kvstore !== undefined) {
        const k = s.kvstore;
        lines.push(
          `kvstore ${k.endpoint}: ${k.store.reachable ? 'reachable' : `UNREACHABLE (${k.store.error ?? '?'}), enforcing the last state`}; ${k.nodes} nodes, ${k.remoteEndpoints} remote endpoints, ${k.identities} cluster identities, ${k.writes} writes`,
        );
      }
      lines.push(...storeLines(s));
      for (const f of s.invalidFiles)
        lines.push(`invalid (last good state kept): ${f.file}: ${f.issues.join('; ')}`);
      for (const e of s.endpoints) {
        lines.push(
          `  #${e.id} ${e.endpoint} ${e.ip} identity ${e.identity}: ingress ${e.ingress}, egress ${e.egress}, ${e.entries} entries${e.policyAuditMode === true ? ', PolicyAuditMode' : ''}`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

type FlowsStatus = Awaited<ReturnType<typeof import('../agent/agent.ts').fetchStatus>>['flows'];

/** One line on the flow pipeline: counts when it runs, the reason when it cannot. */
export function flowLine(f: FlowsStatus | undefined): string {
  if (f === undefined || f.state === 'disabled') return 'flow records: disabled (--no-flows)';
  if (f.state === 'unavailable') return `flow records: unavailable (${f.reason ?? 'unknown reason'})`;
  const ulogd = f.ulogdPid !== undefined ? `ulogd2 ${f.state} (pid ${f.ulogdPid})` : `ulogd2 ${f.state}`;
  const errors = f.errors ?? 0; // an agent from before the field
  const why = [
    ...(errors > 0 ? [`${errors} failed to build`] : []),
    ...((f.flowLogLost ?? 0) > 0 ? [`${f.flowLogLost} not written to the flow log`] : []),
  ];
  const lost = why.length > 0 ? `${f.lost} lost (${why.join(', ')})` : `${f.lost} lost`;
  const extra = f.disagreements > 0 ? `, ${f.disagreements} kernel/engine DISAGREEMENTS` : '';
  return [
    `flow records: ${f.processed} processed (${f.forwarded} forwarded, ${f.dropped} dropped${(f.audited ?? 0) > 0 ? `, ${f.audited} audited` : ''}), ${lost}, ${f.suppressedDrops} repeated drops folded${extra}; ${ulogd}`,
    `  flow log ${f.flowLog ?? '(none)'}; observe socket ${f.socket ?? '(none)'}`,
    ...(f.flowLogError !== undefined ? [`  flow log write error: ${f.flowLogError}`] : []),
  ].join('\n');
}

/** One line on toFQDNs: answers, deltas, the answer → allowed wait, answers released past the cap. */
export function fqdnLine(f: NonNullable<AgentStatusView['fqdn']>): string {
  const ms = (x: { p50: number; p99: number; samples: number }): string =>
    x.samples === 0 ? 'no samples' : `p50 ${x.p50.toFixed(1)} ms, p99 ${x.p99.toFixed(1)} ms`;
  const late = f.datapathUpdateTimeouts ?? 0; // an agent from before the field
  return [
    `fqdn: ${f.answers} answers, ${f.applied} with new addresses in ${f.syncs ?? f.applied} kernel deltas, ${f.failed} failed; answer → allowed ${ms(f.answerToAllowedMs)}`,
    `  released past --tofqdns-proxy-response-max-delay (proxy_datapath_update_timeout_total): ${late}${late > 0 ? ' (their first packets may have been dropped)' : ''}`,
  ].join('\n');
}

type AgentStatusView = Awaited<ReturnType<typeof import('../agent/agent.ts').fetchStatus>>;

/** The policy store: what is not applied yet, what is skipped, the watcher and the resync. */
export function storeLines(s: AgentStatusView, now = Date.now()): string[] {
  const out: string[] = [];
  if (s.storeError !== undefined) out.push(`policy store UNREADABLE: ${s.storeError}`);
  for (const p of s.pendingChanges ?? [])
    out.push(`pending (applied once stable): ${p.file} ${p.change} ${Math.max(0, now - p.since)} ms ago`);
  for (const f of s.skippedFiles ?? []) out.push(`skipped (last good state kept): ${f.file}: ${f.reason}`);
  if (s.watch !== undefined && s.resync !== undefined) {
    out.push(
      `watch: ${s.watch.watchers} watchers, ${s.watch.rearms} re-armed, ${s.watch.errors} errors; resync every ${s.resync.intervalMs} ms: ${s.resync.runs} runs, ${s.resync.corrections} corrections`,
    );
  }
  return out;
}

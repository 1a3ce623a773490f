// `seawall demo`: the guide's scenario. First what `validate` says about the guide's original
// policies; then, live (root + Linux), the guide's workloads as namespaces (one node runtime), the
// corrected policies applied one at a time with real traffic after each step, showing the flows
// whose verdict the step changed and the rule that decided them; then the whole picture once, the
// flow log of the last pass as the kernel reported it (hubble-observe style); then teardown.
// Without root or Linux: says what the live part needs and runs the offline part.

import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import type { TestHostSpec } from '../agent/runtime.ts';
import type { EndpointSpec, RuleRef, Verdict } from '../policy/types.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const GUIDE = join(ROOT, 'examples', 'guide');

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description("the guide's scenario: validate the originals, then enforce the corrected policies live")
    .addHelpText(
      'after',
      `
As root on Linux with nftables and iproute2 (scripts/setup-debian.sh installs them), the scenario
runs live in network namespaces of its own and is torn down at the end; elsewhere the offline part
runs (validation and the engine's verdicts for the same flows).

Examples:
  $ sudo npx seawall demo
  $ npx seawall demo        # offline part only, without root
  $ sudo npx seawall demo --nodes 2   # the workloads on two nodes sharing identities through etcd
`,
    )
    .option('--nodes <n>', 'spread the workloads over N nodes (kvstore mode; needs etcd-server)')
    .action(async (o: { nodes?: string }) => {
      const write = (l: string): void => void process.stdout.write(`${l}\n`);
      if (o.nodes !== undefined) {
        if (!/^\d+$/.test(o.nodes) || Number(o.nodes) < 1 || Number(o.nodes) > 8) {
          process.stderr.write(`seawall demo: --nodes ${o.nodes}: a number from 1 to 8\n`);
          process.exitCode = 2;
          return;
        }
        if (Number(o.nodes) > 1) {
          const { runDemoNodes } = await import('./demo-nodes.ts');
          process.exitCode = await runDemoNodes(write, Number(o.nodes));
          return;
        }
      }
      process.exitCode = await runDemo(write);
    });
}

export interface DemoOptions {
  /** false: the offline part only, even where the live part could run (tests). */
  live?: boolean;
}

export async function runDemo(out: (line: string) => void, opts: DemoOptions = {}): Promise<number> {
  const { loadPolicies } = await import('../policy-api/load.ts');
  const { formatIssue } = await import('../policytest/report.ts');
  out('== 1. What `seawall validate` says about the guide as printed (examples/guide/original/)');
  const { crossPolicyLint } = await import('../lint/cross-policy.ts');
  const { sortIssues } = await import('../policy-api/load.ts');
  // Relative to the working directory when below it, as `seawall validate` prints paths.
  const shown = relative(process.cwd(), join(GUIDE, 'original'));
  const orig = await loadPolicies([shown.startsWith('..') ? join(GUIDE, 'original') : shown]);
  const issues = [...orig.issues, ...crossPolicyLint(orig.policies)];
  sortIssues(issues);
  for (const i of issues) out(`  ${formatIssue(i)}`);
  out(`  ${issues.length} issues in ${orig.files.length} files`);

  const { loadPolicyTestFile } = await import('../policytest/parse.ts');
  const parsed = await loadPolicyTestFile(join(GUIDE, 'tests', '09-combined.test.yaml'));
  const test = parsed.tests[0];
  if (!test) {
    for (const i of parsed.issues) out(formatIssue(i));
    return 2;
  }
  const { defaultEngineFactory } = (await import('../policy/default-engine.ts')) as {
    defaultEngineFactory: import('../policy/types.ts').EngineFactory;
  };
  const { liveUnavailable } = await import('../datapath/preflight.ts');
  const why = opts.live === false ? 'not asked for' : liveUnavailable(['ip', 'nft', 'ping']);
  const corrected = readdirSync(join(GUIDE, 'corrected'))
    .filter((f) => f.endsWith('.yaml'))
    .sort();

  if (why) {
    out('');
    out(`== The live part is skipped: ${why}.`);
    out('== 2. Offline verdicts of the guide scenario with the corrected policies');
    const { runPolicyTest } = await import('../policytest/runner.ts');
    const run = runPolicyTest(test, { createEngine: defaultEngineFactory });
    for (const r of run.results) {
      const port = r.port !== undefined ? `/${r.port}` : '';
      out(`  ${r.actual.toUpperCase().padEnd(8)} ${r.from} -> ${r.to} ${r.protocol}${port}  ${r.name ?? ''}`);
    }
    return 0;
  }

  const { ENTITY_IPS, peerKey } = await import('../datapath/node.ts');
  const { NodeRuntime } = await import('../agent/runtime.ts');
  const { ProbePool, ping } = await import('../testbed/probe.ts');
  const { liveSkip, isPlainHTTP } = await import('../testbed/live-test.ts');
  const { curlStatus, HTTPServers } = await import('../testbed/http-server.ts');
  const { ProxyComponent } = await import('../agent/proxy.ts');
  const { prepareEngine } = await import('../policytest/runner.ts');
  const { formatCompact } = await import('../observe/format.ts');
  const { engine } = prepareEngine({ ...test, policies: [] }, defaultEngineFactory);
  const flows = test.flows.filter((f) => liveSkip(test, f) === undefined);
  const pods: EndpointSpec[] = [];
  const hosts = new Map<string, TestHostSpec>();
  for (const ep of test.endpoints) {
    if (ep.external || ep.namespace === undefined)
      hosts.set(`ip:${ep.ip}`, { peer: { kind: 'ip', ip: ep.ip }, ip: ep.ip });
    else pods.push({ ...ep, namespace: ep.namespace });
  }
  for (const f of test.flows) {
    for (const peer of [f.request.src, f.request.dst]) {
      if (peer.kind === 'entity' && ENTITY_IPS[peer.entity] && !hosts.has(peerKey(peer)))
        hosts.set(peerKey(peer), { peer, ip: ENTITY_IPS[peer.entity]! });
    }
  }
  const probes = new ProbePool();
  const httpServers = new HTTPServers();
  const rt = new NodeRuntime({
    engine,
    node: 'seawall-demo',
    flows: { socket: false },
    components: [
      // the guide's HTTP rules are judged by the node's proxy on real requests
      new ProxyComponent({ parser: 'http' }),
      {
        name: 'probe servers',
        start: async (r) => {
          const httpPorts = new Map<string, Set<number>>();
          for (const f of flows) {
            const dst = r.datapath.live(f.request.dst);
            if (!dst || !isPlainHTTP(f) || f.request.dport === undefined) continue;
            httpPorts.set(dst.ns, (httpPorts.get(dst.ns) ?? new Set()).add(f.request.dport));
          }
          for (const [ns, ports] of httpPorts) await httpServers.start(ns, [...ports]);
          for (const f of flows) {
            const dst = r.datapath.live(f.request.dst);
            if (dst && f.request.dport !== undefined && httpPorts.get(dst.ns)?.has(f.request.dport)) continue;
            if (dst && f.request.dport !== undefined && f.request.protocol !== 'ICMP') {
              await probes.get(dst.ns).listen(f.request.protocol === 'UDP' ? 'udp' : 'tcp', f.request.dport);
            }
          }
        },
        stop: async () => {
          await httpServers.closeAll();
          await probes.closeAll();
        },
      },
    ],
  });
  // A signal tears the node down and the demo returns the shell's code for it.
  let signal: NodeJS.Signals | undefined;
  const stop = (sig: NodeJS.Signals): void => {
    signal ??= sig;
    void rt.stop();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  /** One pass of live traffic: each flow's observed and offline verdicts. */
  const sendAll = async (): Promise<DemoVerdict[]> => {
    const out: DemoVerdict[] = [];
    for (const f of flows) {
      rt.checkStopping();
      const src = rt.datapath.live(f.request.src);
      const dst = rt.datapath.live(f.request.dst);
      if (!src || !dst) continue;
      const proto = f.request.protocol;
      const l7 = f.request.l7;
      const res =
        isPlainHTTP(f) && l7?.kind === 'http'
          ? { passed: (await curlStatus(src.ns, dst.ip, f.request.dport ?? 80, l7, 2000)) === 200 }
          : proto === 'ICMP'
            ? await ping(src.ns, dst.ip, 500)
            : await probes
                .get(src.ns)
                .connect(proto === 'UDP' ? 'udp' : 'tcp', dst.ip, f.request.dport ?? 0, 300);
      const v = engine.decide(f.request);
      out.push({
        flow: f.index,
        text: `${f.from} -> ${f.to} ${proto}/${f.request.dport ?? ''}`,
        live: res.passed ? 'FORWARDED' : 'DROPPED',
        offline: v.verdict,
        ...(v.reason !== undefined ? { reason: v.reason } : {}),
        rules: decidingRules(v),
      });
    }
    return out;
  };
  try {
    out('');
    out('== 2. The guide\'s workloads as network namespaces behind node "seawall-demo"');
    await rt.start({ pods, hosts: [...hosts.values()] });
    for (const ep of pods) {
      const p = rt.datapath.live({ kind: 'endpoint', namespace: ep.namespace!, name: ep.name });
      out(`  pod ${ep.namespace}/${ep.name} ${ep.ip} (netns ${p?.ns}, endpoint #${p?.endpointId})`);
    }
    const pipeline = rt.flows!;
    const fs = pipeline.status();
    out(
      pipeline.available
        ? `  flow records: ulogd2 in the node namespace, written to ${fs.flowLog}`
        : `  flow records unavailable (${fs.reason}); traffic is still enforced`,
    );
    out(
      `  ${flows.length} of ${test.flows.length} flows are sent live after each step (HTTP requests with curl, through the node proxy)`,
    );
    let before = await sendAll();
    const open = before.filter((v) => v.live === 'FORWARDED').length;
    out(`  before any policy: ${open} of ${before.length} flows FORWARDED`);
    const { loadPolicies: load } = await import('../policy-api/load.ts');
    let last = { from: pipeline.nextSeq, to: pipeline.nextSeq };
    for (const [step, file] of corrected.entries()) {
      pipeline.drain();
      const from = pipeline.nextSeq;
      const r = await load([join(GUIDE, 'corrected', file)]);
      for (const p of r.policies) engine.upsertPolicy(p);
      const st = await rt.sync(); // the kernel, then the proxy's acknowledged mirror
      out('');
      out(
        `== 3.${step + 1} apply corrected/${file} (${st.kind}, ${st.lines} nft lines, ${st.ms.toFixed(1)} ms)`,
      );
      const now = await sendAll();
      const changed = changedVerdicts(before, now);
      if (changed.length === 0) out('  no verdict changed');
      for (const v of changed) out(`  ${verdictLine(v)}  (was ${v.was}; corrected/${file}: ${v.rules})`);
      before = now;
      // records trail the packets by a poll interval or two
      await new Promise((res) => setTimeout(res, 150));
      pipeline.drain();
      last = { from, to: pipeline.nextSeq };
    }
    out('');
    out(`== 4. The whole picture after the ${corrected.length} steps`);
    for (const v of before) out(`  ${verdictLine(v)}  (${v.rules})`);
    out('');
    if (!pipeline.available) {
      out(`== 5. No flow log: flow records unavailable (${pipeline.status().reason ?? 'unknown'})`);
    } else {
      const st = pipeline.status();
      out(
        `== 5. Flow log of the last step's traffic: the kernel's policy verdicts as flow records (${st.processed} records in all, ${st.dropped} dropped; ${st.flowLog})`,
      );
      for (const e of pipeline.since(last.from)) if (e.seq < last.to) out(`  ${formatCompact(e.event)}`);
      if (st.disagreements > 0)
        out(`  ${st.disagreements} records where the kernel and the engine disagree!`);
    }
  } catch (e) {
    if (signal === undefined) throw e;
  } finally {
    await rt.stop();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    out('');
    out('== torn down: namespaces and the nftables table are gone');
  }
  return signal === undefined ? 0 : signal === 'SIGINT' ? 130 : 143;
}

/** One flow's verdicts in one pass of the demo. */
export interface DemoVerdict {
  flow: number;
  text: string;
  live: 'FORWARDED' | 'DROPPED';
  offline: Verdict['verdict'];
  reason?: string;
  /** The engine's deciding rules (allowed_by / denied_by, or the default deny). */
  rules: string;
}

function verdictLine(v: DemoVerdict): string {
  const reason = v.live === 'DROPPED' && v.reason ? ` ${v.reason}` : '';
  return `${v.live.padEnd(9)} ${v.text}${reason}  (offline: ${v.offline})`;
}

/** The flows whose live verdict differs from the previous pass, with the verdict they had. */
export function changedVerdicts(
  before: readonly DemoVerdict[],
  now: readonly DemoVerdict[],
): Array<DemoVerdict & { was: string }> {
  const was = new Map(before.map((v) => [v.flow, v.live]));
  const out: Array<DemoVerdict & { was: string }> = [];
  for (const v of now) {
    const w = was.get(v.flow);
    if (w !== undefined && w !== v.live) out.push({ ...v, was: w });
  }
  return out;
}

const ref = (r: RuleRef): string => (r.namespace !== undefined ? `${r.namespace}/${r.name}` : r.name);

/** What decided a verdict, in Hubble's words: `ingress_allowed_by shop/x`, a default deny. */
export function decidingRules(v: Verdict): string {
  const parts: string[] = [];
  for (const d of [v.egress, v.ingress]) {
    if (d === undefined || !d.enforced) continue;
    const dir = d.direction === 'INGRESS' ? 'ingress' : 'egress';
    const names = (rs: readonly RuleRef[]): string => [...new Set(rs.map(ref))].join(', ');
    if (d.deniedBy.length > 0) parts.push(`${dir}_denied_by ${names(d.deniedBy)}`);
    else if (!d.allowed) parts.push(`${dir} default deny of ${d.endpoint}`);
    else if (d.allowedBy.length > 0) parts.push(`${dir}_allowed_by ${names(d.allowedBy)}`);
  }
  return parts.length > 0 ? parts.join('; ') : 'no policy selects either end';
}

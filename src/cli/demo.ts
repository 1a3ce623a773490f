// `seawall demo`: the guide's scenario. First what `validate` says about the guide's original
// policies; then, live (root + Linux), the guide's workloads as namespaces, the corrected
// policies applied one at a time, real traffic after each step and its verdicts, then the flow log
// as the kernel reported it (the real flow records, hubble-observe style); then teardown.
// Without root or Linux: says what the live part needs and runs the offline part.

import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Command } from 'commander';

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
`,
    )
    .action(async () => {
      process.exitCode = await runDemo((l) => process.stdout.write(`${l}\n`));
    });
}

export async function runDemo(out: (line: string) => void): Promise<number> {
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
  const why = liveUnavailable(['ip', 'nft', 'ping']);
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

  const { NodeDatapath, ENTITY_IPS } = await import('../datapath/node.ts');
  const { ProbePool, ping } = await import('../testbed/probe.ts');
  const { liveSkip } = await import('../testbed/live-test.ts');
  const { prepareEngine } = await import('../policytest/runner.ts');
  const { FlowPipeline } = await import('../agent/flows.ts');
  const { runDirFor } = await import('../datapath/topology.ts');
  const { formatCompact } = await import('../observe/format.ts');
  const { rmSync } = await import('node:fs');
  const { engine } = prepareEngine({ ...test, policies: [] }, defaultEngineFactory);
  const node = new NodeDatapath(engine, { node: 'seawall-demo' });
  const probes = new ProbePool();
  const pipeline = new FlowPipeline(node, { socket: false });
  const stop = (): void => {
    probes.closeAll();
    void pipeline
      .stop()
      .then(() => node.down())
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    out('');
    out('== 2. The guide\'s workloads as network namespaces behind node "seawall-demo"');
    await node.up();
    for (const ep of test.endpoints) {
      if (ep.external || ep.namespace === undefined) {
        await node.addTestHost({ kind: 'ip', ip: ep.ip }, ep.ip, { sync: false });
      } else {
        const p = await node.addPod({ ...ep, namespace: ep.namespace }, { sync: false });
        out(`  pod ${ep.namespace}/${ep.name} ${ep.ip} (netns ${p?.ns}, endpoint #${p?.endpointId})`);
      }
    }
    for (const f of test.flows) {
      for (const peer of [f.request.src, f.request.dst]) {
        if (node.live(peer)) continue;
        if (peer.kind === 'entity' && ENTITY_IPS[peer.entity]) {
          await node.addTestHost(peer, ENTITY_IPS[peer.entity]!, { sync: false });
        }
      }
    }
    await node.sync();
    const fs = await pipeline.start();
    out(
      fs.state === 'running'
        ? `  flow records: ulogd2 in the node namespace, written to ${fs.flowLog}`
        : `  flow records unavailable (${fs.reason}); traffic is still enforced`,
    );
    const flows = test.flows.filter((f) => liveSkip(test, f) === undefined);
    for (const f of flows) {
      const dst = node.live(f.request.dst);
      if (dst && f.request.dport !== undefined && f.request.protocol !== 'ICMP') {
        await probes.get(dst.ns).listen(f.request.protocol === 'UDP' ? 'udp' : 'tcp', f.request.dport);
      }
    }
    out(`  ${flows.length} of ${test.flows.length} flows need no L7 proxy and are sent live after each step`);
    const { loadPolicies: load } = await import('../policy-api/load.ts');
    const steps: Array<{ file: string; from: number; to: number }> = [];
    for (const [step, file] of corrected.entries()) {
      pipeline.drain();
      const from = pipeline.nextSeq;
      const r = await load([join(GUIDE, 'corrected', file)]);
      for (const p of r.policies) engine.upsertPolicy(p);
      const st = await node.sync();
      out('');
      out(
        `== 3.${step + 1} apply corrected/${file} (${st.kind}, ${st.lines} nft lines, ${st.ms.toFixed(1)} ms)`,
      );
      for (const f of flows) {
        const src = node.live(f.request.src);
        const dst = node.live(f.request.dst);
        if (!src || !dst) continue;
        const proto = f.request.protocol;
        const res =
          proto === 'ICMP'
            ? await ping(src.ns, dst.ip, 500)
            : await probes
                .get(src.ns)
                .connect(proto === 'UDP' ? 'udp' : 'tcp', dst.ip, f.request.dport ?? 0, 300);
        const offline = engine.decide(f.request);
        const verdict = res.passed ? 'FORWARDED' : 'DROPPED';
        const reason = !res.passed && offline.reason ? ` ${offline.reason}` : '';
        const line = `${verdict.padEnd(9)} ${f.from} -> ${f.to} ${proto}/${f.request.dport ?? ''}${reason}  (offline: ${offline.verdict})`;
        out(`  ${line}`);
      }
      // records trail the packets by a poll interval or two
      await new Promise((r) => setTimeout(r, 150));
      pipeline.drain();
      steps.push({ file, from, to: pipeline.nextSeq });
    }
    out('');
    if (!pipeline.available) {
      out(`== 4. No flow log: flow records unavailable (${pipeline.status().reason ?? 'unknown'})`);
    } else {
      const st = pipeline.status();
      out(
        `== 4. Flow log: the kernel's policy verdicts as flow records (${st.processed} records, ${st.dropped} dropped; ${st.flowLog})`,
      );
      for (const [i, s] of steps.entries()) {
        out(`  -- after step 3.${i + 1} (corrected/${s.file})`);
        for (const e of pipeline.since(s.from)) if (e.seq < s.to) out(`  ${formatCompact(e.event)}`);
      }
      if (st.disagreements > 0)
        out(`  ${st.disagreements} records where the kernel and the engine disagree!`);
    }
  } finally {
    probes.closeAll();
    await pipeline.stop();
    rmSync(runDirFor(node.node), { recursive: true, force: true });
    await node.down();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    out('');
    out('== torn down: namespaces and the nftables table are gone');
  }
  return 0;
}

// `seawall demo --nodes N`: the guide's workloads spread over N nodes (round robin, in the order
// the guide lists them), each node with its own agent runtime in kvstore mode and one etcd of the
// demo's own; every flow of the guide's combined test sent from its source's node to its
// destination's, with where it was judged. What `seawall test --live` skips in multi-node tests
// (L7 requests, outside addresses) is skipped here too, with the reason.

import { join } from 'node:path';

const GUIDE = join(import.meta.dirname, '..', '..', 'examples', 'guide');

export async function runDemoNodes(out: (line: string) => void, nodes: number): Promise<number> {
  const { liveUnavailable } = await import('../datapath/preflight.ts');
  const { multiNodeUnavailable, replayMultiNode } = await import('../testbed/live-multinode.ts');
  const why = liveUnavailable(['ip', 'nft', 'ping']) ?? multiNodeUnavailable();
  if (why !== undefined) {
    out(`seawall demo --nodes ${nodes}: the live part needs ${why}`);
    return 2;
  }
  const { loadPolicyTestFile } = await import('../policytest/parse.ts');
  const parsed = await loadPolicyTestFile(join(GUIDE, 'tests', '09-combined.test.yaml'));
  const test = parsed.tests[0];
  if (test === undefined) {
    out('the guide test did not load');
    return 2;
  }
  let k = 0;
  test.endpoints = test.endpoints.map((e) =>
    e.external || e.namespace === undefined ? e : { ...e, node: `node-${(k++ % nodes) + 1}` },
  );
  out(`== The guide's workloads on ${nodes} nodes (kvstore mode, a private etcd):`);
  for (let i = 1; i <= nodes; i++) {
    const here = test.endpoints.filter((e) => e.node === `node-${i}`).map((e) => `${e.namespace}/${e.name}`);
    out(`  node-${i}: ${here.join(', ')}`);
  }
  const { runPolicyTest } = await import('../policytest/runner.ts');
  const { defaultEngineFactory } = await import('../policy/default-engine.ts');
  const offline = runPolicyTest(test, { createEngine: defaultEngineFactory });
  const nodeOf = (name: string): string =>
    test.endpoints.find((e) => `${e.namespace}/${e.name}` === name || e.name === name)?.node ?? '';
  const { liveSkip } = await import('../testbed/live-test.ts');
  const skips = new Map<number, string>();
  for (const f of test.flows) {
    const why = liveSkip(
      test,
      f,
      offline.results.find((r) => r.flow === f.index),
    );
    if (why !== undefined) skips.set(f.index, why);
  }
  const results = await replayMultiNode(test, {
    createEngine: defaultEngineFactory,
    offline: offline.results,
    skips,
    timeoutMs: 500,
  });
  let failed = 0;
  out(
    '== Each flow sent from its source node to its destination node (egress judged at the source, ingress at the destination):',
  );
  for (const r of results) {
    const port = r.port !== undefined ? `/${r.port}` : '';
    const where = `${nodeOf(r.from) || r.from} → ${nodeOf(r.to) || r.to}`;
    if (r.outcome === 'skip') out(`  SKIP ${r.from} → ${r.to}${port}: ${r.note ?? ''}`);
    else
      out(
        `  ${r.outcome === 'pass' ? 'ok  ' : 'FAIL'} ${r.from} → ${r.to}${port} ${r.live} (expected ${r.expected}; ${where})${r.note ? `: ${r.note}` : ''}`,
      );
    if (r.outcome === 'fail') failed++;
  }
  out(
    `== ${results.filter((r) => r.outcome === 'pass').length} as expected, ${failed} not, ${results.filter((r) => r.outcome === 'skip').length} skipped; nodes torn down`,
  );
  return failed > 0 ? 1 : 0;
}

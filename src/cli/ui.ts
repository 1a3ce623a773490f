// `seawall ui`: the web UI (service map, flows, policy view, trace) on 127.0.0.1:12000, from a
// running agent's Hubble API, a saved flow file, or the policies alone.

import type { Command } from 'commander';
import type { CommandIO } from '../policytest/cli-support.ts';
import { collect } from './scenario-options.ts';

export interface UIFlags {
  listen: string;
  server?: string;
  node?: string;
  inputFile?: string;
  file?: string[];
  policies?: string[];
  test?: string;
  window: string;
}

const EXAMPLES = `
Examples:
  # A running agent's flows, live (its Hubble API), rules explained from the same policies
  $ seawall ui --server unix:///run/seawall/node-1/hubble.sock --policies policies/ -f deploy/
  $ seawall ui --node node-1 --policies policies/

  # Saved flows (a flow log or \`hubble observe -o jsonpb\` output)
  $ seawall ui --input-file flows.jsonl --policies policies/

  # The policies alone: the engine's verdicts on a PolicyTest's flows, no traffic
  $ seawall ui -f tests/shop.policytest.yaml
  $ seawall ui -f deploy/ --policies policies/

Then open http://127.0.0.1:12000/ (--listen to change it).
`;

export function registerUI(program: Command): void {
  program
    .command('ui')
    .description('serve the web UI: service map, flows, policy view and trace')
    .option('--listen <host:port>', 'address to serve on', '127.0.0.1:12000')
    .option('--server <address>', "an agent's Hubble API: unix:///PATH or HOST:PORT")
    .option('--node <name>', 'the agent of this node: its Hubble API at /run/seawall/<name>/hubble.sock')
    .option('--input-file <file>', 'saved flows: a flow log or hubble observe -o jsonpb output')
    .option(
      '-f, --file <path>',
      'PolicyTest file, or Kubernetes manifests (file or directory); repeatable',
      collect,
    )
    .option('--policies <path>', 'policy file or directory; repeatable', collect)
    .option('--test <name>', 'which PolicyTest of a multi-document file (default: the first)')
    .option('--window <n>', 'flows the UI keeps', '20000')
    .addHelpText('after', EXAMPLES)
    .action(async (flags: UIFlags) => {
      const { processIO } = await import('../policytest/cli-support.ts');
      const h = await runUICommand(flags, processIO);
      if (h === undefined) return;
      const stop = () => {
        void h.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}

export async function runUICommand(
  flags: UIFlags,
  io: CommandIO,
): Promise<{ url: string; close(): Promise<void> } | undefined> {
  const cs = await import('../policytest/cli-support.ts');
  const { formatIssue } = await import('../policytest/report.ts');
  const src = await import('../ui/server/sources.ts');
  const { PolicyContext } = await import('../ui/server/policies.ts');
  const { startUIServer } = await import('../ui/server/server.ts');
  const { loadAssets } = await import('../ui/build.ts');
  const { formatFlowIssue } = await import('../flow/read.ts');
  const fail = (msg: string) => {
    io.stderr(`seawall ui: ${msg}\n`);
    io.setExitCode(cs.EXIT.invalid);
    return undefined;
  };
  if (flags.node !== undefined) {
    if (flags.server !== undefined) return fail('give --server or --node, not both');
    if (!/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/.test(flags.node))
      return fail(`--node ${flags.node}: not a node name`);
    // The agent serves its Hubble API here (one socket per node, beside agent.sock).
    flags = { ...flags, server: `unix:///run/seawall/${flags.node}/hubble.sock` };
  }
  const given = [flags.server, flags.inputFile].filter((x) => x !== undefined).length;
  if (given > 1) return fail('give --server or --input-file, not both');
  const scenarioGiven = (flags.file ?? []).length > 0 || (flags.policies ?? []).length > 0;
  if (given === 0 && !scenarioGiven)
    return fail('give --server ADDRESS, --input-file FILE, or policies (--policies DIR and/or -f FILE)');
  const window = Number(flags.window);
  if (!Number.isInteger(window) || window < 1) return fail(`--window ${flags.window}: a positive number`);

  let ctx: import('../ui/server/policies.ts').PolicyContext | undefined;
  let scenarioEndpoints: import('../policytest/types.ts').TestEndpoint[] = [];
  let test: import('../policytest/types.ts').PolicyTest | undefined;
  if (scenarioGiven) {
    const { loadScenario } = await import('../policytest/scenario.ts');
    const sc = await loadScenario({
      files: flags.file ?? [],
      policies: flags.policies ?? [],
      ...(flags.test !== undefined ? { testName: flags.test } : {}),
    });
    const r = PolicyContext.create(sc);
    for (const i of r.issues) io.stderr(`${formatIssue(i)}\n`);
    if (r.ctx === undefined) return fail('the policies do not load (errors above)');
    ctx = r.ctx;
    scenarioEndpoints = sc.endpoints;
    if (given === 0) {
      // A PolicyTest's flows are the traffic; manifests give pod pairs × ports.
      const { loadPolicyTestFile, looksLikePolicyTest } = await import('../policytest/parse.ts');
      const { readFileSync, statSync } = await import('node:fs');
      for (const f of flags.file ?? []) {
        if (!statSync(f).isFile() || !looksLikePolicyTest(readFileSync(f, 'utf8'))) continue;
        const parsed = await loadPolicyTestFile(f);
        test = flags.test !== undefined ? parsed.tests.find((t) => t.name === flags.test) : parsed.tests[0];
        if (test) break;
      }
    }
  }
  let source: import('../ui/server/sources.ts').FlowSource;
  try {
    if (flags.inputFile !== undefined) source = src.fileSource(flags.inputFile);
    else if (flags.server !== undefined) source = src.hubbleSource(flags.server, Math.min(window, 20_000));
    else source = src.policySource(ctx!, scenarioEndpoints, test);
  } catch (e) {
    if (e instanceof src.SourceError) {
      for (const i of e.issues) io.stderr(`${formatFlowIssue(i)}\n`);
      return fail(e.message);
    }
    throw e;
  }
  const assets = await loadAssets();
  let h: Awaited<ReturnType<typeof startUIServer>>;
  try {
    h = await startUIServer({
      source,
      ...(ctx !== undefined ? { policies: ctx } : {}),
      assets,
      listen: flags.listen,
      windowSize: window,
    });
  } catch (e) {
    return fail(`${flags.listen}: ${(e as Error).message}`);
  }
  if (!/^(127\.|\[::1\]|localhost)/.test(flags.listen))
    io.stderr(`seawall ui: ${flags.listen} is not a loopback address: whoever reaches it reads every flow\n`);
  io.stdout(`seawall ui: ${source.describe}; open ${h.url}/\n`);
  return h;
}

// A UI server over a saved flow file and a policy file, on a free loopback port, for the browser
// tests, the screenshots and the bench. Everything it makes goes when `close()` is called.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenario } from '../../policytest/scenario.ts';
import { loadAssets } from '../build.ts';
import type { UIFlow } from '../domain/types.ts';
import { PolicyContext } from '../server/policies.ts';
import { startUIServer, type UIServerHandle } from '../server/server.ts';
import { type FlowSource, fileSource } from '../server/sources.ts';

export interface Harness {
  url: string;
  dir: string;
  flowFile: string;
  server: UIServerHandle;
  close(): Promise<void>;
}

export function writeFlowFile(path: string, flows: readonly UIFlow[]): void {
  writeFileSync(
    path,
    flows
      .map((u) => JSON.stringify({ flow: u.flow, node_name: u.node_name ?? 'node-1', time: u.time }))
      .join('\n') + '\n',
  );
}

/** Serves `flows` from a flow file (or `source`), with rules explained from `policies` files. */
export async function startHarness(o: {
  flows?: readonly UIFlow[];
  source?: FlowSource;
  policies?: string[];
  files?: string[];
}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-ui-'));
  const flowFile = join(dir, 'flows.jsonl');
  let ctx: PolicyContext | undefined;
  if ((o.policies ?? []).length > 0 || (o.files ?? []).length > 0) {
    const sc = await loadScenario({ files: o.files ?? [], policies: o.policies ?? [] });
    const r = PolicyContext.create(sc);
    if (r.ctx === undefined) throw new Error(`policies do not load: ${JSON.stringify(r.issues)}`);
    ctx = r.ctx;
  }
  let source = o.source;
  if (source === undefined) {
    writeFlowFile(flowFile, o.flows ?? []);
    source = fileSource(flowFile);
  }
  const server = await startUIServer({
    source,
    ...(ctx !== undefined ? { policies: ctx } : {}),
    assets: await loadAssets(),
    listen: '127.0.0.1:0',
  });
  return {
    url: server.url,
    dir,
    flowFile,
    server,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

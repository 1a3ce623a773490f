// The UI server's window of flows: the last `capacity` flows with their rule hits, in arrival
// order, and the subscribers (SSE clients) that get each new one.

import type { UIFlow } from '../domain/types.ts';
import type { FlowLine } from './sources.ts';

export class FlowStore {
  private readonly rows: UIFlow[] = [];
  private seq = 0;
  private readonly subs = new Set<(f: UIFlow) => void>();

  constructor(readonly capacity = 20_000) {}

  add(line: FlowLine, rules: UIFlow['rules']): UIFlow {
    const u: UIFlow = { seq: ++this.seq, flow: line.flow, time: line.time, rules };
    if (line.node_name !== undefined) u.node_name = line.node_name;
    this.rows.push(u);
    if (this.rows.length > this.capacity) this.rows.splice(0, this.rows.length - this.capacity);
    for (const s of this.subs) s(u);
    return u;
  }

  get size(): number {
    return this.rows.length;
  }

  all(): readonly UIFlow[] {
    return this.rows;
  }

  subscribe(fn: (f: UIFlow) => void): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }
}

/** A flow as the flow log writes it (GetFlowsResponse keys: flow, node_name, time). */
export function flowLogLine(u: UIFlow): string {
  return JSON.stringify(
    u.node_name !== undefined
      ? { flow: u.flow, node_name: u.node_name, time: u.time }
      : { flow: u.flow, time: u.time },
  );
}

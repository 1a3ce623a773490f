// Reads recorded flows: JSON lines of `seawall observe -o json` / `hubble observe -o jsonpb`
// (GetFlowsResponse: `{"flow": {...}, "node_name": ..., "time": ...}`), bare Flow objects one per
// line, or one JSON array of either. Lines that are not flows are errors with file:line and why;
// GetFlowsResponse lines of another kind (node_status, lost_events) are passed over, as Hubble does.

import type { Flow } from './types.ts';

export interface FlowReadIssue {
  file: string;
  line: number;
  message: string;
}

export interface ReadFlows {
  flows: Flow[];
  /** 1-based line of each flow in `flows` (for messages that point back into the log). */
  lines: number[];
  issues: FlowReadIssue[];
  /** GetFlowsResponse lines without a flow (node_status, lost_events). */
  skipped: number;
}

/** At most this many issues are kept: a log in the wrong format should not flood the terminal. */
const MAX_ISSUES = 20;

export function parseFlowText(file: string, text: string): ReadFlows {
  const out: ReadFlows = { flows: [], lines: [], issues: [], skipped: 0 };
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (e) {
      out.issues.push({ file, line: 1, message: `not a JSON array of flows: ${(e as Error).message}` });
      return out;
    }
    if (!Array.isArray(arr)) {
      out.issues.push({ file, line: 1, message: 'not a JSON array of flows' });
      return out;
    }
    arr.forEach((v, i) => {
      take(out, file, i + 1, v, `element ${i}`);
    });
    return out;
  }
  let start = 0;
  let line = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    line++;
    const s = text.slice(start, end).trim();
    start = end + 1;
    if (s === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      addIssue(out, { file, line, message: `not JSON: ${(e as Error).message}` });
      continue;
    }
    take(out, file, line, v, 'line');
  }
  return out;
}

function take(out: ReadFlows, file: string, line: number, v: unknown, what: string): void {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    addIssue(out, { file, line, message: `${what} is not a JSON object` });
    return;
  }
  const o = v as Record<string, unknown>;
  let flow: unknown = o;
  if ('flow' in o) flow = o.flow;
  else if ('node_status' in o || 'lost_events' in o) {
    out.skipped++;
    return;
  }
  const why = notAFlow(flow);
  if (why !== undefined) {
    addIssue(out, { file, line, message: `${what} is not a Hubble flow: ${why}` });
    return;
  }
  out.flows.push(flow as Flow);
  out.lines.push(line);
}

function notAFlow(f: unknown): string | undefined {
  if (f === null || typeof f !== 'object' || Array.isArray(f)) return 'flow is not an object';
  const o = f as Record<string, unknown>;
  if (typeof o.verdict !== 'string') return 'no "verdict"';
  if (o.IP !== undefined && (typeof o.IP !== 'object' || o.IP === null)) return '"IP" is not an object';
  for (const side of ['source', 'destination'] as const) {
    const e = o[side];
    if (e === undefined) continue;
    if (typeof e !== 'object' || e === null) return `"${side}" is not an object`;
    const labels = (e as Record<string, unknown>).labels;
    if (labels !== undefined && (!Array.isArray(labels) || labels.some((l) => typeof l !== 'string')))
      return `"${side}.labels" is not a list of strings`;
  }
  return undefined;
}

function addIssue(out: ReadFlows, i: FlowReadIssue): void {
  if (out.issues.length < MAX_ISSUES) out.issues.push(i);
  else if (out.issues.length === MAX_ISSUES)
    out.issues.push({ file: i.file, line: i.line, message: 'more lines are not flows; stopped reporting' });
}

export function formatFlowIssue(i: FlowReadIssue): string {
  return `${i.file}:${i.line}: error: ${i.message}`;
}

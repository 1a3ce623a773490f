// Shared by the offline commands (trace, matrix, policy show): I/O seams for tests, scenario
// flags, and building an engine that holds a scenario.

import { SeawallError } from '../core/errors.ts';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import type {
  EnforcementMode,
  EngineFactory,
  FlowProtocol,
  L7Request,
  PolicyEngineAPI,
} from '../policy/types.ts';
import type { Issue } from '../policy-api/issue.ts';
import { formatIssue } from './report.ts';
import { prepareEngine } from './runner.ts';
import { loadScenario, type Scenario } from './scenario.ts';

export interface CommandIO {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  setExitCode: (code: number) => void;
}

export const processIO: CommandIO = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  setExitCode: (c) => {
    process.exitCode = c;
  },
};

export const EXIT = { ok: 0, failed: 1, invalid: 2 } as const;

/** A command line that makes no sense (exit 2). */
export class UsageError extends SeawallError<'usage'> {
  override name = 'UsageError';
  constructor(message: string) {
    super('usage', message);
  }
}

export interface ScenarioFlags {
  file?: string[];
  policies?: string[];
  test?: string;
  enforcementMode?: string;
  /** --policy-audit-mode: every endpoint in PolicyAuditMode. */
  policyAuditMode?: boolean;
}

const MODES: readonly EnforcementMode[] = ['default', 'always', 'never'];
const PROTOCOLS: readonly FlowProtocol[] = ['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPv6'];

/** Loads the scenario and an engine holding it; prints issues; undefined when input is invalid. */
export async function engineForScenario(
  flags: ScenarioFlags,
  io: CommandIO,
): Promise<{ engine: PolicyEngineAPI; scenario: Scenario } | undefined> {
  const files = flags.file ?? [];
  const policies = flags.policies ?? [];
  if (files.length === 0 && policies.length === 0) {
    throw new UsageError('give a PolicyTest file or manifests with -f, and/or policies with --policies');
  }
  let mode: EnforcementMode | undefined;
  if (flags.enforcementMode !== undefined) {
    if (!(MODES as readonly string[]).includes(flags.enforcementMode)) {
      throw new UsageError(`--enforcement-mode must be one of ${MODES.join(', ')}`);
    }
    mode = flags.enforcementMode as EnforcementMode;
  }
  const scenario = await loadScenario({
    files,
    policies,
    ...(flags.test !== undefined ? { testName: flags.test } : {}),
    ...(mode !== undefined ? { enforcementMode: mode } : {}),
  });
  const factory: EngineFactory =
    flags.policyAuditMode === true
      ? (c, d) => defaultEngineFactory({ ...c, policyAuditMode: true }, d)
      : defaultEngineFactory;
  const { engine, issues } = prepareEngine(scenario, factory);
  const all: Issue[] = [...scenario.issues, ...issues];
  printIssues(all, io);
  if (all.some((i) => i.severity === 'error')) return undefined;
  return { engine, scenario };
}

export function printIssues(issues: readonly Issue[], io: CommandIO): void {
  for (const i of issues) io.stderr(`${formatIssue(i)}\n`);
}

export function parseProtocol(s: string | undefined): FlowProtocol {
  if (s === undefined) return 'TCP';
  const p = PROTOCOLS.find((x) => x.toLowerCase() === s.toLowerCase());
  if (!p) throw new UsageError(`--protocol must be one of ${PROTOCOLS.join(', ')}`);
  return p;
}

export function parsePort(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 65535)
    throw new UsageError(`--port must be 1-65535, not "${s}"`);
  return Number(s);
}

export interface L7Flags {
  httpMethod?: string;
  httpPath?: string;
  httpHost?: string;
  httpHeader?: string[];
  dnsQuery?: string;
}

export function parseL7(f: L7Flags): L7Request | undefined {
  const http =
    f.httpMethod !== undefined ||
    f.httpPath !== undefined ||
    f.httpHost !== undefined ||
    (f.httpHeader ?? []).length > 0;
  if (http && f.dnsQuery !== undefined) throw new UsageError('give HTTP flags or --dns-query, not both');
  if (f.dnsQuery !== undefined) return { kind: 'dns', query: f.dnsQuery, qtype: 'A' };
  if (!http) return undefined;
  const r: L7Request = { kind: 'http', method: f.httpMethod ?? 'GET', path: f.httpPath ?? '/' };
  if (f.httpHost !== undefined) r.host = f.httpHost;
  if (f.httpHeader && f.httpHeader.length > 0) {
    const headers: Record<string, string> = {};
    for (const h of f.httpHeader) {
      const i = h.indexOf(':');
      if (i <= 0) throw new UsageError(`--http-header wants 'Name: value', not "${h}"`);
      headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
    }
    r.headers = headers;
  }
  return r;
}

/** commander helper: repeatable options collect into a list. */
export function collect(value: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), value];
}

// Per-endpoint options through the agent's status API, as `cilium-dbg endpoint config`:
//   GET  /endpoint/config?endpoint=ns/pod                         the options in effect
//   POST /endpoint/config?endpoint=ns/pod&PolicyAuditMode=Enabled   set, then into the kernel
// The options travel in the query string (the status API takes no request bodies). One option is
// served: PolicyAuditMode (every policy drop of the endpoint becomes an AUDIT verdict and passes).
// Values as Cilium's option parser reads them: Enabled/Disabled, true/false, on/off (any case).

import { request } from 'node:http';
import { SeawallError } from '../core/errors.ts';
import { DatapathError } from '../datapath/exec.ts';
import type { PolicyEngineAPI } from '../policy/types.ts';

/** A `Name=Value` argument the endpoint config cannot take. */
export class EndpointOptionError extends SeawallError<'bad-option'> {
  override name = 'EndpointOptionError';
}

export interface EndpointConfig {
  endpoint: string;
  options: { PolicyAuditMode: 'Enabled' | 'Disabled' };
}

export interface RouteAnswer {
  status: number;
  body: string;
}

const ENABLED = new Set(['enabled', 'enable', 'true', 'on']);
const DISABLED = new Set(['disabled', 'disable', 'false', 'off']);
/** The options served, by their lower-case name (Cilium matches option names without case). */
const OPTIONS: Record<string, 'PolicyAuditMode'> = { policyauditmode: 'PolicyAuditMode' };

/** `Enabled` → true, `off` → false; undefined when it is no boolean Cilium would read. */
export function parseOptionValue(v: string): boolean | undefined {
  const l = v.toLowerCase();
  if (ENABLED.has(l)) return true;
  if (DISABLED.has(l)) return false;
  return undefined;
}

/**
 * `Name=Value` arguments → options to set; throws naming the argument that is wrong (unknown
 * option, no `=`, a value that is not a boolean).
 */
export function parseOptionArgs(args: readonly string[]): Partial<Record<'PolicyAuditMode', boolean>> {
  const out: Partial<Record<'PolicyAuditMode', boolean>> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0)
      throw new EndpointOptionError(
        'bad-option',
        `${JSON.stringify(a)}: write Option=Value (PolicyAuditMode=Enabled)`,
      );
    const name = OPTIONS[a.slice(0, eq).toLowerCase()];
    if (name === undefined) {
      throw new EndpointOptionError(
        'bad-option',
        `unknown endpoint option ${JSON.stringify(a.slice(0, eq))}: the one served is PolicyAuditMode`,
      );
    }
    const v = parseOptionValue(a.slice(eq + 1));
    if (v === undefined) {
      throw new EndpointOptionError(
        'bad-option',
        `${name}=${JSON.stringify(a.slice(eq + 1))}: the value must be Enabled or Disabled`,
      );
    }
    out[name] = v;
  }
  return out;
}

function json(status: number, v: unknown): RouteAnswer {
  return { status, body: JSON.stringify(v) };
}

/**
 * The route. `apply` brings the engine's changed MapStates into the kernel (serialized with the
 * agent's reloads); the answer waits for it, so a 200 means the kernel enforces the new mode.
 */
export async function endpointConfigRoute(
  method: string | undefined,
  url: string,
  engine: PolicyEngineAPI,
  apply: () => Promise<void>,
): Promise<RouteAnswer> {
  const u = new URL(url, 'http://agent');
  const ref = u.searchParams.get('endpoint') ?? '';
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash === ref.length - 1) return json(400, { error: 'give endpoint=NAMESPACE/POD' });
  const ns = ref.slice(0, slash);
  const name = ref.slice(slash + 1);
  if (engine.setEndpointOptions === undefined || engine.endpointOptions === undefined) {
    return json(501, { error: 'this engine has no per-endpoint options' });
  }
  if (method === 'POST') {
    const args: string[] = [];
    for (const [k, v] of u.searchParams) if (k !== 'endpoint') args.push(`${k}=${v}`);
    if (args.length === 0)
      return json(400, { error: 'nothing to set: give Option=Value (PolicyAuditMode=Enabled)' });
    let opts: Partial<Record<'PolicyAuditMode', boolean>>;
    try {
      opts = parseOptionArgs(args);
    } catch (e) {
      return json(400, { error: (e as Error).message });
    }
    const set = opts.PolicyAuditMode === undefined ? {} : { policyAuditMode: opts.PolicyAuditMode };
    if (!engine.setEndpointOptions(ns, name, set)) return json(404, { error: `no endpoint ${ref}` });
    await apply();
  } else if (method !== 'GET' && method !== undefined) {
    return json(405, { error: 'GET or POST' });
  }
  const cur = engine.endpointOptions(ns, name);
  if (cur === undefined) return json(404, { error: `no endpoint ${ref}` });
  const out: EndpointConfig = {
    endpoint: ref,
    options: { PolicyAuditMode: cur.policyAuditMode ? 'Enabled' : 'Disabled' },
  };
  return json(200, out);
}

/** Client side of `seawall endpoint config`: reads (no args) or sets the endpoint's options. */
export function endpointConfig(
  socket: string,
  endpoint: string,
  args: readonly string[],
): Promise<EndpointConfig> {
  const q = new URLSearchParams({ endpoint });
  for (const a of args) {
    const eq = a.indexOf('=');
    q.append(eq < 0 ? a : a.slice(0, eq), eq < 0 ? '' : a.slice(eq + 1));
  }
  const method = args.length > 0 ? 'POST' : 'GET';
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: socket, path: `/endpoint/config?${q}`, method, agent: false },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => {
          let v: unknown;
          try {
            v = JSON.parse(body);
          } catch (e) {
            reject(e);
            return;
          }
          if (res.statusCode !== 200) {
            reject(
              new DatapathError(
                'endpoint-config',
                (v as { error?: string }).error ?? `status ${res.statusCode}`,
              ),
            );
            return;
          }
          resolve(v as EndpointConfig);
        });
      },
    );
    req.on('error', (e) =>
      reject(new DatapathError('agent-unreachable', `no agent at ${socket}: ${e.message}`)),
    );
    req.end();
  });
}

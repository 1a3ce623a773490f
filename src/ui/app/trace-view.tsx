// Trace from the page: a source, a destination, a port (and an HTTP request or a DNS name), and
// `seawall trace`'s explanation of what the policies do with it.

import { useState } from 'preact/hooks';
import type { Info } from './main.tsx';

type PeerKind = 'pod' | 'ip' | 'entity' | 'fqdn';

function PeerInput(props: {
  label: string;
  kinds: PeerKind[];
  endpoints: string[];
  value: { kind: PeerKind; v: string };
  onChange: (v: { kind: PeerKind; v: string }) => void;
  id: string;
}) {
  const { value } = props;
  return (
    <label>
      {props.label}
      <span style={{ display: 'flex', gap: 4 }}>
        <select
          value={value.kind}
          data-testid={`${props.id}-kind`}
          onChange={(e) => props.onChange({ kind: (e.target as HTMLSelectElement).value as PeerKind, v: '' })}
        >
          {props.kinds.map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
        {value.kind === 'pod' ? (
          <select
            style={{ flex: 1 }}
            data-testid={props.id}
            value={value.v}
            onChange={(e) => props.onChange({ kind: 'pod', v: (e.target as HTMLSelectElement).value })}
          >
            <option value="">(pick a pod)</option>
            {props.endpoints.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        ) : (
          <input
            style={{ flex: 1 }}
            data-testid={props.id}
            value={value.v}
            placeholder={value.kind === 'entity' ? 'world | host | remote-node | kube-apiserver' : value.kind}
            onInput={(e) => props.onChange({ kind: value.kind, v: (e.target as HTMLInputElement).value })}
          />
        )}
      </span>
    </label>
  );
}

export function TraceView({ info }: { info: Info | undefined }) {
  const eps = info?.endpoints ?? [];
  const [from, setFrom] = useState<{ kind: PeerKind; v: string }>({ kind: 'pod', v: eps[0] ?? '' });
  const [to, setTo] = useState<{ kind: PeerKind; v: string }>({ kind: 'pod', v: eps[1] ?? '' });
  const [port, setPort] = useState('80');
  const [protocol, setProtocol] = useState('TCP');
  const [method, setMethod] = useState('');
  const [path, setPath] = useState('');
  const [dns, setDns] = useState('');
  const [out, setOut] = useState<{ text: string; verdict?: string; error?: boolean } | undefined>();
  if (info && !info.policies)
    return (
      <div class="notice">
        No policies loaded: start <code>seawall ui</code> with <code>--policies DIR</code> to trace.
      </div>
    );
  const submit = async (e: Event) => {
    e.preventDefault();
    const body: Record<string, unknown> = {
      from: { [from.kind]: from.v || eps[0] },
      to: { [to.kind]: to.v || eps[1] },
      protocol,
      port,
    };
    if (method !== '' || path !== '') body.http = { method, path };
    else if (dns !== '') body.dns = dns;
    const r = await fetch('/api/trace', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const j = (await r.json()) as { text?: string; verdict?: string; error?: string };
    setOut(
      r.ok
        ? { text: j.text ?? '', ...(j.verdict ? { verdict: j.verdict } : {}) }
        : { text: j.error ?? r.statusText, error: true },
    );
  };
  return (
    <div class="trace">
      <form onSubmit={submit} data-testid="trace-form">
        <PeerInput
          id="from"
          label="From"
          kinds={['pod', 'ip', 'entity']}
          endpoints={eps}
          value={from}
          onChange={setFrom}
        />
        <PeerInput
          id="to"
          label="To"
          kinds={['pod', 'ip', 'entity', 'fqdn']}
          endpoints={eps}
          value={to}
          onChange={setTo}
        />
        <label>
          Port and protocol
          <span style={{ display: 'flex', gap: 4 }}>
            <input
              style={{ flex: 1 }}
              data-testid="port"
              value={port}
              onInput={(e) => setPort((e.target as HTMLInputElement).value)}
            />
            <select
              value={protocol}
              data-testid="protocol"
              onChange={(e) => setProtocol((e.target as HTMLSelectElement).value)}
            >
              {['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPv6'].map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          </span>
        </label>
        <label>
          HTTP request (optional)
          <span style={{ display: 'flex', gap: 4 }}>
            <input
              style={{ width: 80 }}
              placeholder="GET"
              data-testid="http-method"
              value={method}
              onInput={(e) => setMethod((e.target as HTMLInputElement).value)}
            />
            <input
              style={{ flex: 1 }}
              placeholder="/path"
              data-testid="http-path"
              value={path}
              onInput={(e) => setPath((e.target as HTMLInputElement).value)}
            />
          </span>
        </label>
        <label>
          DNS query (optional)
          <input
            placeholder="api.example.com"
            data-testid="dns"
            value={dns}
            onInput={(e) => setDns((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit" class="primary" data-testid="trace">
          Trace
        </button>
      </form>
      <div>
        {out?.verdict && (
          <div
            class="verdict-big verdict"
            data-testid="trace-verdict"
            style={{
              color:
                out.verdict === 'DROPPED'
                  ? 'var(--drop)'
                  : out.verdict === 'AUDIT'
                    ? 'var(--audit)'
                    : 'var(--fwd)',
            }}
          >
            {out.verdict}
          </div>
        )}
        <pre data-testid="trace-out">
          {out ? out.text : 'Pick a source, a destination and a port, then Trace.'}
        </pre>
      </div>
    </div>
  );
}

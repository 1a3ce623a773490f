// The flows table: hubble-ui's filter bar and verdict filter, selectable columns, pause/resume,
// a virtualised body (only the visible rows are in the DOM, so 10,000 flows scroll smoothly), a
// detail panel with every field and the rules with file:line, and export as JSON lines.

import type { JSX } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Flow } from '../../flow/types.ts';
import {
  endpointText,
  l7Text,
  portText,
  recordPolicies,
  tcpFlagsText,
  verdictClass,
} from '../domain/fields.ts';
import { flowMatches, parseFilter, type VerdictFilter } from '../domain/filter.ts';
import { policyName, ruleText, type UIFlow } from '../domain/types.ts';
import type { FlowState } from './main.tsx';

interface Column {
  id: string;
  title: string;
  width: string;
  cell: (u: UIFlow) => string | JSX.Element;
}

/** `03:04:05.678` from an RFC 3339 time (0 to 9 fractional digits). */
function timeOfDay(t: string): string {
  const m = /T(\d\d:\d\d:\d\d)(\.\d+)?/.exec(t);
  if (!m) return t;
  return `${m[1]}${(m[2] ?? '.').padEnd(4, '0').slice(0, 4)}`;
}

const svc = (names: string[] | undefined) => (names ?? []).join(',');

const COLUMNS: Column[] = [
  // Time of day to the millisecond; the date is in the detail panel.
  { id: 'time', title: 'Time', width: '96px', cell: (u) => timeOfDay(u.flow.time) },
  {
    id: 'src-pod',
    title: 'Source',
    width: 'minmax(140px,1.2fr)',
    cell: (u) => endpointText(u.flow.source, u.flow.IP?.source),
  },
  { id: 'src-ip', title: 'Source IP', width: '110px', cell: (u) => u.flow.IP?.source ?? '' },
  {
    id: 'dst-pod',
    title: 'Destination',
    width: 'minmax(140px,1.2fr)',
    cell: (u) => endpointText(u.flow.destination, u.flow.IP?.destination),
  },
  { id: 'dst-ip', title: 'Destination IP', width: '110px', cell: (u) => u.flow.IP?.destination ?? '' },
  { id: 'dst-svc', title: 'Destination service', width: '140px', cell: (u) => svc(u.flow.destination_names) },
  { id: 'port', title: 'Port', width: '90px', cell: (u) => portText(u.flow) },
  { id: 'l7', title: 'L7', width: 'minmax(100px,1fr)', cell: (u) => l7Text(u.flow) },
  {
    id: 'verdict',
    title: 'Verdict',
    width: '90px',
    cell: (u) => <span class={`verdict ${verdictClass(u.flow.verdict)}`}>{u.flow.verdict}</span>,
  },
  { id: 'flags', title: 'TCP flags', width: '80px', cell: (u) => tcpFlagsText(u.flow) },
  {
    id: 'policy',
    title: 'Policy',
    width: 'minmax(120px,1fr)',
    cell: (u) =>
      u.rules.length > 0
        ? [...new Set(u.rules.map((r) => (r.namespace ? `${r.namespace}/${r.name}` : r.name)))].join(', ')
        : recordPolicies(u.flow)
            .map((p) => p.text.slice(p.text.indexOf(' ') + 1))
            .join(', '),
  },
];
const DEFAULT_COLUMNS = ['time', 'src-pod', 'dst-pod', 'port', 'l7', 'verdict', 'policy'];
const ROW = 28;

/** Every field of the flow, flattened to dotted paths. */
function fields(v: unknown, prefix = '', out: [string, string][] = []): [string, string][] {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) fields(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(v) && v.some((x) => x !== null && typeof x === 'object')) {
    v.forEach((x, i) => {
      fields(x, `${prefix}[${i}]`, out);
    });
  } else out.push([prefix, Array.isArray(v) ? v.join(', ') : String(v)]);
  return out;
}

function Detail({
  u,
  onClose,
  onPolicy,
}: {
  u: UIFlow;
  onClose: () => void;
  onPolicy: (ep: string) => void;
}) {
  const f: Flow = u.flow;
  const own = recordPolicies(f);
  const subject = f.traffic_direction === 'EGRESS' ? f.source : f.destination;
  return (
    <aside class="detail" data-testid="detail">
      <button type="button" class="close" onClick={onClose} aria-label="close">
        ×
      </button>
      <div>
        <span class={`verdict ${verdictClass(f.verdict)}`}>{f.verdict}</span>{' '}
        {f.drop_reason_desc ? <b data-testid="drop-reason">{f.drop_reason_desc}</b> : null}
      </div>
      <div class="mono" style={{ marginTop: 4 }}>
        {endpointText(f.source, f.IP?.source)} → {endpointText(f.destination, f.IP?.destination)}{' '}
        {portText(f)}
      </div>
      <h3>Policies</h3>
      {u.rules.length === 0 && own.length === 0 && (
        <div class="muted">
          No policy named:{' '}
          {f.verdict === 'DROPPED' ? 'default deny (no rule allows it)' : 'no rule decided it'}.
        </div>
      )}
      {u.rules.map((r) => (
        <div class={`rule ${r.effect}`} key={ruleText(r)} data-testid="rule">
          <div>
            {r.effect === 'allow' ? 'allowed' : 'denied'} at {r.direction.toLowerCase()} by{' '}
            <b>{policyName(r)}</b> {r.section}
            {r.entryIndex >= 0 ? `[${r.entryIndex}]` : ''}
          </div>
          <div class="where">
            {r.file}:{r.line}:{r.column}
          </div>
        </div>
      ))}
      {u.rules.length === 0 &&
        own.map((p) => (
          <div class={`rule ${p.field.includes('denied') ? 'deny' : 'allow'}`} key={p.field + p.text}>
            {p.field}: <b>{p.text}</b> <span class="muted">(start with --policies for file:line)</span>
          </div>
        ))}
      {subject?.namespace && subject.pod_name && (
        <button type="button" onClick={() => onPolicy(`${subject.namespace}/${subject.pod_name}`)}>
          Policy of {subject.namespace}/{subject.pod_name}
        </button>
      )}
      <h3>Every field</h3>
      <dl>
        {fields(f).map(([k, v]) => (
          <>
            <dt key={`k${k}`}>{k}</dt>
            <dd key={`v${k}`} data-field={k}>
              {v}
            </dd>
          </>
        ))}
        {u.node_name !== undefined && (
          <>
            <dt>node_name</dt>
            <dd>{u.node_name}</dd>
          </>
        )}
      </dl>
    </aside>
  );
}

export function FlowsView(props: {
  state: FlowState;
  paused: boolean;
  onPause: (p: boolean) => void;
  selected: number | undefined;
  onSelect: (seq: number | undefined) => void;
  onPolicy: (ep: string) => void;
}) {
  const { state } = props;
  const [text, setText] = useState('');
  const [verdict, setVerdict] = useState<VerdictFilter>('all');
  const [cols, setCols] = useState<string[]>(DEFAULT_COLUMNS);
  const [menu, setMenu] = useState(false);
  const [scroll, setScroll] = useState(0);
  const [height, setHeight] = useState(600);
  const body = useRef<HTMLDivElement>(null);
  const parsed = useMemo(() => parseFilter(text), [text]);
  // Newest first, as Hubble UI lists them.
  const rows = useMemo(() => {
    const filter = { entries: parsed.entries, verdict };
    const out: UIFlow[] = [];
    for (let i = state.flows.length - 1; i >= 0; i--) {
      const u = state.flows[i]!;
      if (flowMatches(u.flow, filter)) out.push(u);
    }
    return out;
  }, [state.version, parsed, verdict]);
  useEffect(() => {
    const el = body.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const shown = COLUMNS.filter((c) => cols.includes(c.id));
  const grid = shown.map((c) => c.width).join(' ');
  const first = Math.max(0, Math.floor(scroll / ROW) - 5);
  const last = Math.min(rows.length, Math.ceil((scroll + height) / ROW) + 5);
  const selected =
    props.selected !== undefined ? state.flows.find((u) => u.seq === props.selected) : undefined;
  const newest = state.flows.length > 0 ? state.flows[state.flows.length - 1]!.seq : 0;
  const exportHref = `/api/export?${new URLSearchParams({ filter: text, verdict, until: String(newest) }).toString()}`;
  return (
    <main>
      <div class="flows">
        <div class="bar">
          <input
            type="text"
            data-testid="filter"
            class={parsed.errors.length > 0 ? 'bad' : ''}
            placeholder="filter: [!][from|to|both:]kind=value  e.g. to:pod=shop/backend !from:label=reserved:host"
            value={text}
            onInput={(e) => setText((e.target as HTMLInputElement).value)}
          />
          <select
            data-testid="verdict"
            value={verdict}
            onChange={(e) => setVerdict((e.target as HTMLSelectElement).value as VerdictFilter)}
          >
            <option value="all">any verdict</option>
            <option value="forwarded">forwarded</option>
            <option value="dropped">dropped</option>
            <option value="audit">audit</option>
          </select>
          <span class="cols">
            <button type="button" data-testid="columns" onClick={() => setMenu(!menu)}>
              Columns ▾
            </button>
            {menu && (
              <div class="menu">
                {COLUMNS.map((c) => (
                  <label key={c.id}>
                    <input
                      type="checkbox"
                      data-col={c.id}
                      checked={cols.includes(c.id)}
                      onChange={() =>
                        setCols(cols.includes(c.id) ? cols.filter((x) => x !== c.id) : [...cols, c.id])
                      }
                    />
                    {c.title}
                  </label>
                ))}
              </div>
            )}
          </span>
          <button type="button" data-testid="pause" onClick={() => props.onPause(!props.paused)}>
            {props.paused ? '▶ Resume' : '❚❚ Pause'}
          </button>
          <a href={exportHref} download="seawall-flows.jsonl">
            <button type="button" class="primary" data-testid="export">
              Export JSON lines
            </button>
          </a>
          {parsed.errors.map((e) => (
            <span class="err" key={e.offset}>
              {e.entry}: {e.message}
            </span>
          ))}
          <span class="count" data-testid="count">
            {rows.length} of {state.flows.length} flows
          </span>
        </div>
        <div class="thead" style={{ gridTemplateColumns: grid }}>
          {shown.map((c) => (
            <span key={c.id}>{c.title}</span>
          ))}
        </div>
        <div
          class="tbody"
          ref={body}
          data-testid="rows"
          onScroll={(e) => setScroll((e.target as HTMLDivElement).scrollTop)}
        >
          <div style={{ height: rows.length * ROW }} />
          {rows.slice(first, last).map((u, i) => (
            // biome-ignore lint/a11y/useSemanticElements: a virtualised grid row, positioned absolutely; a <tr> cannot be
            <div
              key={u.seq}
              class={`row${u.seq === props.selected ? ' sel' : ''}`}
              data-seq={u.seq}
              data-uuid={u.flow.uuid}
              style={{ top: (first + i) * ROW, gridTemplateColumns: grid }}
              role="row"
              tabIndex={0}
              onClick={() => props.onSelect(u.seq)}
              onKeyDown={(e) => e.key === 'Enter' && props.onSelect(u.seq)}
            >
              {shown.map((c) => (
                <span key={c.id} class={c.id === 'verdict' ? 'cell' : 'cell mono'} data-col={c.id}>
                  {c.cell(u)}
                </span>
              ))}
            </div>
          ))}
        </div>
      </div>
      {selected && (
        <Detail u={selected} onClose={() => props.onSelect(undefined)} onPolicy={props.onPolicy} />
      )}
    </main>
  );
}

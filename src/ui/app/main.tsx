// The SPA's shell: tabs (map, flows, policy, trace), the flow stream (server-sent events, batched
// into one render per animation frame), pause/resume, and the shared selection.

import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Flow } from '../../flow/types.ts';
import type { RuleHit, UIFlow } from '../domain/types.ts';
import { FlowsView } from './flows-view.tsx';
import { MapView } from './map-view.tsx';
import { PolicyViewPage } from './policy-view.tsx';
import { TraceView } from './trace-view.tsx';

export interface Info {
  source: string;
  status: string;
  policies: boolean;
  endpoints: string[];
}

export type Tab = 'map' | 'flows' | 'policy' | 'trace';

/** The flows the page holds: one growing array, replaced (not copied) per batch. */
export interface FlowState {
  flows: UIFlow[];
  version: number;
}

const MAX_FLOWS = 20_000;

function useFlowStream(paused: boolean) {
  const [state, setState] = useState<FlowState>({ flows: [], version: 0 });
  const [status, setStatus] = useState('connecting');
  const [pending, setPending] = useState(0);
  const buf = useRef<UIFlow[]>([]);
  const bySeq = useRef(new Map<number, UIFlow>());
  const all = useRef<UIFlow[]>([]);
  const pausedRef = useRef(paused);
  const frame = useRef(0);
  const synced = useRef(false);

  const flush = () => {
    frame.current = 0;
    if (pausedRef.current && synced.current) {
      setPending(buf.current.length);
      return;
    }
    if (buf.current.length === 0) return;
    const next = all.current.concat(buf.current);
    buf.current = [];
    const keep = next.length > MAX_FLOWS ? next.slice(next.length - MAX_FLOWS) : next;
    if (keep.length !== next.length)
      for (const u of next.slice(0, next.length - MAX_FLOWS)) bySeq.current.delete(u.seq);
    all.current = keep;
    setPending(0);
    setState((s) => ({ flows: keep, version: s.version + 1 }));
  };
  const schedule = () => {
    if (frame.current === 0) frame.current = requestAnimationFrame(flush);
  };

  useEffect(() => {
    pausedRef.current = paused;
    if (!paused) schedule();
  }, [paused]);

  useEffect(() => {
    const es = new EventSource('/api/flows');
    es.addEventListener('flow', (ev) => {
      const e = ev as MessageEvent<string>;
      const line = JSON.parse(e.data) as { flow: Flow; node_name?: string; time: string };
      const u: UIFlow = { seq: Number(e.lastEventId), flow: line.flow, time: line.time, rules: [] };
      if (line.node_name !== undefined) u.node_name = line.node_name;
      bySeq.current.set(u.seq, u);
      buf.current.push(u);
      schedule();
    });
    es.addEventListener('window', (ev) => {
      const rows = JSON.parse((ev as MessageEvent<string>).data) as {
        seq: number;
        line: { flow: Flow; node_name?: string; time: string };
        rules: RuleHit[];
      }[];
      for (const r of rows) {
        const u: UIFlow = { seq: r.seq, flow: r.line.flow, time: r.line.time, rules: r.rules };
        if (r.line.node_name !== undefined) u.node_name = r.line.node_name;
        bySeq.current.set(u.seq, u);
        buf.current.push(u);
      }
      schedule();
    });
    es.addEventListener('rules', (ev) => {
      const r = JSON.parse((ev as MessageEvent<string>).data) as { seq: number; rules: RuleHit[] };
      const u = bySeq.current.get(r.seq);
      if (u) u.rules = r.rules;
    });
    es.addEventListener('status', (ev) => setStatus(JSON.parse((ev as MessageEvent<string>).data) as string));
    es.addEventListener('synced', () => {
      synced.current = true;
      schedule();
    });
    es.onerror = () => setStatus('disconnected; retrying');
    return () => es.close();
  }, []);
  return { state, status, pending };
}

function App() {
  const [tab, setTab] = useState<Tab>((location.hash.slice(1) as Tab) || 'map');
  const [paused, setPaused] = useState(false);
  const [info, setInfo] = useState<Info | undefined>();
  const [selected, setSelected] = useState<number | undefined>();
  const [policyEndpoint, setPolicyEndpoint] = useState<string>('');
  const { state, status, pending } = useFlowStream(paused);

  useEffect(() => {
    fetch('/api/info')
      .then((r) => r.json() as Promise<Info>)
      .then(setInfo)
      .catch(() => {});
  }, []);
  useEffect(() => {
    if (location.hash.slice(1) !== tab) location.hash = tab;
  }, [tab]);
  useEffect(() => {
    const onHash = () => {
      const t = location.hash.slice(1) as Tab;
      if (['map', 'flows', 'policy', 'trace'].includes(t)) setTab(t);
    };
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  const showFlow = (seq: number) => {
    setSelected(seq);
    setTab('flows');
  };
  const showPolicy = (endpoint: string) => {
    setPolicyEndpoint(endpoint);
    setTab('policy');
  };
  const tabs: [Tab, string][] = [
    ['map', 'Service map'],
    ['flows', 'Flows'],
    ['policy', 'Policy'],
    ['trace', 'Trace'],
  ];
  return (
    <>
      <header class="top">
        <div class="brand">
          sea<span>wall</span>
        </div>
        <nav>
          {tabs.map(([t, label]) => (
            <button
              type="button"
              key={t}
              class={tab === t ? 'tab on' : 'tab'}
              data-tab={t}
              onClick={() => setTab(t)}
            >
              {label}
            </button>
          ))}
        </nav>
        <div class="src" data-testid="source">
          <span class={`live${paused ? ' paused' : ''}`} />
          {info?.source ?? ''} · {status} · {state.flows.length} flows
          {pending > 0 ? ` (+${pending} paused)` : ''}
        </div>
      </header>
      {tab === 'map' && <MapView state={state} onPolicy={showPolicy} />}
      {tab === 'flows' && (
        <FlowsView
          state={state}
          paused={paused}
          onPause={setPaused}
          selected={selected}
          onSelect={setSelected}
          onPolicy={showPolicy}
        />
      )}
      {tab === 'policy' && (
        <PolicyViewPage
          info={info}
          endpoint={policyEndpoint}
          onEndpoint={setPolicyEndpoint}
          version={state.version}
          onFlow={showFlow}
          flows={state.flows}
        />
      )}
      {tab === 'trace' && <TraceView info={info} />}
    </>
  );
}

render(<App />, document.getElementById('root')!);

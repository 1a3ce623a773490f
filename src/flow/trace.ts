// The trace record Cilium's datapath emits when it hands a connection to an L7 proxy: after the
// policy verdict (REDIRECTED, with its L3/L4 match type), a trace event with observation point
// TO_PROXY (monitor TraceToProxy = 1), verdict FORWARDED, no policy fields. `hubble observe`
// shows the pair as `policy-verdict:L3-L4 INGRESS ...` then `to-proxy FORWARDED`.

import { type Flow, MESSAGE_TYPE } from './types.ts';

/** Monitor trace observation point number of TO_PROXY (pkg/monitor/api TraceToProxy). */
export const TRACE_TO_PROXY = 1;

/** The to-proxy trace of a REDIRECTED policy-verdict record (same packet, same time). */
export function toProxyTrace(verdictRecord: Flow, uuid: string): Flow {
  const v = verdictRecord;
  const flow = { time: v.time, uuid, verdict: 'FORWARDED' } as Flow;
  if (v.ethernet !== undefined) flow.ethernet = v.ethernet;
  if (v.IP !== undefined) flow.IP = v.IP;
  if (v.l4 !== undefined) flow.l4 = v.l4;
  if (v.source !== undefined) flow.source = v.source;
  if (v.destination !== undefined) flow.destination = v.destination;
  flow.Type = 'L3_L4';
  if (v.node_name !== undefined) flow.node_name = v.node_name;
  flow.event_type = { type: MESSAGE_TYPE.TRACE, sub_type: TRACE_TO_PROXY };
  if (v.traffic_direction !== undefined) flow.traffic_direction = v.traffic_direction;
  flow.trace_observation_point = 'TO_PROXY';
  flow.is_reply = false;
  if (v.Summary !== undefined) flow.Summary = v.Summary;
  return flow;
}

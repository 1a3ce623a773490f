// Node flags the DNS proxy process runs with: the agent's spawn (agent/proxy.ts) and the bench
// (bench/dns-proxy.bench.ts) both use these, so the bench measures what the agent runs.
//
// No memory reducer, as for the HTTP proxy (http/node-flags.ts, where --trace-gc showed it): some
// seconds after a busy proxy goes quiet, V8's memory reducer runs compacting collections that
// pause the main thread for tens of ms, and every query that comes then waits. Not traced for this
// proxy; what was measured: with the proxy and its record reader pinned to one core, the bench's
// 1,000 q/s run right after its throughput rounds gave an added p99 of 9.1 ms without the flag (one
// run), 1.7 and 2.7 ms with it (two runs). The young generation is left to V8.
export const DNS_PROXY_NODE_FLAGS: readonly string[] = ['--no-memory-reducer'];

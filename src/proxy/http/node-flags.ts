// Node flags the HTTP proxy process runs with: the agent's spawn (agent/proxy.ts) and the bench
// (bench/http-proxy.bench.ts) both use these, so the bench measures what the agent runs.
//
// A young generation fixed at 16 MiB a semi-space (V8's default maximum): left to itself V8 shrinks
// it to about 1 MiB while the proxy idles, and the proxy then scavenges every ~65 requests
// (23 scavenges per 1,500 paced requests measured, against 3 with these flags), each a 1-3 ms
// pause in the request path: a good part of the p99. The cost is the reserved young
// generation (up to 48 MiB of RSS). 32 MiB was measured too (same run, paced at 15,000 req/s):
// half the scavenges, each longer, about the same time paused and the same p99; not taken.
//
// No memory reducer: some seconds after a busy proxy goes quiet, V8's memory reducer runs full
// compacting collections ("Mark-Compact (reduce)", --trace-gc) to give memory back: 30-70 ms
// main-thread pauses measured on the bench machine (its 11 MB heap), and about 45 ms of CPU
// with the marking threads. A request that comes then waits for it, and on a shared core so do
// the neighbours (the bench's slow rounds). Without it the heap keeps its working size (about
// 20 MB more committed while idle); collections still run as the proxy allocates.
export const HTTP_PROXY_NODE_FLAGS: readonly string[] = [
  '--min-semi-space-size=16',
  '--max-semi-space-size=16',
  '--no-memory-reducer',
];

// Node flags the agent process runs with: bin/seawall.js re-executes `seawall agent` with them,
// and bench/hubble.bench.ts runs the flow pipeline under them, so the bench measures what runs.
//
// A young generation of up to 64 MiB a semi-space (Node 20's default stops at 16): a flow record
// stays referenced while it is in the ring (4,095 entries) and in the followers' batches, longer
// than a 16 MiB young generation lasts at tens of thousands of records a second, so records were
// promoted and then collected by the old generation's mark-compact. V8 grows the semi-space only
// under allocation pressure: an idle agent keeps its small one.
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

// Runs inside the test's node namespace (ip netns exec): a server on SERVER_IP:SERVER_PORT (the
// connection's real destination) and the HTTP proxy on PROXY_PORT with the default original-
// destination resolver (the SO_ORIGINAL_DST addon). Prints one JSON line per event on stdout:
// {"ready":…}, {"conn":…} for each context lookup, {"refused":…}, {"flow":…}.

import http from 'node:http';
import { HTTPProxy } from '../../../../src/proxy/http/proxy.ts';

const serverIP = process.env.SERVER_IP ?? '';
const serverPort = Number(process.env.SERVER_PORT);
const proxyPort = Number(process.env.PROXY_PORT);
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
const pos = { file: 'live', line: 1, column: 1 };

const server = http.createServer((req, res) => {
  res.end(`server saw ${req.method} ${req.url}\n`);
});
server.listen(serverPort, serverIP, async () => {
  const proxy = new HTTPProxy({
    lookup: (c) => {
      out({ conn: c });
      // Only connections redirected from the server's port get a context: fail closed otherwise.
      if (c.originalDst.port !== serverPort) return undefined;
      return {
        sourceIdentity: 1001,
        source: { identity: 1001 },
        destination: { identity: 1002 },
        originalDst: c.originalDst,
        direction: 'INGRESS',
        ruleSets: [{ direction: 'INGRESS', rules: [{ pos, method: 'GET', path: '/public/.*' }] }],
      };
    },
    onRefused: (r) => out({ refused: r }),
    onFlow: (f) => out({ flow: f }),
    nodeName: 'live',
  });
  if (proxy.unavailableReason !== undefined) out({ unavailable: proxy.unavailableReason });
  await proxy.listen(proxyPort, '0.0.0.0');
  out({ ready: true });
});
process.on('SIGTERM', () => process.exit(0));

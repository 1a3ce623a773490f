// The live replay's gRPC peers, run with `ip netns exec NS node grpc-peer.cjs ...` (plain JS, so
// a pod's server or client starts without tsx). Services are built by protobufjs reflection
// from the names the PolicyTest flows use; every method takes and returns `seawall.probe.Probe`.
//
//   serve PORT=pkg.Svc/Method:unary,pkg.Svc/Chat:bidi ...   one grpc-js server per port; a line
//       {"listening":PORT} each, then {"port","path"} per call that reached a handler
//   call HOST PORT pkg.Svc/Method unary|bidi TIMEOUT_MS      one call; prints
//       {"code","details","messages"} (a bidi call sends three messages and expects three echoes)
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROBE = 'seawall.probe.Probe';

/** The protobufjs JSON namespace holding `services` (path → 'unary' | 'bidi'). */
function namespaceOf(methods) {
  const root = {
    nested: {
      seawall: { nested: { probe: { nested: { Probe: { fields: { text: { type: 'string', id: 1 } } } } } } },
    },
  };
  for (const [path, kind] of methods) {
    const [service, method] = path.split('/');
    const parts = service.split('.');
    let ns = root;
    for (const p of parts.slice(0, -1)) {
      ns.nested ??= {};
      ns.nested[p] ??= { nested: {} };
      ns = ns.nested[p];
    }
    ns.nested ??= {};
    const last = parts[parts.length - 1];
    ns.nested[last] ??= { methods: {} };
    const stream = kind === 'bidi';
    ns.nested[last].methods[method] = {
      requestType: `.${PROBE}`,
      responseType: `.${PROBE}`,
      ...(stream ? { requestStream: true, responseStream: true } : {}),
    };
  }
  return root;
}

function serviceOf(pkg, service) {
  let o = pkg;
  for (const p of service.split('.')) o = o[p];
  return o;
}

function parseMethods(list) {
  return list
    .split(',')
    .filter((s) => s !== '')
    .map((s) => {
      const i = s.lastIndexOf(':');
      return [s.slice(0, i), s.slice(i + 1)];
    });
}

function serve(specs) {
  const servers = [];
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const port = Number(spec.slice(0, eq));
    const methods = parseMethods(spec.slice(eq + 1));
    const pkg = grpc.loadPackageDefinition(protoLoader.fromJSON(namespaceOf(methods), { keepCase: true }));
    const server = new grpc.Server();
    const byService = new Map();
    for (const [path, kind] of methods) {
      const [service, method] = path.split('/');
      const impl = byService.get(service) ?? {};
      const seen = () => process.stdout.write(`${JSON.stringify({ port, path: `/${path}` })}\n`);
      impl[method] =
        kind === 'bidi'
          ? (call) => {
              seen();
              call.on('data', (m) => call.write({ text: `echo ${m.text}` }));
              call.on('end', () => call.end());
              call.on('error', () => {});
            }
          : (call, cb) => {
              seen();
              cb(null, { text: `ok /${path} ${call.request.text}` });
            };
      byService.set(service, impl);
    }
    for (const [service, impl] of byService) server.addService(serviceOf(pkg, service).service, impl);
    server.bindAsync(`0.0.0.0:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) {
        process.stderr.write(`grpc server :${port}: ${err.message}\n`);
        process.exit(1);
      }
      process.stdout.write(`${JSON.stringify({ listening: port })}\n`);
    });
    servers.push(server);
  }
  process.on('SIGTERM', () => {
    for (const s of servers) s.forceShutdown();
    process.exit(0);
  });
}

function call(host, port, path, kind, timeoutMs) {
  const pkg = grpc.loadPackageDefinition(
    protoLoader.fromJSON(namespaceOf([[path, kind]]), { keepCase: true }),
  );
  const [service, method] = path.split('/');
  const Client = serviceOf(pkg, service);
  const client = new Client(`${host}:${port}`, grpc.credentials.createInsecure());
  const deadline = new Date(Date.now() + timeoutMs);
  const done = (code, details, messages) => {
    process.stdout.write(`${JSON.stringify({ code, details, messages })}\n`);
    client.close();
    process.exit(0);
  };
  if (kind === 'bidi') {
    const messages = [];
    const c = client[method]({ deadline });
    c.on('data', (m) => messages.push(m.text));
    c.on('error', (e) => done(e.code, e.details, messages));
    c.on('status', (s) => {
      if (s.code === 0) done(0, s.details, messages);
    });
    for (const t of ['a', 'b', 'c']) c.write({ text: t });
    c.end();
    return;
  }
  client[method]({ text: 'probe' }, { deadline }, (e, v) => {
    if (e) done(e.code, e.details, []);
    else done(0, '', [v.text]);
  });
}

const [op, ...args] = process.argv.slice(2);
if (op === 'serve') serve(args);
else if (op === 'call') call(args[0], Number(args[1]), args[2], args[3], Number(args[4]));
else {
  process.stderr.write('usage: grpc-peer.cjs serve PORT=METHODS... | call HOST PORT PATH KIND TIMEOUT_MS\n');
  process.exit(2);
}

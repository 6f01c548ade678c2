// Unary calls through a proxyless gRPC xDS channel of grpc-js, counted by
// the upstream that answered.
//
// Usage: node split.js TARGET PLAIN HEADER
//
// Opens TARGET (an `xds:///` target; the control plane is the one the file
// named by GRPC_XDS_BOOTSTRAP names) with @grpc/grpc-js and
// @grpc/grpc-js-xds, sends PLAIN calls with no metadata and then HEADER
// calls carrying `end-user: jason`, one after the other, and prints one
// JSON object to stdout: {"plain": {NAME: COUNT, ...}, "header": {...}}
// where NAME is the body of the upstream's answer (its version). If a call
// fails it adds "error" (which call, the status code and details) and
// exits with status 1.
//
// The calls go through a generic client with identity (de)serializers:
// the request is empty and the answer is read as UTF-8, so no .proto is
// needed. Calls are not waitForReady: the first one waits while the
// channel fetches its xDS configuration, but a channel in transient
// failure fails a call at once with gRPC's reason. The first call may take
// 20 s, each later one 5 s.
//
// `mesh-control/tests/grpc_js.rs` runs it against `mesh-control serve`.

'use strict';

const grpc = require('@grpc/grpc-js');
const grpcJsXds = require('@grpc/grpc-js-xds');

const FIRST_WAIT_MS = 20000;
const CALL_WAIT_MS = 5000;
const METHOD = '/mesh.test.Version/Name';

const identity = (buffer) => buffer;

function call(client, metadata, waitMs) {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      METHOD,
      identity,
      identity,
      Buffer.alloc(0),
      metadata,
      { deadline: Date.now() + waitMs },
      (error, answer) => (error ? reject(error) : resolve(answer.toString('utf8')))
    );
  });
}

async function main() {
  const [target, plain, header] = process.argv.slice(2);
  grpcJsXds.register();
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const tally = { plain: {}, header: {} };
  const runs = [
    ['plain', Number(plain), () => new grpc.Metadata()],
    [
      'header',
      Number(header),
      () => {
        const metadata = new grpc.Metadata();
        metadata.set('end-user', 'jason');
        return metadata;
      },
    ],
  ];
  let sent = 0;
  for (const [kind, n, metadata] of runs) {
    for (let i = 0; i < n; i++) {
      try {
        const name = await call(client, metadata(), sent === 0 ? FIRST_WAIT_MS : CALL_WAIT_MS);
        tally[kind][name] = (tally[kind][name] || 0) + 1;
      } catch (e) {
        const code = grpc.status[e.code] || e.code;
        tally.error = `${kind} call ${i}: ${code}: ${e.details}`;
        break;
      }
      sent++;
    }
    if (tally.error) {
      break;
    }
  }
  client.close();
  process.stdout.write(JSON.stringify(tally) + '\n');
  return tally.error ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stdout.write(JSON.stringify({ error: String(e && e.stack ? e.stack : e) }) + '\n');
    process.exit(1);
  }
);

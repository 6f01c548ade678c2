"""Unary calls through a proxyless gRPC xDS channel of grpcio, counted by
the upstream that answered.

Usage: split.py TARGET PLAIN HEADER

Opens TARGET (an `xds:///` target; the control plane is the one the file
named by GRPC_XDS_BOOTSTRAP names), sends PLAIN calls with no metadata and
then HEADER calls carrying `end-user: jason`, one after the other, and
prints one JSON object: {"plain": {NAME: COUNT, ...}, "header": {...}}
where NAME is the body of the upstream's answer (its version). If a call
fails it adds "error" (which call, the status code and details) and exits
with status 1.

The method is called without serializers, so the request is empty bytes
and the answer is read as UTF-8: no .proto is needed. Calls are not
wait_for_ready: the first one waits while the channel fetches its xDS
configuration, but a channel in transient failure fails a call at once
with gRPC's reason. The first call may take 20 s, each later one 5 s.

`mesh-control/tests/grpcio.rs` runs it against `mesh-control serve`, as
`tests/grpc-js/split.js` is run for grpc-js.
"""

import json
import sys

import grpc

FIRST_WAIT_S = 20
CALL_WAIT_S = 5
METHOD = "/mesh.test.Version/Name"


def main():
    target, plain, header = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    tally = {"plain": {}, "header": {}}
    sent = 0
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD)
        runs = [("plain", plain, ()), ("header", header, (("end-user", "jason"),))]
        for kind, n, metadata in runs:
            for i in range(n):
                wait = FIRST_WAIT_S if sent == 0 else CALL_WAIT_S
                try:
                    answer = call(b"", timeout=wait, metadata=metadata)
                except grpc.RpcError as e:
                    tally["error"] = "%s call %d: %s: %s" % (kind, i, e.code().name, e.details())
                    print(json.dumps(tally), flush=True)
                    return 1
                name = answer.decode("utf-8")
                tally[kind][name] = tally[kind].get(name, 0) + 1
                sent += 1
    print(json.dumps(tally), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

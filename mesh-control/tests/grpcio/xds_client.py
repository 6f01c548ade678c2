"""Health checks from a proxyless gRPC client with xDS credentials (gRFC
A29): the control plane named by GRPC_XDS_BOOTSTRAP says whether each
cluster takes mutual TLS, and the bootstrap's certificate provider
`default` supplies the certificates; clusters without TLS fall back to
plain text.

Usage: xds_client.py TARGET N [fail-fast]

Sends N checks to TARGET (an `xds:///` target), one after the other, and
prints one JSON object: {"ok": N} or, at the first failure, the count so
far and "error" with gRPC's status code and details (exit status 1). The
first check waits for the channel to be ready unless `fail-fast` is
given, when a channel that cannot connect fails it at once.
"""

import json
import sys

import grpc
import grpc.experimental
from grpc_health.v1 import health_pb2, health_pb2_grpc

FIRST_WAIT_S = 20
CHECK_WAIT_S = 5


def main():
    target, n = sys.argv[1], int(sys.argv[2])
    wait_for_ready = sys.argv[3:] != ["fail-fast"]
    credentials = grpc.xds_channel_credentials(
        grpc.experimental.insecure_channel_credentials()
    )
    ok = 0
    with grpc.secure_channel(target, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="")
        for i in range(n):
            wait = FIRST_WAIT_S if i == 0 else CHECK_WAIT_S
            try:
                stub.Check(request, timeout=wait, wait_for_ready=wait_for_ready and i == 0)
            except grpc.RpcError as e:
                error = f"{e.code().name}: {e.details()}"
                print(json.dumps({"ok": ok, "error": error}), flush=True)
                return 1
            ok += 1
    print(json.dumps({"ok": ok}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

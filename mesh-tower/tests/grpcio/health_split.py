"""Health checks through a proxyless gRPC xDS channel, counted by answer.

Usage: health_split.py TARGET SERVICE N

Opens TARGET (an `xds:///` target; the control plane is the one the file
named by GRPC_XDS_BOOTSTRAP names) with grpcio, sends N health checks for
SERVICE one after the other, and prints one JSON object to stdout: the
number of answers per serving status, e.g. {"SERVING": 80,
"NOT_SERVING": 320}, plus "error" (the status code and details) and exit
status 1 if a check fails.

Checks are not `wait_for_ready`: one sent while the channel is still
fetching its xDS configuration waits for it, but a channel in transient
failure fails the check at once with gRPC's reason, e.g. "no children in
weighted_target policy (EDS resource ...: contains no localities)". The
first check may take 20 s, each later one 5 s.

`mesh-tower/tests/xds_grpcio.rs` runs it to compare how grpcio and the
mesh interpret the same xDS configuration, and
`mesh-tower/tests/xds_grpcio_control.rs` to check that grpcio accepts what
the mesh's own control plane serves.
"""

import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

FIRST_WAIT_S = 20
CHECK_WAIT_S = 5


def main():
    target, service, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    counts = {}
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        for i in range(n):
            try:
                response = stub.Check(
                    request,
                    timeout=FIRST_WAIT_S if i == 0 else CHECK_WAIT_S,
                    wait_for_ready=False,
                )
            except grpc.RpcError as e:
                counts["error"] = "check %d: %s: %s" % (i, e.code().name, e.details())
                print(json.dumps(counts), flush=True)
                return 1
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            counts[status] = counts.get(status, 0) + 1
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

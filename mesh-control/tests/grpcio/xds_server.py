"""A proxyless gRPC server configured over xDS (gRFC A36): grpcio's
xDS-enabled server, serving the gRPC health service on 127.0.0.1 at the
port given as its argument (an xDS server cannot take port 0), with xDS
server credentials that fall back to plain text.

It takes its listener (RBAC filters, mutual TLS) from the control plane
named by GRPC_XDS_BOOTSTRAP, prints its port on stdout once started, and
serves until killed.
"""

import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), xds=True)
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    credentials = grpc.xds_server_credentials(grpc.insecure_server_credentials())
    port = int(sys.argv[1])
    # An xDS-enabled server binds once its listener arrives: the call
    # answers -1, not the port.
    server.add_secure_port(f"127.0.0.1:{port}", credentials)
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    sys.exit(main())

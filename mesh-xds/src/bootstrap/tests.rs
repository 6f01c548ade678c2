use super::*;

/// A bootstrap as Istio's agent writes it for a proxyless gRPC pod.
const ISTIO_AGENT: &str = r#"{
  "xds_servers": [
    {
      "server_uri": "unix:///etc/istio/proxy/XDS",
      "channel_creds": [{"type": "insecure"}],
      "server_features": ["xds_v3"]
    }
  ],
  "node": {
    "id": "sidecar~10.244.0.12~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local",
    "metadata": {
      "GENERATOR": "grpc",
      "INSTANCE_IPS": "10.244.0.12",
      "ISTIO_VERSION": "1.24.0",
      "LABELS": {"app": "productpage", "version": "v1"},
      "NAMESPACE": "default",
      "PILOT_SAN": ["istiod.istio-system.svc"]
    },
    "locality": {},
    "UserAgentVersionType": null
  },
  "certificate_providers": {
    "default": {
      "plugin_name": "file_watcher",
      "config": {
        "certificate_file": "/var/lib/istio/data/cert-chain.pem",
        "private_key_file": "/var/lib/istio/data/key.pem",
        "ca_certificate_file": "/var/lib/istio/data/root-cert.pem",
        "refresh_interval": "900s"
      }
    }
  },
  "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s"
}"#;

#[test]
fn istio_agent_bootstrap_loads_unchanged() {
    let b = Bootstrap::from_json("grpc-bootstrap.json", ISTIO_AGENT).unwrap();
    let server = &b.xds_servers[0];
    assert_eq!(server.uri, ServerUri::Unix("/etc/istio/proxy/XDS".into()));
    assert_eq!(server.channel_creds, ChannelCreds::Insecure);
    assert!(server.supports("xds_v3"));
    assert!(b.node.id.starts_with("sidecar~10.244.0.12~productpage"));
    assert_eq!(b.node.metadata["GENERATOR"], "grpc");
    assert_eq!(b.node.locality, Locality::default());
    let provider = &b.certificate_providers["default"].file_watcher;
    assert_eq!(
        provider.ca_certificate_file.as_deref(),
        Some(Path::new("/var/lib/istio/data/root-cert.pem"))
    );
    assert_eq!(provider.refresh_interval, Duration::from_secs(900));
    assert_eq!(
        b.server_listener_resource_name_template.as_deref(),
        Some("xds.istio.io/grpc/lds/inbound/%s")
    );
    assert_eq!(
        b.client_listener_name("reviews.default.svc.cluster.local:9080"),
        "reviews.default.svc.cluster.local:9080"
    );
}

#[test]
fn server_uris_as_grpc_writes_them() {
    let uri = |s: &str| parse::server_uri(s);
    assert_eq!(
        uri("istiod.istio-system.svc:15010"),
        Some(ServerUri::Tcp("istiod.istio-system.svc:15010".into()))
    );
    assert_eq!(
        uri("dns:///127.0.0.1:15010"),
        Some(ServerUri::Tcp("127.0.0.1:15010".into()))
    );
    assert_eq!(
        uri("unix:/tmp/xds.sock"),
        Some(ServerUri::Unix("/tmp/xds.sock".into()))
    );
    assert_eq!(uri("unix://"), None);
    assert_eq!(uri(""), None);
    assert_eq!(uri("http://x/y"), None);
}

#[test]
fn the_first_supported_credentials_win() {
    let json = r#"{"xds_servers": [{"server_uri": "localhost:15012",
        "channel_creds": [{"type": "google_default"}, {"type": "tls", "config": {
            "ca_certificate_file": "/etc/certs/root.pem"}}, {"type": "insecure"}]}]}"#;
    let b = Bootstrap::from_json("b.json", json).unwrap();
    match &b.xds_servers[0].channel_creds {
        ChannelCreds::Tls(w) => {
            assert_eq!(
                w.ca_certificate_file.as_deref(),
                Some(Path::new("/etc/certs/root.pem"))
            );
            assert_eq!(w.certificate_file, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.node, Node::default());
}

#[test]
fn errors_name_the_source_the_key_and_what_was_expected() {
    let err = |json: &str| {
        Bootstrap::from_json("bootstrap.json", json)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("{}"),
        "bootstrap.json: xds_servers: expected a list of at least one xDS server"
    );
    assert_eq!(
        err(r#"{"xds_servers": [{"server_uri": 7}]}"#),
        "bootstrap.json: xds_servers[0].server_uri: expected a string"
    );
    assert_eq!(
        err(r#"{"xds_servers": [{"server_uri": "a b", "channel_creds": []}]}"#),
        "bootstrap.json: xds_servers[0].server_uri: expected a gRPC target such as host:port, dns:///host:port or unix:///path"
    );
    assert_eq!(
        err(
            r#"{"xds_servers": [{"server_uri": "x:1", "channel_creds": [{"type": "google_default"}]}]}"#
        ),
        "bootstrap.json: xds_servers[0].channel_creds: expected a list naming a supported channel credential type (insecure, tls); found [\"google_default\"]"
    );
    let ok_server =
        r#""xds_servers": [{"server_uri": "x:1", "channel_creds": [{"type": "insecure"}]}]"#;
    assert_eq!(
        err(&format!(
            r#"{{{ok_server}, "certificate_providers": {{"default": {{"plugin_name": "file_watcher", "config": {{"refresh_interval": "soon"}}}}}}}}"#
        )),
        "bootstrap.json: certificate_providers.default.config.refresh_interval: expected a duration in seconds such as \"600s\" or \"0.5s\""
    );
    assert_eq!(
        err(&format!(
            r#"{{{ok_server}, "certificate_providers": {{"default": {{"plugin_name": "file_watcher", "config": {{"private_key_file": "/k.pem"}}}}}}}}"#
        )),
        "bootstrap.json: certificate_providers.default.config: expected certificate_file and private_key_file together, or neither"
    );
    assert_eq!(
        err(&format!(r#"{{{ok_server}, "node": {{"metadata": []}}}}"#)),
        "bootstrap.json: node.metadata: expected an object"
    );
    assert_eq!(
        err("{\n  \"xds_servers\": [\n  oops"),
        "bootstrap.json: not JSON at line 3, column 3: expected value at line 3 column 3"
    );
}

#[test]
fn the_file_variable_wins_over_the_inline_one() {
    let dir = std::env::temp_dir().join(format!("mesh-xds-bootstrap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bootstrap.json");
    std::fs::write(&file, ISTIO_AGENT).unwrap();
    let inline = r#"{"xds_servers": [{"server_uri": "127.0.0.1:15010", "channel_creds": [{"type": "insecure"}]}]}"#;
    let from_file = Bootstrap::from_vars(Some(file.clone().into()), Some(inline.into())).unwrap();
    assert_eq!(
        from_file.xds_servers[0].uri,
        ServerUri::Unix("/etc/istio/proxy/XDS".into())
    );
    let from_inline = Bootstrap::from_vars(Some("".into()), Some(inline.into())).unwrap();
    assert_eq!(
        from_inline.xds_servers[0].uri,
        ServerUri::Tcp("127.0.0.1:15010".into())
    );
    assert!(matches!(
        Bootstrap::from_vars(None, None),
        Err(BootstrapError::Unset)
    ));
    let missing = Bootstrap::from_vars(Some(dir.join("nope.json").into()), None).unwrap_err();
    assert!(missing.to_string().contains("nope.json"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn built_in_code() {
    let b = Bootstrap::insecure("127.0.0.1:15010", "mesh~test").unwrap();
    assert_eq!(
        b.xds_servers[0].uri,
        ServerUri::Tcp("127.0.0.1:15010".into())
    );
    assert_eq!(b.node.id, "mesh~test");
    assert!(Bootstrap::insecure("", "x").is_err());
}

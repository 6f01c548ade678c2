use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use mesh_core::route::StringMatch;
use mesh_core::security::{
    InboundPolicy, MtlsMode, Permission, Principal, Rbac, RbacAction, RbacPolicy, ValueMatch,
};
use tower::{Layer, ServiceExt};

use super::*;

const SLEEP: &str = "spiffe://cluster.local/ns/default/sa/sleep";

/// Answers `200` with the path it got.
fn service() -> impl Service<
    Request<()>,
    Response = Response<Either<String, ResponseBody>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    let echo = tower::service_fn(|req: Request<()>| async move {
        Ok::<_, Infallible>(Response::new(req.uri().path().to_owned()))
    });
    AuthorizeLayer::new(policy()).layer(echo)
}

fn policy() -> InboundPolicy {
    let deny_admin = RbacPolicy {
        permissions: vec![Permission::UrlPath(ValueMatch {
            kind: StringMatch::Prefix("/admin".into()),
            ignore_case: false,
        })],
        principals: vec![Principal::Any],
    };
    let from_sleep = RbacPolicy {
        permissions: vec![Permission::Any],
        principals: vec![Principal::Authenticated(Some(ValueMatch::exact(SLEEP)))],
    };
    InboundPolicy {
        mtls: MtlsMode::Permissive,
        rbac: vec![
            Rbac {
                action: RbacAction::Deny,
                policies: vec![("default-deny-admin-0".into(), deny_admin)],
            },
            Rbac {
                action: RbacAction::Allow,
                policies: vec![("default-from-sleep-0".into(), from_sleep)],
            },
        ],
    }
}

fn request(path: &str, peer: Option<&str>) -> Request<()> {
    let mut req = Request::get(path).body(()).unwrap();
    req.extensions_mut().insert(ConnectInfo {
        local_addr: "127.0.0.1:9080".parse().unwrap(),
        remote_addr: "127.0.0.1:40000".parse().unwrap(),
    });
    if let Some(peer) = peer {
        req.extensions_mut().insert(ClientIdentity(peer.into()));
    }
    req
}

async fn call(
    svc: impl Service<
        Request<()>,
        Response = Response<Either<String, ResponseBody>>,
        Error = Infallible,
    >,
    req: Request<()>,
) -> (StatusCode, String) {
    let res = svc.oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn allowed_requests_reach_the_service_with_their_path_canonical() {
    let (status, body) = call(service(), request("/ratings//0/./", Some(SLEEP))).await;
    assert_eq!((status, &*body), (StatusCode::OK, "/ratings/0/"));
}

#[tokio::test]
async fn denied_requests_get_403_and_no_policy_name() {
    for (path, peer) in [
        ("/ratings/0", None),
        (
            "/ratings/0",
            Some("spiffe://cluster.local/ns/default/sa/other"),
        ),
        ("/admin", Some(SLEEP)),
        // What would pass a policy on `/admin` if it were read raw.
        ("//admin", Some(SLEEP)),
        ("/ratings/../admin", Some(SLEEP)),
        ("/%61dmin", Some(SLEEP)),
    ] {
        let (status, body) = call(service(), request(path, peer)).await;
        assert_eq!(
            (status, &*body),
            (StatusCode::FORBIDDEN, ACCESS_DENIED),
            "{path} from {peer:?}"
        );
    }
}

#[tokio::test]
async fn a_denied_grpc_request_gets_permission_denied() {
    let mut req = request("/ratings.Ratings/Get", None);
    req.headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    let res = service().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["grpc-status"], "7");
    assert_eq!(res.headers()["grpc-message"], ACCESS_DENIED);
}

#[tokio::test]
async fn a_path_that_is_not_one_gets_400() {
    let (status, _) = call(service(), request("/a%zz", Some(SLEEP))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_request_without_connection_information_is_refused() {
    let mut req = request("/ratings/0", Some(SLEEP));
    req.extensions_mut().remove::<ConnectInfo>();
    let (status, _) = call(service(), req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_policy_set_applies_to_the_next_request() {
    let shared = SharedPolicy::new(InboundPolicy::default());
    let echo = tower::service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let svc = Authorize::new(echo, shared.clone());
    let (status, _) = call(svc.clone(), request("/ratings/0", None)).await;
    assert_eq!(status, StatusCode::OK);
    // STRICT refuses plain-text requests of connections made before it.
    shared.set(InboundPolicy {
        mtls: MtlsMode::Strict,
        rbac: Vec::new(),
    });
    let (status, _) = call(svc.clone(), request("/ratings/0", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(svc, request("/ratings/0", Some(SLEEP))).await;
    assert_eq!(status, StatusCode::OK);
}

//! Every route the server answers, in one table: method, path, what the
//! caller needs, and the endpoint that handles it. The router matches
//! against it, the role check reads it, a path it holds under another
//! method gets a 405 naming the methods it has, metric labels come from
//! its paths, and a test holds the admin routes equal to
//! /admin/v1/openapi.json.

use super::auth::Need;
use super::context::Conn;
use super::state::AppState;
use hyper::body::Incoming;
use hyper::{Method, Request};
use std::sync::Arc;

/// The admin API's prefix.
pub const ADMIN: &str = "/admin/v1";

/// What handles a route (`router::handle` maps each to its handler).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Root,
    Health,
    Ready,
    Metrics,
    Models,
    Model,
    Tokenize,
    Detokenize,
    Completions,
    ChatCompletions,
    AdminOpenapi,
    AdminModels,
    AdminModel,
    AdminRegister,
    AdminVersion,
    AdminDeploy,
    AdminRollback,
    AdminCanary,
    AdminShadow,
    AdminPromote,
    AdminUnload,
    AdminFaults,
    AdminEval,
    AdminAudit,
    KeysList,
    KeysCreate,
    KeyRevoke,
    KeyRotate,
    Tenant,
    Usage,
}

pub struct Route {
    pub method: Method,
    /// Segments in braces capture one segment by that name.
    pub path: &'static str,
    pub need: Need,
    pub endpoint: Endpoint,
    /// The last capture takes the rest of the path, slashes included
    /// (served model names such as `org/model`).
    tail: bool,
}

const fn route(method: Method, path: &'static str, need: Need, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        need,
        endpoint,
        tail: false,
    }
}

impl Route {
    const fn with_tail(mut self) -> Self {
        self.tail = true;
        self
    }
}

use Endpoint as E;
use Need::{Admin, Metrics, Nothing, Operator, User};

// One row per route, aligned as a table.
#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    route(Method::GET,  "/",                                                  User,     E::Root),
    route(Method::GET,  "/health",                                            Nothing,  E::Health),
    route(Method::GET,  "/ready",                                             Nothing,  E::Ready),
    route(Method::GET,  "/metrics",                                           Metrics,  E::Metrics),
    route(Method::GET,  "/v1/models",                                         User,     E::Models),
    route(Method::GET,  "/v1/models/{id}",                                    User,     E::Model).with_tail(),
    route(Method::POST, "/tokenize",                                          User,     E::Tokenize),
    route(Method::POST, "/detokenize",                                        User,     E::Detokenize),
    route(Method::POST, "/v1/completions",                                    User,     E::Completions),
    route(Method::POST, "/v1/chat/completions",                               User,     E::ChatCompletions),
    route(Method::GET,  "/admin/v1/openapi.json",                             Operator, E::AdminOpenapi),
    route(Method::GET,  "/admin/v1/models",                                   Operator, E::AdminModels),
    route(Method::GET,  "/admin/v1/models/{model}",                           Operator, E::AdminModel),
    route(Method::POST, "/admin/v1/models/{model}/versions",                  Operator, E::AdminRegister),
    route(Method::GET,  "/admin/v1/models/{model}/versions/{version}",        Operator, E::AdminVersion),
    route(Method::POST, "/admin/v1/models/{model}/deploy",                    Operator, E::AdminDeploy),
    route(Method::POST, "/admin/v1/models/{model}/rollback",                  Operator, E::AdminRollback),
    route(Method::POST, "/admin/v1/models/{model}/canary",                    Operator, E::AdminCanary),
    route(Method::POST, "/admin/v1/models/{model}/shadow",                    Operator, E::AdminShadow),
    route(Method::POST, "/admin/v1/models/{model}/promote",                   Operator, E::AdminPromote),
    route(Method::POST, "/admin/v1/models/{model}/unload",                    Operator, E::AdminUnload),
    route(Method::POST, "/admin/v1/models/{model}/versions/{version}/faults", Operator, E::AdminFaults),
    route(Method::POST, "/admin/v1/models/{model}/versions/{version}/eval",   Operator, E::AdminEval),
    route(Method::GET,  "/admin/v1/audit",                                    Operator, E::AdminAudit),
    route(Method::GET,  "/admin/v1/keys",                                     Admin,    E::KeysList),
    route(Method::POST, "/admin/v1/keys",                                     Admin,    E::KeysCreate),
    route(Method::POST, "/admin/v1/keys/{key}/revoke",                        Admin,    E::KeyRevoke),
    route(Method::POST, "/admin/v1/keys/{key}/rotate",                        Admin,    E::KeyRotate),
    route(Method::PUT,  "/admin/v1/tenants/{tenant}",                         Admin,    E::Tenant),
    route(Method::GET,  "/admin/v1/usage",                                    Operator, E::Usage),
];

/// The values a route's path captured, by name.
#[derive(Debug, Default, PartialEq)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The captured segment; routes name what they capture, so a
    /// handler asks only for names its route has.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// What a handler is given.
pub struct Call<'a> {
    pub state: &'a Arc<AppState>,
    pub conn: Conn,
    /// What the route's path captured.
    pub params: Params,
    /// The `x-request-id` the response carries.
    pub request_id: &'a str,
    pub req: Request<Incoming>,
}

/// How a path matched the table.
pub enum Matched {
    Found(&'static Route, Params),
    /// The path exists, not with this method: the methods it has.
    WrongMethod(Vec<Method>, Need),
    /// No route has the path; what a caller needs to learn that.
    NotFound(Need),
}

/// `path` (without its query, trailing slashes ignored) and `method`
/// against the table.
pub fn find(method: &Method, path: &str) -> Matched {
    let path = normalized(path);
    let mut allowed = Vec::new();
    let mut need = None;
    for r in ROUTES {
        let Some(params) = capture(r, path) else {
            continue;
        };
        if r.method == *method {
            return Matched::Found(r, params);
        }
        allowed.push(r.method.clone());
        need = need.max(Some(r.need));
    }
    match need {
        Some(need) => Matched::WrongMethod(allowed, need),
        None => Matched::NotFound(unknown_need(path)),
    }
}

/// A path no route has needs what the routes of its area need: the admin
/// API's operators (so that probing it teaches an outsider nothing), the
/// OpenAI API's users.
fn unknown_need(path: &str) -> Need {
    if path == ADMIN || path.starts_with(&format!("{ADMIN}/")) {
        Operator
    } else {
        User
    }
}

/// Trailing slashes do not make another path.
fn normalized(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        p => p,
    }
}

/// The captures of `path` under the route's pattern, if it matches.
fn capture(r: &Route, path: &str) -> Option<Params> {
    let pattern: Vec<&str> = r.path.split('/').skip(1).collect();
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let mut params = Vec::new();
    for (i, p) in pattern.iter().enumerate() {
        let seg = *segments.get(i)?;
        let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) else {
            if *p != seg {
                return None;
            }
            continue;
        };
        if seg.is_empty() {
            return None;
        }
        if r.tail && i + 1 == pattern.len() {
            params.push((name, segments[i..].join("/")));
            return Some(Params(params));
        }
        params.push((name, seg.to_owned()));
    }
    (segments.len() == pattern.len()).then_some(Params(params))
}

/// The label a path gets in metrics: its route's path, or `other`, so the
/// label stays bounded whatever paths clients send.
pub fn label(path: &str) -> &'static str {
    let path = normalized(path);
    ROUTES
        .iter()
        .find(|r| capture(r, path).is_some())
        .map_or("other", |r| r.path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn found(method: Method, path: &str) -> (Endpoint, Params) {
        match find(&method, path) {
            Matched::Found(r, p) => (r.endpoint, p),
            _ => panic!("{method} {path} matched no route"),
        }
    }

    #[test]
    fn paths_match_with_their_captures() {
        let (e, p) = found(Method::POST, "/admin/v1/models/m1/versions/v2/faults");
        assert_eq!(e, Endpoint::AdminFaults);
        assert_eq!((p.get("model"), p.get("version")), ("m1", "v2"));
        let (e, p) = found(Method::GET, "/v1/models/org/name");
        assert_eq!((e, p.get("id")), (Endpoint::Model, "org/name"));
        assert_eq!(found(Method::GET, "/").0, Endpoint::Root);
        assert_eq!(found(Method::GET, "/health/").0, Endpoint::Health);
        assert_eq!(
            found(Method::GET, "/admin/v1/models/m").0,
            Endpoint::AdminModel
        );
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        for path in [
            "/v2/nothing",
            "/admin/v1/models//deploy",
            "/healthz",
            "/admin/v1/models/m/deploy/extra",
            "/admin/v1/models/m/versions/v/faults/x",
        ] {
            for method in [Method::GET, Method::POST, Method::PUT] {
                assert!(
                    matches!(find(&method, path), Matched::NotFound(_)),
                    "{method} {path} should match no route"
                );
            }
        }
        match find(&Method::GET, "/v1/completions") {
            Matched::WrongMethod(allowed, need) => {
                assert_eq!(allowed, [Method::POST]);
                assert_eq!(need, Need::User);
            }
            _ => panic!("GET /v1/completions is a wrong method"),
        }
        match find(&Method::DELETE, "/admin/v1/keys") {
            Matched::WrongMethod(allowed, need) => {
                assert_eq!(allowed, [Method::GET, Method::POST]);
                assert_eq!(need, Need::Admin);
            }
            _ => panic!("DELETE /admin/v1/keys is a wrong method"),
        }
        assert!(matches!(
            find(&Method::GET, "/admin/v1/nothing"),
            Matched::NotFound(Need::Operator)
        ));
        assert!(matches!(
            find(&Method::GET, "/v2/nothing"),
            Matched::NotFound(Need::User)
        ));
    }

    #[test]
    fn each_method_and_path_is_in_the_table_once() {
        let mut seen = BTreeSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method.to_string(), r.path)),
                "{} {}",
                r.method,
                r.path
            );
            assert_eq!(r.need.is_admin(), r.path.starts_with(ADMIN), "{}", r.path);
        }
    }

    #[test]
    fn metric_labels_are_route_paths() {
        assert_eq!(label("/v1/chat/completions"), "/v1/chat/completions");
        assert_eq!(label("/v1/models/anything/at/all"), "/v1/models/{id}");
        assert_eq!(label("/"), "/");
        assert_eq!(label("/nope"), "other");
    }

    /// The admin routes are exactly the paths and methods the OpenAPI
    /// document describes.
    #[test]
    fn the_admin_routes_are_the_openapi_document() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("admin/openapi.json")).unwrap();
        assert_eq!(doc["servers"][0]["url"], ADMIN);
        let mut documented = BTreeSet::new();
        for (path, methods) in doc["paths"].as_object().unwrap() {
            for method in methods.as_object().unwrap().keys() {
                documented.insert((method.to_uppercase(), format!("{ADMIN}{path}")));
            }
        }
        let routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .filter(|r| r.need.is_admin())
            .map(|r| (r.method.to_string(), r.path.to_owned()))
            .collect();
        assert_eq!(routed, documented);
    }
}

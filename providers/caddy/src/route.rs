//! The managed routes inside Caddy's JSON config, as pure functions.
//!
//! A managed route is any object with the managed `@id` (so an operator may
//! adopt a route of their own, even inside a subroute); within it, cutover
//! owns the `upstreams` of its one `reverse_proxy` handler, looked for through
//! nested `subroute`s as the Caddyfile adapter writes them. Everything else in
//! the route and in the config is the operator's and is never rewritten.

use serde_json::{json, Value};

/// A managed route found in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// The admin API path of the route, e.g. `/config/apps/http/servers/srv0/routes/0`.
    pub path: String,
    /// The admin API path of its `reverse_proxy` handler.
    pub proxy: String,
    /// Whether the handler has an `upstreams` key.
    pub has_upstreams: bool,
    /// The handler's upstream `dial` addresses, in order.
    pub dials: Vec<String>,
}

/// One change to Caddy's config through the admin API.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    /// `PATCH` (replace), `PUT` (create or insert), `POST` (append) or `DELETE`.
    pub method: hyper::Method,
    /// The admin API path.
    pub path: String,
    /// The JSON body, except for `DELETE`.
    pub body: Option<Value>,
}

/// The route with `@id` = `id` anywhere in `config`, or `None`.
pub(crate) fn find(config: &Value, id: &str) -> Result<Option<Found>, String> {
    let Some(route_at) = find_id(config, id, &mut Vec::new()) else {
        return Ok(None);
    };
    let route = pointer(config, &route_at).unwrap_or(&Value::Null);
    let mut proxies = Vec::new();
    find_proxies(route, &mut route_at.clone(), &mut proxies);
    let proxy_at = match proxies.len() {
        1 => proxies.remove(0),
        0 => {
            return Err(format!(
                "Caddy's route `@id: {id}` has no reverse_proxy handler; cutover manages the upstreams of one"
            ))
        }
        n => {
            return Err(format!(
                "Caddy's route `@id: {id}` has {n} reverse_proxy handlers; cutover manages a route with exactly one"
            ))
        }
    };
    let handler = pointer(config, &proxy_at).unwrap_or(&Value::Null);
    if handler.get("dynamic_upstreams").is_some() {
        return Err(format!(
            "the reverse_proxy of Caddy's route `@id: {id}` uses dynamic_upstreams; cutover manages static `upstreams` only"
        ));
    }
    let dials = handler
        .get("upstreams")
        .and_then(Value::as_array)
        .map(|ups| {
            ups.iter()
                .map(|u| {
                    u.get("dial")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Found {
        path: config_path(&route_at),
        proxy: config_path(&proxy_at),
        has_upstreams: handler.get("upstreams").is_some(),
        dials,
    }))
}

/// The change that makes the route `id` send traffic to `dials`: set the
/// upstreams of an existing route, or create the route in `server`. `None`
/// when the route already sends traffic there.
///
/// A new route without a host matcher matches everything, so it goes last:
/// the operator's more specific routes keep answering their paths. A new
/// route with a host matcher goes first, so that requests for its hosts reach
/// it before any catch-all route of the operator's.
pub(crate) fn change_to(
    config: &Value,
    server: &str,
    id: &str,
    hosts: &[String],
    dials: &[String],
) -> Result<Option<Change>, String> {
    let upstreams: Vec<Value> = dials.iter().map(|d| json!({ "dial": d })).collect();
    if let Some(found) = find(config, id)? {
        if found.dials == dials {
            return Ok(None);
        }
        let method = if found.has_upstreams {
            hyper::Method::PATCH
        } else {
            hyper::Method::PUT
        };
        return Ok(Some(Change {
            method,
            path: format!("{}/upstreams", found.proxy),
            body: Some(Value::Array(upstreams)),
        }));
    }
    let servers = config
        .pointer("/apps/http/servers")
        .and_then(Value::as_object);
    let Some(server_value) = servers.and_then(|s| s.get(server)) else {
        let names: Vec<&str> = servers
            .map(|s| s.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let names = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        return Err(format!(
            "Caddy has no HTTP server `{server}` to create route `@id: {id}` in (its servers: {names}); name one with `server`"
        ));
    };
    let mut route = json!({
        "@id": id,
        "handle": [{ "handler": "reverse_proxy", "upstreams": upstreams }],
    });
    if !hosts.is_empty() {
        route["match"] = json!([{ "host": hosts }]);
    }
    let routes = format!("/config/apps/http/servers/{server}/routes");
    let change = match server_value.get("routes") {
        None | Some(Value::Null) => Change {
            method: hyper::Method::PUT,
            path: routes,
            body: Some(json!([route])),
        },
        Some(Value::Array(_)) if !hosts.is_empty() => Change {
            method: hyper::Method::PUT,
            path: format!("{routes}/0"),
            body: Some(route),
        },
        Some(Value::Array(_)) => Change {
            method: hyper::Method::POST,
            path: routes,
            body: Some(route),
        },
        Some(_) => return Err(format!("Caddy's `{routes}` is not a list of routes")),
    };
    Ok(Some(change))
}

/// The change that removes the route `id`, or `None` when there is none.
pub(crate) fn removal(config: &Value, id: &str) -> Option<Change> {
    find_id(config, id, &mut Vec::new()).map(|at| Change {
        method: hyper::Method::DELETE,
        path: config_path(&at),
        body: None,
    })
}

/// The upstream dials of a route object read on its own (`GET /id/<id>`).
pub(crate) fn dials_of(route: &Value, id: &str) -> Result<Vec<String>, String> {
    Ok(find(route, id)?.map(|f| f.dials).unwrap_or_default())
}

fn find_id(value: &Value, id: &str, at: &mut Vec<String>) -> Option<Vec<String>> {
    match value {
        Value::Object(map) => {
            if map.get("@id").and_then(Value::as_str) == Some(id) {
                return Some(at.clone());
            }
            for (key, child) in map {
                at.push(key.clone());
                let found = find_id(child, id, at);
                at.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, child)| {
            at.push(i.to_string());
            let found = find_id(child, id, at);
            at.pop();
            found
        }),
        _ => None,
    }
}

/// Collect the paths of `reverse_proxy` handlers under `value`, not looking
/// inside one (its `handle_response` routes are not where traffic goes).
fn find_proxies(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map)
            if map.get("handler").and_then(Value::as_str) == Some("reverse_proxy") =>
        {
            out.push(at.clone());
        }
        Value::Object(map) => {
            for (key, child) in map {
                at.push(key.clone());
                find_proxies(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(i.to_string());
                find_proxies(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn pointer<'a>(value: &'a Value, at: &[String]) -> Option<&'a Value> {
    at.iter().try_fold(value, |v, key| match v {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn config_path(at: &[String]) -> String {
    format!("/config/{}", at.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(routes: Value) -> Value {
        json!({"apps": {"http": {"servers": {"srv0": {"listen": [":80"], "routes": routes}}}}})
    }

    fn proxy_route(id: &str, dials: &[&str]) -> Value {
        let ups: Vec<Value> = dials.iter().map(|d| json!({"dial": d})).collect();
        json!({"@id": id, "handle": [{"handler": "reverse_proxy", "upstreams": ups}]})
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_the_route_and_its_upstreams() {
        let cfg = config(json!([{"handle": []}, proxy_route("live", &["a:1", "b:2"])]));
        let found = find(&cfg, "live").unwrap().unwrap();
        assert_eq!(found.path, "/config/apps/http/servers/srv0/routes/1");
        assert_eq!(
            found.proxy,
            "/config/apps/http/servers/srv0/routes/1/handle/0"
        );
        assert_eq!(found.dials, strings(&["a:1", "b:2"]));
        assert_eq!(find(&cfg, "other").unwrap(), None);
    }

    #[test]
    fn finds_the_proxy_inside_a_subroute() {
        let route = json!({"@id": "live", "handle": [{"handler": "subroute", "routes": [
            {"handle": [{"handler": "headers"}, {"handler": "reverse_proxy", "upstreams": [{"dial": "a:1"}],
             "handle_response": [{"routes": [{"handle": [{"handler": "reverse_proxy"}]}]}]}]}
        ]}]});
        let found = find(&config(json!([route])), "live").unwrap().unwrap();
        assert_eq!(
            found.proxy,
            "/config/apps/http/servers/srv0/routes/0/handle/0/routes/0/handle/1"
        );
        assert_eq!(found.dials, strings(&["a:1"]));
    }

    #[test]
    fn refuses_routes_it_cannot_manage() {
        let none = config(json!([{"@id": "live", "handle": [{"handler": "static_response"}]}]));
        assert!(find(&none, "live")
            .unwrap_err()
            .contains("no reverse_proxy"));
        let two = config(json!([{"@id": "live", "handle": [
            {"handler": "reverse_proxy"}, {"handler": "reverse_proxy"}]}]));
        assert!(find(&two, "live").unwrap_err().contains("2 reverse_proxy"));
        let dynamic = config(json!([{"@id": "live", "handle": [
            {"handler": "reverse_proxy", "dynamic_upstreams": {"source": "srv"}}]}]));
        assert!(find(&dynamic, "live")
            .unwrap_err()
            .contains("dynamic_upstreams"));
    }

    #[test]
    fn changes_upstreams_of_an_existing_route() {
        let cfg = config(json!([proxy_route("live", &["a:1"])]));
        let change = change_to(&cfg, "srv0", "live", &[], &strings(&["b:2"]))
            .unwrap()
            .unwrap();
        assert_eq!(change.method, hyper::Method::PATCH);
        assert_eq!(
            change.path,
            "/config/apps/http/servers/srv0/routes/0/handle/0/upstreams"
        );
        assert_eq!(change.body, Some(json!([{"dial": "b:2"}])));
        assert_eq!(
            change_to(&cfg, "srv0", "live", &[], &strings(&["a:1"])).unwrap(),
            None
        );
    }

    #[test]
    fn creates_a_route_last_or_first() {
        let cfg = config(json!([{"handle": [{"handler": "static_response"}]}]));
        let append = change_to(&cfg, "srv0", "live", &[], &strings(&["a:1"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (append.method, append.path.as_str()),
            (hyper::Method::POST, "/config/apps/http/servers/srv0/routes")
        );
        assert_eq!(append.body, Some(proxy_route("live", &["a:1"])));
        let hosts = strings(&["app.test"]);
        let first = change_to(&cfg, "srv0", "live", &hosts, &strings(&["a:1"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (first.method, first.path.as_str()),
            (
                hyper::Method::PUT,
                "/config/apps/http/servers/srv0/routes/0"
            )
        );
        assert_eq!(
            first.body.unwrap()["match"],
            json!([{"host": ["app.test"]}])
        );
        let empty = json!({"apps": {"http": {"servers": {"srv0": {"listen": [":80"]}}}}});
        let put = change_to(&empty, "srv0", "live", &[], &strings(&["a:1"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (put.method, put.path.as_str()),
            (hyper::Method::PUT, "/config/apps/http/servers/srv0/routes")
        );
        assert_eq!(put.body, Some(json!([proxy_route("live", &["a:1"])])));
    }

    #[test]
    fn missing_server_names_the_servers() {
        let err =
            change_to(&config(json!([])), "web", "live", &[], &strings(&["a:1"])).unwrap_err();
        assert!(
            err.contains("no HTTP server `web`") && err.contains("srv0"),
            "{err}"
        );
        let err = change_to(&Value::Null, "srv0", "live", &[], &strings(&["a:1"])).unwrap_err();
        assert!(err.contains("(its servers: none)"), "{err}");
    }

    #[test]
    fn removal_deletes_the_route() {
        let cfg = config(json!([{"handle": []}, proxy_route("p", &["a:1"])]));
        let change = removal(&cfg, "p").unwrap();
        assert_eq!(
            (change.method, change.path.as_str()),
            (
                hyper::Method::DELETE,
                "/config/apps/http/servers/srv0/routes/1"
            )
        );
        assert_eq!(removal(&cfg, "q"), None);
    }
}

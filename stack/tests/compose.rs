//! No Docker engine runs here, so this reads `docker-compose.yml` (alone,
//! and with the laptop override `docker-compose.sim.yml`) and checks it
//! against the binaries themselves:
//!
//! * every variable a binary of ours reads is set in its service, and the
//!   binary accepts the values;
//! * every URL points at a service of the file, on a port that service
//!   listens on (for ours, the port its settings give);
//! * each healthcheck of ours runs `buttress-wait` against an endpoint the
//!   service really serves, on its own port;
//! * the start order follows the graph infrastructure → application →
//!   monitoring, each waiting for `service_healthy`, with no cycle;
//! * the knowledge API is limited to 2 CPUs and 3 GB;
//! * the image builds every binary the file runs.

// Helpers outside #[test] functions panic on failure too: that is the report.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use buttress_stack::chat::{Chat, ChatConfig};
use buttress_stack::embeddings::{Embeddings, EmbeddingsConfig};
use buttress_stack::env::Env;
use buttress_stack::journal_relay::{JournalRelay, JournalRelayConfig};
use buttress_stack::knowledge::{KnowledgeApi, KnowledgeConfig};
use buttress_stack::learner::{Learner, LearnerConfig};
use buttress_stack::outbox::{Relay, RelayConfig};
use buttress_stack::sim::SimConfig;
use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Value};
use tower::ServiceExt;

const DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The YAML as JSON, with `<<` merge keys applied and tags dropped.
fn to_json(node: &Yaml<'_>) -> Value {
    match node {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        Yaml::Value(Scalar::Integer(i)) => Value::from(*i),
        Yaml::Value(Scalar::FloatingPoint(f)) => Value::from(f.into_inner()),
        Yaml::Value(Scalar::String(s)) => Value::String(s.to_string()),
        Yaml::Representation(raw, _, _) => Value::String(raw.to_string()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(map) => {
            let mut out = Map::new();
            let mut merged = Map::new();
            for (k, v) in map {
                let key = match to_json(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                if key == "<<" {
                    if let Value::Object(m) = to_json(v) {
                        merged.extend(m);
                    }
                } else {
                    out.insert(key, to_json(v));
                }
            }
            for (k, v) in merged {
                out.entry(k).or_insert(v);
            }
            Value::Object(out)
        }
        Yaml::Tagged(_, inner) => to_json(inner),
        Yaml::Alias(_) | Yaml::BadValue => panic!("unreadable YAML node {node:?}"),
    }
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(DIR).join(name)).expect("the compose file");
    let docs = Yaml::load_from_str(&text).expect("valid YAML");
    assert_eq!(docs.len(), 1, "{name}: one document");
    to_json(&docs[0])
}

/// Compose's merge of an override: mappings merge key by key, anything
/// else is replaced (the override uses `!reset` where compose would
/// append).
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// `${VAR:-default}` as compose fills it with nothing set.
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${") + start;
        let inner = &rest[start + 2..end];
        out.push_str(inner.split_once(":-").map_or("", |(_, d)| d));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), interpolate(&text))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The ports a service listens on inside its container.
fn container_ports(service: &Value) -> BTreeSet<u16> {
    strings(&service["ports"])
        .iter()
        .chain(strings(&service["expose"]).iter())
        .map(|p| p.rsplit(':').next().unwrap().parse().expect("a port"))
        .collect()
}

/// What one of our services is: which binary, on which port, serving
/// which paths.
struct Ours {
    binary: String,
    port: u16,
    env: BTreeMap<String, String>,
}

/// Reads a service of ours the way its binary would; panics naming the
/// service when a variable is missing or refused.
fn ours(name: &str, service: &Value) -> Option<Ours> {
    let binary = strings(&service["command"]).first()?.clone();
    if ![
        "knowledge-api",
        "embeddings",
        "learner",
        "chat",
        "outbox-relay",
        "journal-relay",
        "upstream-sim",
    ]
    .contains(&binary.as_str())
    {
        return None;
    }
    let vars = environment(service);
    let env = Env::from_map(vars.clone());
    let port = match binary.as_str() {
        "knowledge-api" => KnowledgeConfig::from_env(&env)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .listen
            .port(),
        "embeddings" => EmbeddingsConfig::from_env(&env)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .listen
            .port(),
        "learner" => LearnerConfig::from_env(&env)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .listen
            .port(),
        "chat" => ChatConfig::from_env(&env)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .listen
            .port(),
        "outbox-relay" => RelayConfig::from_env(&env)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .listen
            .port(),
        "journal-relay" => JournalRelayConfig::from_env(&env)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .listen
            .port(),
        _ => SimConfig::from_env(&env)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .0
            .port(),
    };
    let unset: Vec<_> = env
        .names_read()
        .into_iter()
        .filter(|v| !vars.contains_key(*v))
        .collect();
    assert!(
        unset.is_empty(),
        "{name} ({binary}) reads {unset:?}, which the compose file does not set"
    );
    Some(Ours {
        binary,
        port,
        env: vars,
    })
}

/// A GET of `path` on the binary's own routes: anything but 404 means the
/// endpoint exists.
async fn serves(binary: &str, env: &BTreeMap<String, String>, path: &str) -> bool {
    let dir = std::env::temp_dir().join(format!(
        "buttress-compose-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let router = match binary {
        "knowledge-api" => {
            let mut vars = env.clone();
            vars.insert("JOURNAL_DIR".into(), dir.display().to_string());
            // The compose hosts do not resolve here: the checks fail, fast.
            vars.insert("HEALTH_CHECK_TIMEOUT".into(), "50ms".into());
            vars.insert(
                "POLICY_FILE".into(),
                Path::new(DIR).join("policy.toml").display().to_string(),
            );
            let config = KnowledgeConfig::from_env(&Env::from_map(vars)).unwrap();
            KnowledgeApi::new(config).unwrap().router()
        }
        "embeddings" => {
            buttress_stack::embeddings::router(Embeddings::new(EmbeddingsConfig::default()))
        }
        "learner" => {
            let mut vars = env.clone();
            vars.insert("JOURNAL_DIR".into(), dir.display().to_string());
            vars.insert("HEALTH_CHECK_TIMEOUT".into(), "50ms".into());
            vars.insert(
                "POLICY_FILE".into(),
                Path::new(DIR).join("learner.toml").display().to_string(),
            );
            let config = LearnerConfig::from_env(&Env::from_map(vars)).unwrap();
            Learner::new(config).unwrap().router()
        }
        "chat" => {
            let mut vars = env.clone();
            vars.insert("HEALTH_CHECK_TIMEOUT".into(), "50ms".into());
            vars.insert(
                "POLICY_FILE".into(),
                Path::new(DIR).join("chat.toml").display().to_string(),
            );
            let config = ChatConfig::from_env(&Env::from_map(vars)).unwrap();
            Chat::new(config).unwrap().router()
        }
        "outbox-relay" => {
            let mut vars = env.clone();
            vars.insert("HEALTH_CHECK_TIMEOUT".into(), "50ms".into());
            vars.insert(
                "POLICY_FILE".into(),
                Path::new(DIR).join("outbox.toml").display().to_string(),
            );
            let config = RelayConfig::from_env(&Env::from_map(vars)).unwrap();
            Relay::new(config).unwrap().router()
        }
        "journal-relay" => {
            let mut vars = env.clone();
            vars.insert("JOURNAL_DIR".into(), dir.display().to_string());
            vars.insert("HEALTH_CHECK_TIMEOUT".into(), "50ms".into());
            vars.insert(
                "POLICY_FILE".into(),
                Path::new(DIR)
                    .join("journal-relay.toml")
                    .display()
                    .to_string(),
            );
            let config = JournalRelayConfig::from_env(&Env::from_map(vars)).unwrap();
            JournalRelay::new(config).unwrap().router()
        }
        _ => {
            // The simulator's own router, served on a loopback port.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(buttress_stack::sim::serve(
                listener,
                buttress_stack::sim::Sim::new(SimConfig::default()),
                async move {
                    let _ = rx.await;
                },
            ));
            let client = buttress_stack::client::JsonClient::new("sim", &format!("http://{addr}"));
            let found = match client.get_any(path).await {
                Ok((status, _)) => is_health_answer(status),
                Err(_) => false,
            };
            let _ = tx.send(());
            return found;
        }
    };
    let request = http::Request::get(path)
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            1,
        ))))
        .body(axum::body::Body::empty())
        .unwrap();
    let status = router.oneshot(request).await.unwrap().status();
    let _ = std::fs::remove_dir_all(&dir);
    is_health_answer(status)
}

/// What a health endpoint answers: `2xx`, or `503` while the service (or a
/// dependency) is not there yet. A `404`, a `405` or a `500` means the
/// healthcheck asks the wrong thing.
fn is_health_answer(status: http::StatusCode) -> bool {
    status.is_success() || status == http::StatusCode::SERVICE_UNAVAILABLE
}

const TIERS: [&str; 3] = ["infrastructure", "application", "monitoring"];

async fn check(file: &Value, what: &str) {
    let services = file["services"].as_object().expect("services");
    let tier = |name: &str| -> usize {
        let label = services[name]["labels"]["buttress.tier"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {name} has no buttress.tier label"));
        TIERS
            .iter()
            .position(|t| *t == label)
            .unwrap_or_else(|| panic!("{what}: {name}: unknown tier {label}"))
    };
    let mut binaries = BTreeSet::new();
    for (name, service) in services {
        // Start order: only on earlier tiers (or the same tier, for the
        // knowledge API on the embeddings service), always healthy first.
        if let Some(deps) = service["depends_on"].as_object() {
            for (dep, how) in deps {
                assert!(
                    services.contains_key(dep),
                    "{what}: {name} depends on unknown {dep}"
                );
                assert_eq!(
                    how["condition"], "service_healthy",
                    "{what}: {name} → {dep}"
                );
                assert!(
                    services[dep]["healthcheck"].is_object(),
                    "{what}: {name} waits on {dep}, which has no healthcheck"
                );
                assert!(
                    tier(dep) <= tier(name),
                    "{what}: {name} ({}) waits on {dep} ({})",
                    TIERS[tier(name)],
                    TIERS[tier(dep)]
                );
                if tier(dep) == tier(name) {
                    assert!(
                        services[dep]["depends_on"].get(name).is_none(),
                        "{what}: {name} and {dep} wait on each other"
                    );
                }
            }
        }
        // Every URL in the environment reaches a service, on a port it listens on.
        for (var, value) in environment(service) {
            let Ok(uri) = value.parse::<http::Uri>() else {
                continue;
            };
            let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
                continue;
            };
            if !["http", "postgres", "redis", "nats"].contains(&scheme) {
                continue;
            }
            assert!(
                services.contains_key(host),
                "{what}: {name}.{var} = {value}: no service {host}"
            );
            let port = uri.port_u16().expect("an explicit port");
            let listening = match ours(host, &services[host]) {
                Some(o) => BTreeSet::from([o.port]),
                None => container_ports(&services[host]),
            };
            assert!(
                listening.contains(&port),
                "{what}: {name}.{var} = {value}, but {host} listens on {listening:?}"
            );
        }
        let Some(o) = ours(name, service) else {
            continue;
        };
        binaries.insert(o.binary.clone());
        assert!(
            container_ports(service).contains(&o.port),
            "{what}: {name} listens on {} but publishes {:?}",
            o.port,
            container_ports(service)
        );
        // The healthcheck: buttress-wait on our own port, on a real endpoint.
        let test = strings(&service["healthcheck"]["test"]);
        assert_eq!(
            test.get(1).map(String::as_str),
            Some("buttress-wait"),
            "{what}: {name}'s healthcheck: {test:?}"
        );
        let url = &test[test.iter().position(|a| a == "--http").expect("--http") + 1];
        let uri: http::Uri = url.parse().unwrap();
        assert_eq!(
            uri.host(),
            Some("127.0.0.1"),
            "{what}: {name} checks itself"
        );
        assert_eq!(
            uri.port_u16(),
            Some(o.port),
            "{what}: {name}'s healthcheck port"
        );
        assert!(
            serves(&o.binary, &o.env, uri.path()).await,
            "{what}: {name} does not serve {}",
            uri.path()
        );
    }
    // The image builds what the file runs (comments do not count), and
    // gives its user the journal's directory.
    let dockerfile: String = std::fs::read_to_string(Path::new(DIR).join("Dockerfile"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for (name, service) in services {
        let env = environment(service);
        for dir in ["JOURNAL_DIR", "CHECKPOINT_DIR"]
            .iter()
            .filter_map(|v| env.get(*v))
        {
            assert!(
                dockerfile.contains(&format!("mkdir -p {dir}"))
                    && dockerfile.contains("chown -R buttress"),
                "{what}: {name} writes to {dir}, which the image does not create for its user"
            );
            let user_line = dockerfile
                .lines()
                .find(|l| l.starts_with("USER "))
                .expect("a USER line");
            assert_eq!(
                user_line, "USER buttress",
                "the service runs as the user that owns its directory"
            );
        }
    }
    for binary in binaries
        .iter()
        .chain(std::iter::once(&"buttress-wait".to_owned()))
    {
        assert!(
            dockerfile.contains(&format!("--bin {binary}")),
            "the Dockerfile does not build {binary}"
        );
        assert!(
            dockerfile.contains(&format!("release/{binary}")),
            "the Dockerfile does not copy {binary}"
        );
    }
}

#[tokio::test]
async fn the_compose_file_agrees_with_the_binaries() {
    let file = load("docker-compose.yml");
    check(&file, "docker-compose.yml").await;
    let services = &file["services"];
    let api = &services["knowledge-api"];
    assert_eq!(api["deploy"]["resources"]["limits"]["cpus"], "2");
    assert_eq!(api["deploy"]["resources"]["limits"]["memory"], "3G");
    let waits: BTreeSet<&str> = api["depends_on"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        waits,
        BTreeSet::from(["postgres", "redis", "qdrant", "llm", "embeddings"])
    );
    assert!(
        services["prometheus"]["depends_on"]
            .get("knowledge-api")
            .is_some()
    );
}

#[tokio::test]
async fn the_laptop_override_swaps_the_llm_for_upstream_sim() {
    let mut file = load("docker-compose.yml");
    merge(&mut file, &load("docker-compose.sim.yml"));
    check(&file, "docker-compose.yml + docker-compose.sim.yml").await;
    let llm = &file["services"]["llm"];
    assert_eq!(strings(&llm["command"]), ["upstream-sim"]);
    assert_eq!(llm["volumes"], Value::Array(vec![]));
}

#[test]
fn interpolation_takes_the_default() {
    assert_eq!(
        interpolate("postgres://p:${PW:-x}@h:1/d"),
        "postgres://p:x@h:1/d"
    );
    assert_eq!(interpolate("${ADMIN_TOKEN:-}"), "");
}

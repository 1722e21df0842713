//! Pure functions over task definition JSON: pick the containers to change,
//! render the next revision's registration body, diff, `${VAR}` substitution.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// Fields DescribeTaskDefinition returns that RegisterTaskDefinition refuses.
pub const READ_ONLY_FIELDS: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
];

/// What a deploy sets on one container besides its image (flags and
/// `[ecs.*.<container>]` tables): entries with the same name are replaced,
/// new ones appended, nothing removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerChanges {
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub docker_labels: BTreeMap<String, String>,
}

/// What changes in the next revision.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// container name → new image reference.
    pub images: BTreeMap<String, String>,
    /// container name → env/secret/label updates.
    pub containers: BTreeMap<String, ContainerChanges>,
    /// Tags for the new revision (replacing same-key tags of the current one).
    pub tags: Vec<(String, String)>,
}

pub fn containers(td: &Value) -> Vec<(&str, &str)> {
    td.get("containerDefinitions")
        .and_then(Value::as_array)
        .map(|defs| {
            defs.iter()
                .map(|c| {
                    (
                        c.get("name").and_then(Value::as_str).unwrap_or(""),
                        c.get("image").and_then(Value::as_str).unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Essential containers (`essential` defaults to true) that define a
/// `healthCheck`: ECS reports their `healthStatus`, and the task's.
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html
pub fn health_checked_essential_containers(td: &Value) -> Vec<String> {
    td.get("containerDefinitions")
        .and_then(Value::as_array)
        .map(|defs| {
            defs.iter()
                .filter(|c| c.get("essential").and_then(Value::as_bool).unwrap_or(true))
                .filter(|c| c.get("healthCheck").is_some_and(|h| !h.is_null()))
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `host/name:tag` or `host/name@sha256:…` → `host/name`.
pub fn image_repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rfind(':') {
        Some(pos) if !without_digest[pos..].contains('/') => &without_digest[..pos],
        _ => without_digest,
    }
}

/// The containers whose image changes: those requested (each must exist),
/// else the one whose image is in `repository_uri`.
pub fn pick_containers(
    td: &Value,
    requested: &[String],
    repository_uri: &str,
    family: &str,
) -> Result<Vec<String>> {
    let all = containers(td);
    let listing = || {
        all.iter()
            .map(|(n, i)| format!("{n} ({i})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !requested.is_empty() {
        for name in requested {
            if !all.iter().any(|(n, _)| n == name) {
                return Err(Error::bad_input(format!(
                    "task definition `{family}` has no container `{name}`"
                ))
                .cause(format!("its containers: {}", listing()))
                .hint("pass --container with one of the names above"));
            }
        }
        return Ok(requested.to_vec());
    }
    let matching: Vec<String> = all
        .iter()
        .filter(|(_, image)| image_repository(image) == repository_uri)
        .map(|(n, _)| n.to_string())
        .collect();
    match matching.len() {
        1 => Ok(matching),
        0 => Err(Error::bad_input(format!(
            "no container in task definition `{family}` uses an image from {repository_uri}"
        ))
        .cause(format!("its containers: {}", listing()))
        .hint("name the container(s) to update with --container <name>")),
        _ => Err(Error::bad_input(format!(
            "several containers in task definition `{family}` use {repository_uri}: {}",
            matching.join(", ")
        ))
        .hint("say which to update with --container <name> (repeatable)")),
    }
}

/// The RegisterTaskDefinition body for the next revision: the current
/// definition minus read-only fields, with only the named containers changed.
pub fn next_revision(
    current: &Value,
    current_tags: &[(String, String)],
    changes: &Changes,
) -> Result<Value> {
    let mut body: Map<String, Value> = current.as_object().cloned().unwrap_or_default();
    for field in READ_ONLY_FIELDS {
        body.remove(*field);
    }
    let defs = body
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| {
            Error::bad_input("the task definition has no containerDefinitions").hint(
                "a task definition file needs a `containerDefinitions` array, as RegisterTaskDefinition takes",
            )
        })?;
    for name in changes.images.keys().chain(changes.containers.keys()) {
        if !defs
            .iter()
            .any(|c| c.get("name").and_then(Value::as_str) == Some(name))
        {
            return Err(
                Error::bad_input(format!("the task definition has no container `{name}`")).hint(
                    "check the container names in --env/--secret/--docker-label and [ecs.*] tables",
                ),
            );
        }
    }
    for def in defs.iter_mut() {
        let name = def
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(image) = changes.images.get(&name) {
            set_image(def, image);
        }
        if let Some(change) = changes.containers.get(&name) {
            upsert_pairs(def, "environment", "value", &change.environment);
            upsert_pairs(def, "secrets", "valueFrom", &change.secrets);
            if !change.docker_labels.is_empty() {
                let labels = def
                    .as_object_mut()
                    .unwrap()
                    .entry("dockerLabels")
                    .or_insert_with(|| json!({}));
                for (key, value) in &change.docker_labels {
                    labels[key] = Value::String(value.clone());
                }
            }
        }
    }
    let mut tags: Vec<(String, String)> = current_tags
        .iter()
        .filter(|(k, _)| !changes.tags.iter().any(|(nk, _)| nk == k))
        .cloned()
        .collect();
    tags.extend(changes.tags.iter().cloned());
    if !tags.is_empty() {
        body.insert(
            "tags".into(),
            Value::Array(
                tags.into_iter()
                    .map(|(key, value)| json!({"key": key, "value": value}))
                    .collect(),
            ),
        );
    }
    Ok(Value::Object(body))
}

/// Sets the image of the named containers of a RegisterTaskDefinition body
/// (e.g. once a repository created by the push has its real URI).
pub fn set_images(body: &mut Value, containers: &[String], image: &str) {
    let Some(defs) = body
        .get_mut("containerDefinitions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for def in defs.iter_mut().filter(|d| {
        containers
            .iter()
            .any(|c| d.get("name").and_then(Value::as_str) == Some(c))
    }) {
        set_image(def, image);
    }
}

/// The one place a container definition's image is written.
fn set_image(def: &mut Value, image: &str) {
    def["image"] = Value::String(image.to_string());
}

/// `[{name, <value_key>}]` list: replace same-name entries, append new ones.
fn upsert_pairs(def: &mut Value, list: &str, value_key: &str, updates: &BTreeMap<String, String>) {
    if updates.is_empty() {
        return;
    }
    let entries = def
        .as_object_mut()
        .unwrap()
        .entry(list)
        .or_insert_with(|| json!([]));
    let Some(entries) = entries.as_array_mut() else {
        return;
    };
    for (name, value) in updates {
        match entries
            .iter_mut()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
        {
            Some(entry) => entry[value_key] = Value::String(value.clone()),
            None => entries.push(json!({"name": name, value_key: value})),
        }
    }
}

/// A unified diff of two task definitions as pretty JSON (read-only fields and tags left out).
pub fn diff(current: &Value, next: &Value) -> String {
    let clean = |value: &Value| {
        let mut value = value.clone();
        if let Some(map) = value.as_object_mut() {
            for field in READ_ONLY_FIELDS {
                map.remove(*field);
            }
            map.remove("tags");
        }
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
    };
    let (old, new) = (clean(current), clean(next));
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header("current", "next")
        .to_string()
}

/// Replaces `${NAME}` with `lookup(NAME)`; `$${` stays a literal `${`.
/// A name with no value is an error naming it.
pub fn substitute(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("${") {
        if rest[..pos].ends_with('$') {
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let end = after.find('}').ok_or_else(|| {
            Error::bad_input("unterminated `${` in the task definition file")
                .hint("close it with `}` or write `$${` for a literal")
        })?;
        let name = &after[..end];
        let value = lookup(name).ok_or_else(|| {
            Error::bad_input(format!(
                "the task definition file uses ${{{name}}}, which is not set"
            ))
            .hint(format!(
                "set the environment variable {name}, or remove it from the file"
            ))
        })?;
        // JSON-escaped, so a value with `"`, `\` or a newline stays inside its string.
        let escaped = serde_json::to_string(&value).unwrap_or_default();
        out.push_str(&escaped[1..escaped.len() - 1]);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn health_checked_essential_containers_default_essential_to_true() {
        let td = serde_json::json!({"containerDefinitions": [
            {"name": "app", "healthCheck": {"command": ["CMD-SHELL", "curl -f localhost:8080/health"]}},
            {"name": "sidecar", "essential": false, "healthCheck": {"command": ["CMD", "true"]}},
            {"name": "proxy", "essential": true},
            {"name": "worker", "essential": true, "healthCheck": {"command": ["CMD", "true"]}}
        ]});
        assert_eq!(
            super::health_checked_essential_containers(&td),
            vec!["app".to_string(), "worker".to_string()]
        );
        assert!(super::health_checked_essential_containers(&serde_json::json!({})).is_empty());
    }

    use super::*;

    #[test]
    fn substituted_values_are_json_escaped_and_cannot_inject_fields() {
        let text =
            r#"{"family": "web", "containerDefinitions": [{"name": "app", "image": "${IMAGE}"}]}"#;
        let hostile = r#"x", "privileged": true, "y": "a\b
c"#;
        let out = substitute(text, |name| (name == "IMAGE").then(|| hostile.to_string())).unwrap();
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["containerDefinitions"][0]["image"], hostile);
        assert!(value["containerDefinitions"][0].get("privileged").is_none());
    }

    fn current() -> Value {
        json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7",
            "family": "web",
            "revision": 7,
            "status": "ACTIVE",
            "compatibilities": ["EC2", "FARGATE"],
            "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
            "registeredAt": 1700000000.0,
            "registeredBy": "arn:aws:iam::123456789012:user/me",
            "networkMode": "awsvpc",
            "cpu": "256",
            "memory": "512",
            "requiresCompatibilities": ["FARGATE"],
            "containerDefinitions": [
                {"name": "app", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:old",
                 "environment": [{"name": "MODE", "value": "a"}], "essential": true},
                {"name": "proxy", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/envoy:v1", "essential": true}
            ]
        })
    }
    const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web";

    #[test]
    fn the_container_using_the_repository_is_picked_by_default() {
        assert_eq!(
            pick_containers(&current(), &[], REPO, "web").unwrap(),
            ["app"]
        );
    }

    #[test]
    fn a_missing_or_unknown_container_is_bad_input_listing_the_containers() {
        let err = pick_containers(&current(), &[], "127.0.0.1:4566/other", "web").unwrap_err();
        assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
        assert!(
            err.causes()[0].contains("app (") && err.causes()[0].contains("proxy ("),
            "{:?}",
            err.causes()
        );
        let err = pick_containers(&current(), &["nope".into()], REPO, "web").unwrap_err();
        assert!(err.message().contains("`nope`"));
    }

    #[test]
    fn two_containers_on_the_repository_are_ambiguous() {
        let mut td = current();
        td["containerDefinitions"][1]["image"] = json!(format!("{REPO}:x"));
        let err = pick_containers(&td, &[], REPO, "web").unwrap_err();
        assert!(err.message().contains("app, proxy"), "{}", err.message());
    }

    #[test]
    fn next_revision_changes_only_the_named_container_and_drops_read_only_fields() {
        let mut changes = Changes::default();
        changes
            .images
            .insert("app".into(), format!("{REPO}:abc1234"));
        changes.containers.insert(
            "app".into(),
            ContainerChanges {
                environment: [
                    ("MODE".to_string(), "b".to_string()),
                    ("NEW".to_string(), "1".to_string()),
                ]
                .into(),
                ..Default::default()
            },
        );
        changes.tags.push(("shipit:sha".into(), "abc1234".into()));
        let body = next_revision(
            &current(),
            &[
                ("team".into(), "x".into()),
                ("shipit:sha".into(), "old".into()),
            ],
            &changes,
        )
        .unwrap();
        for field in READ_ONLY_FIELDS {
            assert!(body.get(*field).is_none(), "{field} must be removed");
        }
        assert_eq!(
            body["containerDefinitions"][0]["image"],
            json!(format!("{REPO}:abc1234"))
        );
        assert_eq!(
            body["containerDefinitions"][0]["environment"],
            json!([{"name": "MODE", "value": "b"}, {"name": "NEW", "value": "1"}])
        );
        assert_eq!(
            body["containerDefinitions"][1],
            current()["containerDefinitions"][1],
            "the sidecar is untouched"
        );
        for kept in [
            "family",
            "networkMode",
            "cpu",
            "memory",
            "requiresCompatibilities",
        ] {
            assert_eq!(body[kept], current()[kept], "{kept} is kept");
        }
        assert_eq!(
            body["tags"],
            json!([{"key": "team", "value": "x"}, {"key": "shipit:sha", "value": "abc1234"}])
        );
    }

    #[test]
    fn the_diff_shows_the_image_line() {
        let mut changes = Changes::default();
        changes.images.insert("app".into(), format!("{REPO}:new"));
        let next = next_revision(&current(), &[], &changes).unwrap();
        let diff = diff(&current(), &next);
        assert!(
            diff.contains(&format!("-      \"image\": \"{REPO}:old\"")),
            "{diff}"
        );
        assert!(
            diff.contains(&format!("+      \"image\": \"{REPO}:new\"")),
            "{diff}"
        );
        assert_eq!(
            diff.lines()
                .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
                .count(),
            1,
            "{diff}"
        );
    }

    #[test]
    fn image_repository_strips_tag_and_digest_but_not_the_port() {
        assert_eq!(
            image_repository("127.0.0.1:4566/web:abc"),
            "127.0.0.1:4566/web"
        );
        assert_eq!(image_repository("127.0.0.1:4566/web"), "127.0.0.1:4566/web");
        assert_eq!(image_repository("r/web@sha256:00"), "r/web");
    }

    #[test]
    fn substitution() {
        let env = |name: &str| (name == "ACCOUNT").then(|| "123".to_string());
        assert_eq!(
            substitute("a ${ACCOUNT} b $${LITERAL}", env).unwrap(),
            "a 123 b ${LITERAL}"
        );
        let err = substitute("${MISSING}", env).unwrap_err();
        assert!(err.message().contains("MISSING") && err.hint_text().unwrap().contains("MISSING"));
        assert!(substitute("${OPEN", env).is_err());
    }
}

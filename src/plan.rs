//! Everything a deploy works out before its first change: the service and
//! its current revision, the image, the next revision and its diff, the
//! rollback target. Only read calls; bad input fails here, with nothing changed.

use std::time::Instant;

use serde_json::Value;

use crate::arn::short;
use crate::ecs::{tags, taskdef, DeploymentStatus, Ecs, Service, ServiceStatus, TaskDefinitionDoc};
use crate::error::{Error, Result};
use crate::git::Commit;
use crate::image::pipeline::{self, ImagePlan};
use crate::settings::DeploySettings;
use crate::world::Deps;

/// Everything worked out before the first change.
#[derive(Debug, Clone)]
pub struct DeployPlan {
    pub image: ImagePlan,
    pub service: Service,
    /// The revision the service runs now: the rollback target.
    pub current: TaskDefinitionDoc,
    pub containers: Vec<String>,
    /// The RegisterTaskDefinition body of the next revision.
    pub next: Value,
    pub diff: String,
    pub target_groups: Vec<String>,
}

impl DeployPlan {
    pub fn family(&self) -> &str {
        self.next
            .get("family")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// Looks the service up; a missing or inactive one is bad input.
pub async fn active_service(ecs: &dyn Ecs, cluster: &str, name: &str) -> Result<Service> {
    let service = ecs.service(cluster, name).await?.ok_or_else(|| {
        Error::bad_input(format!(
            "ECS service `{name}` not found in cluster `{cluster}`"
        ))
        .hint("check --cluster/--service (SHIPIT_CLUSTER/SHIPIT_SERVICE) and the AWS region")
    })?;
    if service.status != ServiceStatus::Active {
        return Err(Error::bad_input(format!(
            "ECS service `{name}` in cluster `{cluster}` is {}",
            service.status
        ))
        .hint("only an ACTIVE service can be deployed to; recreate it or pick another"));
    }
    if let Some(controller) = service
        .deployment_controller
        .as_deref()
        .filter(|c| *c != "ECS")
    {
        // UpdateService cannot change its task definition: refuse before registering anything.
        return Err(Error::bad_input(format!(
            "ECS service `{name}` uses the {controller} deployment controller; shipit deploys rolling (ECS) services"
        ))
        .hint(if controller == "CODE_DEPLOY" {
            "deploy it through CodeDeploy (blue/green), or recreate the service with the ECS controller"
        } else {
            "deploy it with the tool that owns its task sets, or recreate the service with the ECS controller"
        }));
    }
    Ok(service)
}

/// Another rollout is running when a deployment other than the PRIMARY still
/// has running tasks: ECS is moving the service between revisions.
pub fn rollout_in_progress(service: &Service) -> Option<String> {
    let primary = service
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary);
    let old = service
        .deployments
        .iter()
        .find(|d| d.status != DeploymentStatus::Primary && d.running_count > 0)?;
    Some(format!(
        "deployment {} ({}) still runs {} task(s) while {} rolls out",
        old.id,
        short(&old.task_definition),
        old.running_count,
        primary
            .map(|p| short(&p.task_definition))
            .unwrap_or("another revision")
    ))
}

/// The plan. `image` reuses an image plan already made (the caller needed it
/// to know whether to connect to the engine): two ECR calls fewer.
pub async fn plan(
    settings: &DeploySettings,
    commit: &Commit,
    deps: &Deps<'_>,
    image: Option<ImagePlan>,
) -> Result<DeployPlan> {
    let service = quiet_service(settings, deps.ecs).await?;
    let current = deps.ecs.task_definition(&service.task_definition).await?;
    let image = match image {
        Some(image) => image,
        None => pipeline::plan(&settings.image, commit, deps.registry).await?,
    };
    let base = match &settings.task_definition_file {
        Some(path) => task_definition_file(path)?,
        None => current.json.clone(),
    };
    let (containers, next) = next_revision(settings, commit, &image, &current, &base)?;
    let diff = taskdef::diff(&current.json, &next);
    let mut target_groups: Vec<String> = service
        .load_balancers
        .iter()
        .map(|lb| lb.target_group_arn.clone())
        .collect();
    target_groups.dedup();
    Ok(DeployPlan {
        image,
        service,
        current,
        containers,
        next,
        diff,
        target_groups,
    })
}

/// The service, once no other rollout is moving it (or at once, refusing,
/// without `--wait-for-rollout`).
async fn quiet_service(settings: &DeploySettings, ecs: &dyn Ecs) -> Result<Service> {
    let (cluster, name) = (&settings.service.cluster, &settings.service.service);
    let mut service = active_service(ecs, cluster, name).await?;
    let deadline = Instant::now() + settings.watch.timeout;
    while let Some(busy) = rollout_in_progress(&service) {
        if !settings.wait_for_rollout {
            return Err(Error::bad_input(format!(
                "another rollout is in progress on service `{}`: {busy}",
                service.name
            ))
            .hint(
                "wait for it to finish (or pass --wait-for-rollout); deploying now would fight it",
            ));
        }
        if Instant::now() >= deadline {
            return Err(Error::failed(format!(
                "the rollout in progress on `{}` did not finish in time: {busy}",
                service.name
            ))
            .hint("nothing was changed; look at `shipit status` and try again"));
        }
        tokio::time::sleep(settings.watch.poll_interval).await;
        service = active_service(ecs, cluster, name).await?;
    }
    Ok(service)
}

/// `--task-definition FILE`: a RegisterTaskDefinition request, or a
/// DescribeTaskDefinition answer, with `${VAR}` substituted.
fn task_definition_file(path: &std::path::Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        Error::bad_input(format!(
            "cannot read task definition file {}",
            path.display()
        ))
        .caused_by(&err)
        .hint("check that the file exists and that this user may read it")
    })?;
    let text = taskdef::substitute(&text, |name| std::env::var(name).ok())?;
    let value: Value = serde_json::from_str(&text).map_err(|err| {
        Error::bad_input(format!("task definition file {} is not valid JSON", path.display()))
            .caused_by(&err)
            .hint("the file holds a RegisterTaskDefinition request (or a DescribeTaskDefinition `taskDefinition`)")
    })?;
    Ok(match value.get("taskDefinition") {
        Some(inner) => inner.clone(),
        None => value,
    })
}

/// The containers that change and the RegisterTaskDefinition body of the next revision.
fn next_revision(
    settings: &DeploySettings,
    commit: &Commit,
    image: &ImagePlan,
    current: &TaskDefinitionDoc,
    base: &Value,
) -> Result<(Vec<String>, Value)> {
    let family = base
        .get("family")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let repository_uri = image
        .repository_uri
        .clone()
        .unwrap_or_else(|| format!("<new repository {}>", image.repository));
    if image.repository_uri.is_none() && settings.containers.is_empty() {
        // No container can use an image from a repository that does not exist yet.
        return Err(Error::bad_input(format!(
            "ECR repository `{}` does not exist yet, so shipit cannot tell which container of `{family}` to update",
            image.repository
        ))
        .hint("name the container(s) with --container <name> when creating the repository"));
    }
    let containers = taskdef::pick_containers(base, &settings.containers, &repository_uri, family)?;
    let mut changes = taskdef::Changes::default();
    let reference = format!("{repository_uri}:{}", image.tag);
    for name in &containers {
        changes.images.insert(name.clone(), reference.clone());
    }
    for (container, change) in &settings.changes {
        let target = if container.is_empty() {
            match containers.as_slice() {
                [one] => one.clone(),
                _ => {
                    return Err(Error::bad_input("--env/--secret/--docker-label without a container name, but several containers change")
                        .hint("prefix them with the container: --env app:KEY=VALUE"))
                }
            }
        } else {
            container.clone()
        };
        changes.containers.insert(target, change.clone());
    }
    changes.tags = vec![
        (tags::SHA.to_string(), commit.sha.full().to_string()),
        (tags::PREVIOUS.to_string(), current.arn.clone()),
    ];
    let carried: Vec<(String, String)> = current
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("shipit:"))
        .cloned()
        .collect();
    let next = taskdef::next_revision(base, &carried, &changes)?;
    Ok((containers, next))
}

/// The plan as a person reads it (what `shipit plan` prints).
pub fn render(plan: &DeployPlan, commit: &Commit) -> String {
    let mut out = String::new();
    let image = plan.image.reference().unwrap_or_else(|| {
        format!(
            "<new repository {}>:{}",
            plan.image.repository, plan.image.tag
        )
    });
    out.push_str(&format!("commit:        {}\n", commit.sha));
    match (&plan.image.existing_digest, plan.image.build) {
        (Some(digest), false) => out.push_str(&format!(
            "image:         {image} (already in ECR, {digest}: no build)\n"
        )),
        _ => out.push_str(&format!("image:         {image} (will build and push)\n")),
    }
    out.push_str(&format!(
        "service:       {} ({}, desired {})\n",
        plan.service.name, plan.service.status, plan.service.desired_count
    ));
    out.push_str(&format!("current:       {}\n", plan.current.arn));
    if !plan.current.tags.is_empty() {
        let tags: Vec<String> = plan
            .current
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("  tags:        {}\n", tags.join(", ")));
    }
    out.push_str(&format!(
        "next:          a new revision of `{}`, changing container(s) {}\n",
        plan.family(),
        plan.containers.join(", ")
    ));
    out.push_str(&format!("rollback to:   {}\n", plan.current.arn));
    if plan.target_groups.is_empty() {
        out.push_str("target groups: none (verdict from running tasks only)\n");
    }
    for tg in &plan.target_groups {
        out.push_str(&format!("target group:  {tg}\n"));
    }
    out.push_str("\ntask definition diff:\n");
    out.push_str(&plan.diff);
    out
}

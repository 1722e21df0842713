//! Everything a deploy works out before its first change: the service and
//! its current revision, the image, the next revision and its diff, the
//! rollback target. Only read calls; bad input fails here, with nothing changed.
//!
//! The checks, in order (issue 10's numbers):
//! - 16: only rolling (`ECS` controller, `ROLLING` strategy) services with
//!   target groups or no load balancer; blue/green, linear, canary and
//!   Classic Load Balancers are refused ([`supported_rollout`]).
//! - 13: a rollout in progress is refused (or waited for), except one that
//!   shipit already judged healthy and that only drains old tasks ([`blocking_rollout`]).
//! - 12: the rollback target must have served: a FAILED PRIMARY deployment is
//!   refused ([`serving_rollback_target`]); its images are looked up in ECR and
//!   a missing one is a loud warning ([`ecr_image`]).
//! - 3: a deployment alarm already in ALARM is refused ([`firing_alarms`]); a
//!   missing `cloudwatch:DescribeAlarms` permission is only a warning.
//! - 10: the reads the watch makes every poll (ListTasks/DescribeTasks,
//!   DescribeTargetHealth per target group) are made once here, so a missing
//!   permission is exit 2 with nothing changed ([`missing_permission`]).

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use crate::alarms::{AlarmState, AlarmStateValue};
use crate::arn::short;
use crate::ecr::Registry;
use crate::ecs::taskdef::ContainerChanges;
use crate::ecs::{
    tags, taskdef, DeploymentStatus, Ecs, RolloutState, Service, ServiceStatus, TaskDefinitionDoc,
};
use crate::error::{AwsErrorClass, Error, Result};
use crate::git::Commit;
use crate::image::pipeline::{self, ImagePlan};
use crate::report::{Event, Report};
use crate::settings::{DeploySettings, WatchSettings};
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
    /// The service's desired count before the change: a rollback restores it
    /// when this run changed it (`--desired-count`).
    pub desired_count_before: i32,
    /// The deployment alarms as read before the change.
    pub alarms: AlarmsChecked,
    /// The rollback target's images, looked up in ECR.
    pub rollback_images: Vec<ImageCheck>,
    /// What the plan found worth a warning; [`warn`] emits them as events.
    pub warnings: Vec<String>,
}

impl DeployPlan {
    pub fn family(&self) -> &str {
        self.next
            .get("family")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The images the changed containers run now, for the build's layer
    /// cache (with whether ECR still has them, as looked up for the rollback).
    pub fn running_images(&self) -> Vec<crate::image::cache::RunningImage> {
        self.rollback_images
            .iter()
            .filter(|c| self.containers.contains(&c.container))
            .map(|c| crate::image::cache::RunningImage {
                image: c.image.clone(),
                in_ecr: c.found != ImageFound::Missing,
            })
            .collect()
    }

    /// The rollback target's images that are no longer in ECR (a rollback
    /// to it would fail to pull them).
    pub fn missing_rollback_images(&self) -> Vec<&ImageCheck> {
        self.rollback_images
            .iter()
            .filter(|c| c.found == ImageFound::Missing)
            .collect()
    }
}

/// The service's deployment alarms, as the plan found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AlarmsChecked {
    /// No `deploymentConfiguration.alarms`, or not enabled.
    #[default]
    NotConfigured,
    /// Read with DescribeAlarms: none is in ALARM (else the plan refused).
    States(Vec<AlarmState>),
    /// Could not be read (the reason); the deploy goes on, with a warning.
    Unread(String),
}

/// One image of the rollback target, looked up in ECR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageCheck {
    pub container: String,
    pub image: String,
    pub found: ImageFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageFound {
    /// In ECR, with this digest.
    Present(String),
    /// Not in ECR any more: a rollback would fail to pull it.
    Missing,
    /// Not looked up (the reason: not in this account's ECR, pinned by digest, an error).
    NotChecked(String),
}

/// Emits the plan's warnings as events (the deploy and `shipit plan` call it).
pub fn warn(plan: &DeployPlan, report: &Report) {
    for message in &plan.warnings {
        report.emit(&Event::Warning {
            message: message.clone(),
        });
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
    supported_rollout(&service)?;
    Ok(service)
}

/// Issue 10 case 16: the rollouts shipit watches are ECS rolling updates
/// behind target groups (or no load balancer). ECS-native blue/green, linear
/// and canary deployments (`deploymentConfiguration.strategy`, an
/// `advancedConfiguration.alternateTargetGroupArn`) shift traffic between two
/// target groups with bake times and lifecycle hooks, which the verdict does
/// not follow; a Classic Load Balancer has no target health per task (and
/// ECS reports no `rolloutState` behind one:
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html).
/// Refused before anything is registered.
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html
pub fn supported_rollout(service: &Service) -> Result<()> {
    let name = &service.name;
    if let Some(strategy) = service
        .deployment_configuration
        .strategy
        .as_deref()
        .filter(|s| !s.is_empty() && *s != "ROLLING")
    {
        return Err(Error::bad_input(format!(
            "ECS service `{name}` uses the {strategy} deployment strategy; shipit deploys and watches rolling (ROLLING) deployments only"
        ))
        .hint(format!(
            "deploy it with a tool that drives {strategy} deployments (`aws ecs update-service`, the ECS console, CloudFormation/CDK), or switch the service to `deploymentConfiguration.strategy=ROLLING` to deploy it with shipit"
        )));
    }
    if let Some(lb) = service.load_balancers.iter().find(|lb| {
        lb.alternate_target_group_arn
            .as_deref()
            .is_some_and(|a| !a.is_empty())
    }) {
        return Err(Error::bad_input(format!(
            "ECS service `{name}` has an alternate target group ({}) for container {}:{} (advancedConfiguration, blue/green); shipit deploys and watches rolling deployments only",
            short(lb.alternate_target_group_arn.as_deref().unwrap_or_default()),
            lb.container_name,
            lb.container_port
        ))
        .hint("deploy it with a tool that drives ECS blue/green deployments (`aws ecs update-service`, the ECS console, CloudFormation/CDK), or remove the advancedConfiguration to deploy it rolling with shipit"));
    }
    if let Some(lb) = service
        .load_balancers
        .iter()
        .find(|lb| lb.target_group_arn.is_empty())
    {
        let elb = lb.load_balancer_name.as_deref().unwrap_or("<unnamed>");
        return Err(Error::bad_input(format!(
            "ECS service `{name}` is behind the Classic Load Balancer `{elb}`; shipit judges a rollout by the target health of ALB/NLB target groups, which a Classic Load Balancer does not have"
        ))
        .hint("move the service to an Application or Network Load Balancer target group (shipit supports those), or deploy it with `aws ecs update-service` and `aws ecs wait services-stable`"));
    }
    Ok(())
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

/// Issue 10 case 13: the rollout in progress that must be waited for, if
/// any. A previous rollout that shipit already judged healthy (the PRIMARY
/// deployment's revision is tagged `shipit:verdict=healthy`) or that ECS
/// reports COMPLETED, and whose PRIMARY deployment runs all its desired
/// tasks, only drains old tasks (the target group's deregistration delay):
/// it does not block the next deploy. `primary` is the PRIMARY deployment's
/// revision, when it was described.
pub fn blocking_rollout(service: &Service, primary: Option<&TaskDefinitionDoc>) -> Option<String> {
    let busy = rollout_in_progress(service)?;
    let Some(deployment) = service
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary)
    else {
        return Some(busy);
    };
    let judged_healthy = primary
        .filter(|doc| doc.arn == deployment.task_definition)
        .and_then(|doc| doc.tag(tags::VERDICT))
        == Some("healthy");
    let completed = deployment.rollout_state == Some(RolloutState::Completed);
    let all_running = deployment.running_count >= deployment.desired_count;
    if (judged_healthy || completed) && all_running {
        None
    } else {
        Some(busy)
    }
}

/// Issue 10 case 12: the revision the service runs becomes the rollback
/// target, so it must be one that served. A PRIMARY deployment in FAILED
/// (the circuit breaker stopped it, and did not roll back) launches no new
/// tasks and is no known-good state to return to
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html,
/// `rolloutState`). Waiting does not help: ECS will not retry it.
pub fn serving_rollback_target(service: &Service) -> Result<()> {
    let Some(primary) = service.deployments.iter().find(|d| {
        d.status == DeploymentStatus::Primary && d.rollout_state == Some(RolloutState::Failed)
    }) else {
        return Ok(());
    };
    let revision = short(&primary.task_definition);
    let why = primary
        .rollout_state_reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Err(Error::bad_input(format!(
        "the PRIMARY deployment {} of service `{}` ({revision}) is FAILED{why}: {revision} is not known to serve, so it cannot be the rollback target",
        primary.id, service.name
    ))
    .hint(format!(
        "put the service on a revision that serves first (`shipit rollback --cluster {} --service {} --to <revision>`), then deploy again",
        cluster_name(service),
        service.name
    )))
}

/// The cluster's name from the service ARN (`…:service/<cluster>/<name>`).
fn cluster_name(service: &Service) -> &str {
    if !service.cluster.is_empty() {
        return short(&service.cluster);
    }
    let mut parts = service.arn.rsplit('/');
    parts.next();
    parts.next().unwrap_or("<cluster>")
}

/// Issue 10 case 3: deployment alarms already in ALARM are refused. ECS
/// fails a deployment when an alarm *moves to* ALARM
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeploymentAlarms.html):
/// one that is firing already would never move, and ECS would not judge the
/// rollout by it.
pub fn firing_alarms(service: &Service, states: &[AlarmState]) -> Result<()> {
    let firing: Vec<&AlarmState> = states
        .iter()
        .filter(|a| a.state == AlarmStateValue::Alarm)
        .collect();
    if firing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = firing.iter().map(|a| a.name.as_str()).collect();
    let mut err = Error::bad_input(format!(
        "deployment alarm(s) of service `{}` already in ALARM: {}",
        service.name,
        names.join(", ")
    ));
    for alarm in &firing {
        if let Some(reason) = &alarm.reason {
            err = err.cause(format!("{}: {reason}", alarm.name));
        }
    }
    Err(err.hint(format!(
        "ECS fails a deployment only when one of its alarms moves into ALARM, so it would ignore an alarm that is already firing; fix what it reports (or silence it) first: aws cloudwatch describe-alarms --alarm-names {}",
        names.join(" ")
    )))
}

/// What the plan makes of DescribeAlarms' answer: the states (a configured
/// name CloudWatch does not know is a warning), a refusal when one is in
/// ALARM, or — when the states cannot be read (a missing
/// `cloudwatch:DescribeAlarms`, throttling) — a one-line warning.
pub fn check_alarms(
    service: &Service,
    answer: Result<Vec<AlarmState>>,
) -> Result<(AlarmsChecked, Vec<String>)> {
    let names = configured_alarms(service);
    let states = match answer {
        Ok(states) => states,
        Err(err) => {
            let what = match err.aws_class() {
                Some(AwsErrorClass::AccessDenied) => {
                    "cloudwatch:DescribeAlarms was refused".to_string()
                }
                _ => err.message().to_string(),
            };
            let warning = format!(
                "the deployment alarms of `{}` ({}) could not be read before the deploy ({what}): an alarm already in ALARM would go unnoticed, and ECS would ignore it",
                service.name,
                names.join(", ")
            );
            return Ok((AlarmsChecked::Unread(what), vec![warning]));
        }
    };
    firing_alarms(service, &states)?;
    let warnings = names
        .iter()
        .filter(|name| !states.iter().any(|s| &s.name == *name))
        .map(|name| {
            format!(
                "deployment alarm `{name}` of `{}` does not exist in CloudWatch (this account and region): ECS cannot judge the rollout by it",
                service.name
            )
        })
        .collect();
    Ok((AlarmsChecked::States(states), warnings))
}

/// The alarm names ECS watches during a deployment (enabled only).
fn configured_alarms(service: &Service) -> Vec<String> {
    match &service.deployment_configuration.alarms {
        Some(alarms) if alarms.enable => alarms.names.clone(),
        _ => Vec::new(),
    }
}

/// Issue 10 case 10: a read the watch needs, refused in the plan, is bad
/// input naming the permission (`elasticloadbalancing:DescribeTargetHealth`);
/// any other error passes through unchanged. `action` is the IAM action the
/// call needs, used when AWS's message does not name it.
pub fn missing_permission(err: Error, action: &str, what: &str) -> Error {
    if err.aws_class() != Some(AwsErrorClass::AccessDenied) {
        return err;
    }
    let action = denied_action(err.message()).unwrap_or_else(|| action.to_string());
    let cause = err.message().to_string();
    Error::bad_input(format!(
        "missing permission {action}: the watch reads {what} on every poll, so it could not judge the rollout; nothing was changed"
    ))
    .cause(cause)
    .hint(format!(
        "grant {action} to these credentials (the role shipit deploys with), then re-run the deploy"
    ))
    .with_aws(AwsErrorClass::AccessDenied, err.aws_code().map(str::to_string))
}

/// The IAM action an AccessDenied message names ("… is not authorized to
/// perform: elasticloadbalancing:DescribeTargetHealth …").
fn denied_action(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("to perform: ")?;
    let action: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
        .collect();
    action.contains(':').then_some(action)
}

/// A container image in this account's ECR: the repository and the tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcrImage {
    /// `<registry>/<repository>:<tag>` (no tag: `latest`).
    Tag { repository: String, tag: String },
    /// `<registry>/<repository>[:<tag>]@sha256:…`: the digest decides (a
    /// tag next to it is ignored by the pull).
    Digest { repository: String, digest: String },
}

/// Issue 10 case 12: whether `image` is in the ECR registry of this account
/// and region (`<account>.dkr.ecr.<region>.amazonaws.com[.cn]`, its dual-stack
/// `<account>.dkr-ecr.<region>.on.aws`, or the registry of shipit's own
/// repository, `registry_host`), and under which repository and tag.
/// https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html
pub fn ecr_image(image: &str, service_arn: &str, registry_host: Option<&str>) -> Option<EcrImage> {
    let (host, path) = image.split_once('/')?;
    let mut arn = service_arn.split(':');
    let (region, account) = (arn.nth(3).unwrap_or(""), arn.next().unwrap_or(""));
    let ours = registry_host == Some(host)
        || (!account.is_empty()
            && !region.is_empty()
            && (host.starts_with(&format!("{account}.dkr.ecr.{region}."))
                || host.starts_with(&format!("{account}.dkr-ecr.{region}."))));
    if !ours {
        return None;
    }
    if let Some((repository, digest)) = path.split_once('@') {
        let repository = repository.split(':').next().unwrap_or(repository);
        return Some(EcrImage::Digest {
            repository: repository.to_string(),
            digest: digest.to_string(),
        });
    }
    let (repository, tag) = path.rsplit_once(':').unwrap_or((path, "latest"));
    Some(EcrImage::Tag {
        repository: repository.to_string(),
        tag: tag.to_string(),
    })
}

/// Looks the rollback target's images up in ECR (issue 10 case 12): a
/// lifecycle policy may have expired one, and a rollback would then fail to
/// pull it. Never an error: a missing image is a loud warning.
async fn check_rollback_images(
    current: &TaskDefinitionDoc,
    service: &Service,
    registry: &dyn Registry,
    registry_host: Option<&str>,
) -> (Vec<ImageCheck>, Vec<String>) {
    let mut checks: Vec<ImageCheck> = Vec::new();
    let mut warnings = Vec::new();
    let revision = short(&current.arn);
    for (container, image) in taskdef::containers(&current.json) {
        let seen = checks.iter().find(|c| c.image == image);
        // `Ok(Some(digest))` present, `Ok(None)` missing, `Err` not checked.
        let looked_up: std::result::Result<Option<String>, String> =
            match (seen, ecr_image(image, &service.arn, registry_host)) {
                (_, None) => Err("not in this account's ECR".into()),
                (Some(seen), Some(_)) => {
                    // The same image, looked up once (and warned about once).
                    checks.push(ImageCheck {
                        container: container.to_string(),
                        image: image.to_string(),
                        found: seen.found.clone(),
                    });
                    continue;
                }
                (None, Some(EcrImage::Tag { repository, tag })) => {
                    registry.image_digest(&repository, &tag).await.map_err(|err| {
                        warnings.push(format!(
                            "the rollback target {revision}'s image {image} could not be looked up in ECR ({}): a rollback may fail to pull it",
                            err.message()
                        ));
                        err.message().to_string()
                    })
                }
                (None, Some(EcrImage::Digest { repository, digest })) => {
                    match registry.has_digest(&repository, &digest).await {
                        Ok(Some(true)) => Ok(Some(digest)),
                        Ok(Some(false)) => Ok(None),
                        Ok(None) => Err("pinned by digest".into()),
                        Err(err) => {
                            warnings.push(format!(
                                "the rollback target {revision}'s image {image} could not be looked up in ECR ({}): a rollback may fail to pull it",
                                err.message()
                            ));
                            Err(err.message().to_string())
                        }
                    }
                }
            };
        let found = match looked_up {
            Ok(Some(digest)) => ImageFound::Present(digest),
            Ok(None) => {
                warnings.push(format!(
                    "the rollback target {revision}'s image {image} (container {container}) no longer exists in ECR (a lifecycle policy may have expired it): a rollback would fail to pull it"
                ));
                ImageFound::Missing
            }
            Err(why) => ImageFound::NotChecked(why),
        };
        checks.push(ImageCheck {
            container: container.to_string(),
            image: image.to_string(),
            found,
        });
    }
    (checks, warnings)
}

/// The service's target groups, each once (a Classic Load Balancer has none).
fn target_groups(service: &Service) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for lb in &service.load_balancers {
        if !lb.target_group_arn.is_empty() && !groups.contains(&lb.target_group_arn) {
            groups.push(lb.target_group_arn.clone());
        }
    }
    groups
}

/// Issue 10 case 10: the reads the watch makes on every poll, made once now.
async fn exercise_watch_reads(
    deps: &Deps<'_>,
    cluster: &str,
    service: &Service,
    target_groups: &[String],
) -> Result<()> {
    deps.ecs
        .tasks(cluster, &service.name)
        .await
        .map_err(|err| {
            let action = if err.message().contains("describing tasks") {
                "ecs:DescribeTasks"
            } else {
                "ecs:ListTasks"
            };
            missing_permission(err, action, "the service's tasks")
        })?;
    for tg in target_groups {
        deps.elb.target_health(tg).await.map_err(|err| {
            missing_permission(
                err,
                "elasticloadbalancing:DescribeTargetHealth",
                &format!("the target health of target group `{}`", short(tg)),
            )
        })?;
    }
    Ok(())
}

/// The plan. `image` reuses an image plan already made (the caller needed it
/// to know whether to connect to the engine): two ECR calls fewer.
pub async fn plan(
    settings: &DeploySettings,
    commit: &Commit,
    deps: &Deps<'_>,
    image: Option<ImagePlan>,
) -> Result<DeployPlan> {
    let wait = settings.wait_for_rollout.then_some(&settings.watch);
    let (service, primary) = quiet_service(
        deps.ecs,
        &settings.service.cluster,
        &settings.service.service,
        wait,
    )
    .await?;
    let current = match primary {
        Some(doc) if doc.arn == service.task_definition => doc,
        _ => deps.ecs.task_definition(&service.task_definition).await?,
    };
    let mut warnings = Vec::new();
    let alarms = match (configured_alarms(&service), deps.alarms) {
        (names, _) if names.is_empty() => AlarmsChecked::NotConfigured,
        (_, None) => AlarmsChecked::Unread("no CloudWatch client".into()),
        (names, Some(client)) => {
            let (checked, found) = check_alarms(&service, client.states(&names).await)?;
            warnings.extend(found);
            checked
        }
    };
    let target_groups = target_groups(&service);
    exercise_watch_reads(deps, &settings.service.cluster, &service, &target_groups).await?;
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
    let registry_host = image
        .repository_uri
        .as_deref()
        .and_then(|uri| uri.split_once('/'))
        .map(|(host, _)| host);
    let (rollback_images, found) =
        check_rollback_images(&current, &service, deps.registry, registry_host).await;
    warnings.extend(found);
    Ok(DeployPlan {
        image,
        desired_count_before: service.desired_count,
        service,
        current,
        containers,
        next,
        diff,
        target_groups,
        alarms,
        rollback_images,
        warnings,
    })
}

/// The service, once no other rollout is moving it (or at once, refusing,
/// without `--wait-for-rollout`), and its PRIMARY deployment's revision when
/// it had to be described to tell (case 13).
/// `wait` is the watch's timeout and poll interval with `--wait-for-rollout`.
async fn quiet_service(
    ecs: &dyn Ecs,
    cluster: &str,
    name: &str,
    wait: Option<&WatchSettings>,
) -> Result<(Service, Option<TaskDefinitionDoc>)> {
    let mut service = active_service(ecs, cluster, name).await?;
    let started = Instant::now();
    let mut primary: Option<TaskDefinitionDoc> = None;
    loop {
        // First: a FAILED PRIMARY never finishes by itself, so it is refused, not waited for.
        serving_rollback_target(&service)?;
        if rollout_in_progress(&service).is_none() {
            break;
        }
        let primary_arn = service
            .deployments
            .iter()
            .find(|d| d.status == DeploymentStatus::Primary)
            .map(|d| d.task_definition.clone());
        if let Some(arn) = primary_arn {
            if primary.as_ref().map(|doc| &doc.arn) != Some(&arn) {
                primary = Some(ecs.task_definition(&arn).await?);
            }
        }
        let Some(busy) = blocking_rollout(&service, primary.as_ref()) else {
            break;
        };
        let Some(wait) = wait else {
            return Err(Error::bad_input(format!(
                "another rollout is in progress on service `{}`: {busy}",
                service.name
            ))
            .hint(
                "wait for it to finish (or pass --wait-for-rollout); deploying now would fight it",
            ));
        };
        if started.elapsed() >= wait.timeout {
            return Err(Error::failed(format!(
                "the rollout in progress on `{}` did not finish in time: {busy}",
                service.name
            ))
            .hint("nothing was changed; look at `shipit status` and try again"));
        }
        tokio::time::sleep(wait.poll_interval).await;
        service = active_service(ecs, cluster, name).await?;
    }
    Ok((service, primary))
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
    changes.containers = container_changes(&settings.changes, &containers)?;
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

/// The env/secret/label changes per container. Those named with a container
/// (`--env app:K=V`, `[ecs.environment.app]`) go to it; those without one
/// (`--env K=V`, flags only) go to the one container that changes, key by
/// key over what the file set for it (a flag wins over the file).
fn container_changes(
    requested: &BTreeMap<String, ContainerChanges>,
    changing: &[String],
) -> Result<BTreeMap<String, ContainerChanges>> {
    let mut changes: BTreeMap<String, ContainerChanges> = requested
        .iter()
        .filter(|(container, _)| !container.is_empty())
        .map(|(container, change)| (container.clone(), change.clone()))
        .collect();
    if let Some(unnamed) = requested.get("") {
        let [one] = changing else {
            return Err(Error::bad_input("--env/--secret/--docker-label without a container name, but several containers change")
                .hint("prefix them with the container: --env app:KEY=VALUE"));
        };
        let change = changes.entry(one.clone()).or_default();
        change.environment.extend(unnamed.environment.clone());
        change.secrets.extend(unnamed.secrets.clone());
        change.docker_labels.extend(unnamed.docker_labels.clone());
    }
    Ok(changes)
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
    for check in &plan.rollback_images {
        let found = match &check.found {
            ImageFound::Present(digest) => format!("in ECR, {digest}"),
            ImageFound::Missing => "MISSING from ECR: a rollback would fail to pull it".to_string(),
            ImageFound::NotChecked(why) => format!("not checked: {why}"),
        };
        out.push_str(&format!(
            "  image:       {} {} ({found})\n",
            check.container, check.image
        ));
    }
    match &plan.alarms {
        AlarmsChecked::NotConfigured => {}
        AlarmsChecked::States(states) => {
            let rollback = plan
                .service
                .deployment_configuration
                .alarms
                .as_ref()
                .is_some_and(|a| a.rollback);
            let listed: Vec<String> = states
                .iter()
                .map(|a| format!("{} {}", a.name, a.state))
                .collect();
            out.push_str(&format!(
                "alarms:        {} (deployment alarms, ECS {} on ALARM)\n",
                if listed.is_empty() {
                    "none found in CloudWatch".to_string()
                } else {
                    listed.join(", ")
                },
                if rollback {
                    "rolls back"
                } else {
                    "fails the deployment"
                }
            ));
        }
        AlarmsChecked::Unread(why) => {
            out.push_str(&format!("alarms:        not checked ({why})\n"));
        }
    }
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

#[cfg(test)]
mod tests {
    //! Each rule of the plan over AWS-shaped values (DescribeServices,
    //! DescribeAlarms, DescribeImages as the API references spell them).

    use super::*;
    use crate::ecr::{RegistryAuth, Repository, RepositoryOptions};
    use crate::ecs::{
        CircuitBreaker, Deployment, DeploymentAlarms, DeploymentConfiguration, LoadBalancerRef,
    };
    use crate::error::{ErrorKind, ExitCode};

    fn change(environment: &[(&str, &str)], secrets: &[(&str, &str)]) -> ContainerChanges {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        ContainerChanges {
            environment: map(environment),
            secrets: map(secrets),
            docker_labels: BTreeMap::new(),
        }
    }

    #[test]
    fn an_env_flag_without_a_container_adds_to_what_the_file_sets_for_the_changing_container() {
        // `[ecs.environment.app] LOG = "info"`, `REGION = "eu"`, a secret, and
        // `--env LOG=debug --env NEW=1` without a container name.
        let requested = BTreeMap::from([
            (
                "app".to_string(),
                change(&[("LOG", "info"), ("REGION", "eu")], &[("DB", "arn:db")]),
            ),
            (
                String::new(),
                change(&[("LOG", "debug"), ("NEW", "1")], &[]),
            ),
            ("proxy".to_string(), change(&[("MODE", "edge")], &[])),
        ]);
        let changes = container_changes(&requested, &["app".to_string()]).unwrap();
        assert_eq!(
            changes["app"],
            change(
                &[("LOG", "debug"), ("NEW", "1"), ("REGION", "eu")],
                &[("DB", "arn:db")]
            )
        );
        assert_eq!(changes["proxy"], change(&[("MODE", "edge")], &[]));
        assert!(!changes.contains_key(""));
    }

    #[test]
    fn an_env_flag_without_a_container_is_refused_when_several_containers_change() {
        let requested = BTreeMap::from([(String::new(), change(&[("LOG", "debug")], &[]))]);
        let err =
            container_changes(&requested, &["app".to_string(), "worker".to_string()]).unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Usage);
        assert!(err.hint_text().unwrap().contains("--env app:KEY=VALUE"));
    }

    const ACCOUNT: &str = "123456789012";
    const SERVICE_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/prod/web";
    const OLD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7";
    const PREV: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:6";
    const NEW: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8";
    const TG: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067";
    const TG_GREEN: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/0f1e2d3c4b5a6978";
    const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    fn deployment(
        id: &str,
        status: &str,
        td: &str,
        rollout: &str,
        counts: (i32, i32),
    ) -> Deployment {
        Deployment {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: Some(rollout.into()),
            desired_count: counts.0,
            running_count: counts.1,
            ..Default::default()
        }
    }

    fn target_group(arn: &str) -> LoadBalancerRef {
        LoadBalancerRef {
            target_group_arn: arn.into(),
            container_name: "app".into(),
            container_port: 8080,
            ..Default::default()
        }
    }

    /// `web` in `prod` on revision 7, one COMPLETED deployment, one `ip` target group.
    fn service() -> Service {
        Service {
            arn: SERVICE_ARN.into(),
            name: "web".into(),
            cluster: "arn:aws:ecs:us-east-1:123456789012:cluster/prod".into(),
            status: "ACTIVE".into(),
            desired_count: 1,
            task_definition: OLD.into(),
            deployments: vec![deployment(
                "ecs-svc/4919275820175283721",
                "PRIMARY",
                OLD,
                "COMPLETED",
                (1, 1),
            )],
            load_balancers: vec![target_group(TG)],
            deployment_controller: Some("ECS".into()),
            ..Default::default()
        }
    }

    fn revision(arn: &str, verdict: Option<&str>) -> TaskDefinitionDoc {
        let mut tags = vec![("shipit:sha".to_string(), "01d5".to_string())];
        if let Some(v) = verdict {
            tags.push((tags::VERDICT.to_string(), v.to_string()));
        }
        TaskDefinitionDoc {
            arn: arn.into(),
            json: serde_json::json!({
                "taskDefinitionArn": arn,
                "family": "web",
                "containerDefinitions": [
                    {"name": "app", "image": format!("{REGISTRY}/web:01d5"), "essential": true},
                    {"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable"},
                ],
            }),
            tags,
        }
    }

    fn refusal(result: Result<()>) -> Error {
        let err = result.expect_err("expected a refusal");
        assert_eq!(err.kind(), ErrorKind::BadInput, "{}", err.message());
        assert_eq!(err.exit_code(), ExitCode::Usage);
        assert!(err.hint_text().is_some(), "a refusal has a hint");
        err
    }

    /// DescribeServices answers, one per call (the last repeats), and the
    /// revisions DescribeTaskDefinition knows; every call is counted.
    struct Services {
        answers: std::sync::Mutex<std::collections::VecDeque<Service>>,
        revisions: Vec<TaskDefinitionDoc>,
        calls: std::sync::Mutex<Vec<String>>,
    }

    impl Services {
        fn new(answers: Vec<Service>, revisions: Vec<TaskDefinitionDoc>) -> Self {
            Self {
                answers: std::sync::Mutex::new(answers.into()),
                revisions,
                calls: Default::default(),
            }
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl Ecs for Services {
        async fn service(&self, _: &str, _: &str) -> Result<Option<Service>> {
            self.calls.lock().unwrap().push("DescribeServices".into());
            let mut answers = self.answers.lock().unwrap();
            let answer = if answers.len() > 1 {
                answers.pop_front()
            } else {
                answers.front().cloned()
            };
            Ok(answer)
        }
        async fn task_definition(&self, arn: &str) -> Result<TaskDefinitionDoc> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("DescribeTaskDefinition {}", short(arn)));
            Ok(self
                .revisions
                .iter()
                .find(|r| r.arn == arn)
                .cloned()
                .unwrap_or_else(|| revision(arn, None)))
        }
        async fn register_task_definition(&self, _: &Value) -> Result<String> {
            unreachable!("read calls only")
        }
        async fn update_service(&self, _: &crate::ecs::ServiceUpdate) -> Result<Service> {
            unreachable!("read calls only")
        }
        async fn tasks(&self, _: &str, _: &str) -> Result<Vec<crate::ecs::Task>> {
            Ok(vec![])
        }
        async fn tag_task_definition(&self, _: &str, _: &[(String, String)]) -> Result<()> {
            unreachable!("read calls only")
        }
        async fn deregister_task_definition(&self, _: &str) -> Result<()> {
            unreachable!("read calls only")
        }
        async fn task_definition_arns(&self, _: &str) -> Result<Vec<String>> {
            unreachable!("not needed")
        }
    }

    fn quick_wait() -> WatchSettings {
        WatchSettings {
            poll_interval: std::time::Duration::from_millis(1),
            timeout: std::time::Duration::from_secs(5),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn case_13_a_draining_healthy_rollout_costs_one_describe_and_is_reused_as_the_rollback_target(
    ) {
        let mut draining = service();
        draining.deployments = vec![
            deployment("ecs-svc/1", "PRIMARY", OLD, "IN_PROGRESS", (1, 1)),
            deployment("ecs-svc/0", "ACTIVE", PREV, "COMPLETED", (1, 1)),
        ];
        let ecs = Services::new(vec![draining], vec![revision(OLD, Some("healthy"))]);
        let (service, primary) = quiet_service(&ecs, "prod", "web", None).await.unwrap();
        assert_eq!(service.task_definition, OLD);
        assert_eq!(primary.map(|p| p.arn), Some(OLD.to_string()));
        assert_eq!(
            ecs.calls(),
            ["DescribeServices", "DescribeTaskDefinition web:7"]
        );
    }

    #[tokio::test]
    async fn case_13_a_genuine_rollout_is_refused_or_waited_for() {
        let busy = || {
            let mut s = service();
            s.deployments = vec![
                deployment("ecs-svc/1", "PRIMARY", OLD, "IN_PROGRESS", (2, 1)),
                deployment("ecs-svc/0", "ACTIVE", PREV, "COMPLETED", (2, 1)),
            ];
            s
        };
        let ecs = Services::new(vec![busy()], vec![]);
        let err = quiet_service(&ecs, "prod", "web", None).await.unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Usage);
        assert!(
            err.message().contains("another rollout is in progress"),
            "{}",
            err.message()
        );

        let ecs = Services::new(vec![busy(), busy(), service()], vec![]);
        let (service, _) = quiet_service(&ecs, "prod", "web", Some(&quick_wait()))
            .await
            .unwrap();
        assert_eq!(
            service.deployments.len(),
            1,
            "waited until the rollout was over"
        );
        assert_eq!(
            ecs.calls()
                .iter()
                .filter(|c| *c == "DescribeServices")
                .count(),
            3
        );
    }

    #[tokio::test]
    async fn case_12_a_failed_primary_is_refused_at_once_even_when_told_to_wait() {
        let mut stuck = service();
        stuck.deployments = vec![
            deployment("ecs-svc/1", "PRIMARY", NEW, "FAILED", (1, 0)),
            deployment("ecs-svc/0", "ACTIVE", OLD, "COMPLETED", (1, 1)),
        ];
        let ecs = Services::new(vec![stuck], vec![]);
        let err = quiet_service(&ecs, "prod", "web", Some(&quick_wait()))
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Usage);
        assert!(err.message().contains("is FAILED"), "{}", err.message());
        assert_eq!(
            ecs.calls(),
            ["DescribeServices"],
            "no waiting for a FAILED deployment"
        );
    }

    #[test]
    fn case_16_only_rolling_updates_behind_target_groups_are_deployed() {
        let with = |f: &dyn Fn(&mut Service)| {
            let mut s = service();
            f(&mut s);
            s
        };
        let strategy = |name: &'static str| {
            with(&move |s: &mut Service| {
                s.deployment_configuration.strategy = Some(name.into());
            })
        };
        let cases: Vec<(&str, Service, Option<&str>)> = vec![
            ("no strategy (rolling)", service(), None),
            ("ROLLING", strategy("ROLLING"), None),
            ("BLUE_GREEN", strategy("BLUE_GREEN"), Some("BLUE_GREEN")),
            ("LINEAR", strategy("LINEAR"), Some("LINEAR")),
            ("CANARY", strategy("CANARY"), Some("CANARY")),
            (
                "an alternate target group (advancedConfiguration)",
                with(&|s| s.load_balancers[0].alternate_target_group_arn = Some(TG_GREEN.into())),
                Some("alternate target group (web-green)"),
            ),
            (
                "a Classic Load Balancer",
                with(&|s| {
                    s.load_balancers = vec![LoadBalancerRef {
                        load_balancer_name: Some("web-classic".into()),
                        container_name: "app".into(),
                        container_port: 8080,
                        ..Default::default()
                    }]
                }),
                Some("Classic Load Balancer `web-classic`"),
            ),
            (
                "a target group and a Classic Load Balancer",
                with(&|s| {
                    s.load_balancers.push(LoadBalancerRef {
                        load_balancer_name: Some("legacy".into()),
                        ..Default::default()
                    })
                }),
                Some("Classic Load Balancer `legacy`"),
            ),
            (
                "no load balancer",
                with(&|s| s.load_balancers.clear()),
                None,
            ),
        ];
        for (case, service, refused) in cases {
            match refused {
                None => assert!(supported_rollout(&service).is_ok(), "{case}"),
                Some(words) => {
                    let err = refusal(supported_rollout(&service));
                    assert!(err.message().contains(words), "{case}: {}", err.message());
                    assert!(err.message().contains("`web`"), "{case}: names the service");
                    assert!(
                        err.hint_text().unwrap().contains("shipit"),
                        "{case}: the hint says what shipit supports"
                    );
                }
            }
        }
    }

    #[test]
    fn case_13_a_healthy_rollout_that_only_drains_does_not_block_a_genuine_one_does() {
        let draining = |primary_rollout: &str, primary_counts: (i32, i32)| {
            let mut s = service();
            s.deployments = vec![
                deployment("ecs-svc/1", "PRIMARY", OLD, primary_rollout, primary_counts),
                deployment("ecs-svc/0", "ACTIVE", PREV, "COMPLETED", (1, 1)),
            ];
            s
        };
        let healthy = revision(OLD, Some("healthy"));
        let failed = revision(OLD, Some("failed"));
        let untagged = revision(OLD, None);
        let other = revision(NEW, Some("healthy"));
        let cases: Vec<(&str, Service, Option<&TaskDefinitionDoc>, bool)> = vec![
            ("settled: one deployment", service(), None, false),
            (
                "previous deployment drained (runs 0)",
                {
                    let mut s = draining("IN_PROGRESS", (1, 1));
                    s.deployments[1].running_count = 0;
                    s
                },
                None,
                false,
            ),
            (
                "judged healthy by shipit, all new tasks running, old ones draining",
                draining("IN_PROGRESS", (1, 1)),
                Some(&healthy),
                false,
            ),
            (
                "ECS says COMPLETED, old tasks draining",
                draining("COMPLETED", (2, 2)),
                Some(&untagged),
                false,
            ),
            (
                "a rollout in progress nobody judged",
                draining("IN_PROGRESS", (1, 1)),
                Some(&untagged),
                true,
            ),
            (
                "judged healthy but not all its tasks run (scaling up in a new rollout)",
                draining("IN_PROGRESS", (3, 1)),
                Some(&healthy),
                true,
            ),
            (
                "tagged failed",
                draining("IN_PROGRESS", (1, 1)),
                Some(&failed),
                true,
            ),
            (
                "the tag of another revision proves nothing",
                draining("IN_PROGRESS", (1, 1)),
                Some(&other),
                true,
            ),
            ("not described", draining("IN_PROGRESS", (1, 1)), None, true),
        ];
        for (case, service, primary, blocks) in cases {
            let busy = blocking_rollout(&service, primary);
            assert_eq!(busy.is_some(), blocks, "{case}: {busy:?}");
            if let Some(busy) = busy {
                assert!(
                    busy.contains("web:6"),
                    "{case}: names the old revision: {busy}"
                );
            }
        }
    }

    #[test]
    fn case_12_a_failed_primary_deployment_is_no_rollback_target() {
        let mut failed = service();
        failed.deployment_configuration.circuit_breaker = Some(CircuitBreaker {
            enable: true,
            rollback: false,
        });
        failed.deployments[0].rollout_state = Some(RolloutState::Failed);
        failed.deployments[0].rollout_state_reason =
            Some("ECS deployment circuit breaker: tasks failed to start.".into());
        let err = refusal(serving_rollback_target(&failed));
        for words in [
            "FAILED",
            "ecs-svc/4919275820175283721",
            "web:7",
            "tasks failed to start",
        ] {
            assert!(err.message().contains(words), "{words}: {}", err.message());
        }
        assert!(
            err.hint_text()
                .unwrap()
                .contains("shipit rollback --cluster prod --service web"),
            "{:?}",
            err.hint_text()
        );

        // ECS rolled the failed deployment back: the FAILED one is no longer PRIMARY.
        let mut rolled_back = service();
        rolled_back.deployments = vec![
            deployment("ecs-svc/2", "PRIMARY", PREV, "IN_PROGRESS", (1, 1)),
            deployment("ecs-svc/1", "ACTIVE", OLD, "FAILED", (1, 0)),
        ];
        assert!(serving_rollback_target(&rolled_back).is_ok());
        assert!(serving_rollback_target(&service()).is_ok());
        let mut none = service();
        none.deployments.clear();
        assert!(serving_rollback_target(&none).is_ok());
    }

    fn with_alarms(names: &[&str], enable: bool) -> Service {
        let mut s = service();
        s.deployment_configuration = DeploymentConfiguration {
            alarms: Some(DeploymentAlarms {
                names: names.iter().map(|n| n.to_string()).collect(),
                enable,
                rollback: true,
            }),
            ..Default::default()
        };
        s
    }

    fn alarm(name: &str, state: &str) -> AlarmState {
        AlarmState {
            name: name.into(),
            state: state.into(),
            reason: Some(format!("Threshold Crossed: {name} is {state}")),
        }
    }

    #[test]
    fn case_3_an_alarm_already_in_alarm_is_refused_naming_it() {
        let service = with_alarms(&["web-5xx", "web-latency", "web-cpu"], true);
        let answer = Ok(vec![
            alarm("web-5xx", "ALARM"),
            alarm("web-latency", "OK"),
            alarm("web-cpu", "ALARM"),
        ]);
        let err = check_alarms(&service, answer).unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Usage);
        assert!(
            err.message()
                .ends_with("already in ALARM: web-5xx, web-cpu"),
            "{}",
            err.message()
        );
        assert!(err
            .causes()
            .iter()
            .any(|c| c.starts_with("web-5xx: Threshold Crossed")));
        let hint = err.hint_text().unwrap();
        assert!(
            hint.contains("ignore") && hint.contains("--alarm-names web-5xx web-cpu"),
            "{hint}"
        );
    }

    #[test]
    fn case_3_alarms_not_firing_are_recorded_and_unknown_ones_warned_about() {
        let service = with_alarms(&["web-5xx", "web-latency", "web-gone"], true);
        let answer = Ok(vec![
            alarm("web-5xx", "OK"),
            alarm("web-latency", "INSUFFICIENT_DATA"),
        ]);
        let (checked, warnings) = check_alarms(&service, answer).unwrap();
        let AlarmsChecked::States(states) = checked else {
            panic!("{checked:?}")
        };
        assert_eq!(states.len(), 2);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("`web-gone`") && warnings[0].contains("does not exist"));
    }

    #[test]
    fn case_3_alarms_that_cannot_be_read_are_a_warning_never_an_error() {
        let service = with_alarms(&["web-5xx"], true);
        let cases = [
            (
                Error::bad_input("describing the deployment alarms was refused: AccessDenied: User: arn:aws:sts::123456789012:assumed-role/deploy/ci is not authorized to perform: cloudwatch:DescribeAlarms")
                    .with_aws(AwsErrorClass::AccessDenied, Some("AccessDenied".into())),
                "cloudwatch:DescribeAlarms was refused",
            ),
            (
                Error::failed("describing the deployment alarms failed: Throttling: Rate exceeded")
                    .with_aws(AwsErrorClass::Throttled, Some("Throttling".into())),
                "Rate exceeded",
            ),
        ];
        for (err, words) in cases {
            let (checked, warnings) = check_alarms(&service, Err(err)).unwrap();
            assert!(
                matches!(&checked, AlarmsChecked::Unread(why) if why.contains(words)),
                "{checked:?}"
            );
            assert_eq!(warnings.len(), 1);
            assert!(
                warnings[0].contains("web-5xx") && warnings[0].contains(words),
                "{}",
                warnings[0]
            );
            assert!(!warnings[0].contains('\n'), "one line");
        }
    }

    #[test]
    fn case_3_only_enabled_alarms_are_checked() {
        assert!(configured_alarms(&with_alarms(&["web-5xx"], false)).is_empty());
        assert!(configured_alarms(&service()).is_empty());
        assert_eq!(
            configured_alarms(&with_alarms(&["web-5xx"], true)),
            ["web-5xx"]
        );
    }

    fn denied(operation: &str, action: Option<&str>) -> Error {
        let message = match action {
            Some(action) => format!("{operation} was refused: AccessDeniedException: User: arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci is not authorized to perform: {action} on resource: *"),
            None => format!("{operation} was refused: AccessDenied: Access denied"),
        };
        Error::bad_input(message)
            .hint("check the AWS credentials")
            .with_aws(
                AwsErrorClass::AccessDenied,
                Some("AccessDeniedException".into()),
            )
    }

    #[test]
    fn case_10_a_read_the_watch_needs_refused_in_the_plan_names_the_permission() {
        let cases = [
            (
                denied(
                    "describing target health of web",
                    Some("elasticloadbalancing:DescribeTargetHealth"),
                ),
                "elasticloadbalancing:DescribeTargetHealth",
            ),
            (
                denied("listing tasks of service `web`", Some("ecs:ListTasks")),
                "ecs:ListTasks",
            ),
            (
                // AWS's message does not name it: the action the call needs.
                denied("describing target health of web", None),
                "elasticloadbalancing:DescribeTargetHealth",
            ),
        ];
        for (err, action) in cases {
            let err = missing_permission(
                err,
                "elasticloadbalancing:DescribeTargetHealth",
                "the target health of target group `web`",
            );
            assert_eq!(err.exit_code(), ExitCode::Usage);
            assert!(
                err.message()
                    .starts_with(&format!("missing permission {action}:")),
                "{}",
                err.message()
            );
            assert!(err.message().contains("nothing was changed"));
            assert!(err
                .hint_text()
                .unwrap()
                .contains(&format!("grant {action}")));
            assert_eq!(err.aws_class(), Some(AwsErrorClass::AccessDenied));
            assert_eq!(err.causes().len(), 1, "AWS's own words are kept");
        }
        // Anything else passes through as it was (a throttled read is exit 1).
        let throttled = Error::failed("describing target health of web failed: Throttling")
            .with_aws(AwsErrorClass::Throttled, Some("Throttling".into()));
        let err = missing_permission(throttled, "elasticloadbalancing:DescribeTargetHealth", "x");
        assert_eq!(err.exit_code(), ExitCode::Failed);
        assert!(err.message().starts_with("describing target health"));
    }

    #[test]
    fn target_groups_are_listed_once_without_classic_load_balancers() {
        let mut s = service();
        s.load_balancers = vec![
            target_group(TG),
            target_group(TG_GREEN),
            target_group(TG),
            LoadBalancerRef {
                load_balancer_name: Some("legacy".into()),
                ..Default::default()
            },
        ];
        assert_eq!(target_groups(&s), [TG, TG_GREEN]);
    }

    #[test]
    fn case_12_which_images_are_in_this_accounts_ecr() {
        let tag = |repository: &str, tag: &str| {
            Some(EcrImage::Tag {
                repository: repository.into(),
                tag: tag.into(),
            })
        };
        let cases: Vec<(&str, Option<&str>, Option<EcrImage>)> = vec![
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:01d5",
                None,
                tag("web", "01d5"),
            ),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web",
                None,
                tag("team/web", "latest"),
            ),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:07a1b2c3",
                None,
                Some(EcrImage::Digest {
                    repository: "web".into(),
                    digest: "sha256:07a1b2c3".into(),
                }),
            ),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.2@sha256:07a1b2c3",
                None,
                Some(EcrImage::Digest {
                    repository: "web".into(),
                    digest: "sha256:07a1b2c3".into(),
                }),
            ),
            (
                "123456789012.dkr-ecr.us-east-1.on.aws/web:01d5",
                None,
                tag("web", "01d5"),
            ),
            // Another account or region: this account's registry client cannot see it.
            (
                "210987654321.dkr.ecr.us-east-1.amazonaws.com/web:1",
                None,
                None,
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1",
                None,
                None,
            ),
            ("public.ecr.aws/nginx/nginx:1.27", None, None),
            ("nginx:1.27", None, None),
            ("envoyproxy/envoy:v1.31", None, None),
            // An emulator's registry: the host of shipit's own repository.
            (
                "localhost:4566/web:abc",
                Some("localhost:4566"),
                tag("web", "abc"),
            ),
        ];
        for (image, host, want) in cases {
            assert_eq!(ecr_image(image, SERVICE_ARN, host), want, "{image}");
        }
    }

    /// ECR with some tags present.
    struct Images {
        present: Vec<(&'static str, &'static str)>,
        fail: bool,
        lookups: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Registry for Images {
        async fn repository(&self, _: &str) -> Result<Option<Repository>> {
            unreachable!("only image lookups")
        }
        async fn create_repository(&self, _: &str, _: &RepositoryOptions) -> Result<Repository> {
            unreachable!("read calls only")
        }
        async fn image_digest(&self, repository: &str, tag: &str) -> Result<Option<String>> {
            self.lookups
                .lock()
                .unwrap()
                .push(format!("{repository}:{tag}"));
            if self.fail {
                return Err(Error::bad_input(
                    "looking up web:01d5 in ECR was refused: AccessDeniedException",
                )
                .with_aws(AwsErrorClass::AccessDenied, None));
            }
            Ok(self
                .present
                .iter()
                .find(|(r, t)| *r == repository && *t == tag)
                .map(|_| "sha256:07a1b2c3d4e5f607".to_string()))
        }
        async fn has_digest(&self, repository: &str, digest: &str) -> Result<Option<bool>> {
            self.lookups
                .lock()
                .unwrap()
                .push(format!("{repository}@{digest}"));
            Ok(Some(
                self.present
                    .iter()
                    .any(|(r, d)| *r == repository && *d == digest),
            ))
        }
        async fn authorization(&self) -> Result<RegistryAuth> {
            unreachable!("no push")
        }
    }

    fn images(present: Vec<(&'static str, &'static str)>, fail: bool) -> Images {
        Images {
            present,
            fail,
            lookups: Default::default(),
        }
    }

    #[tokio::test]
    async fn case_12_the_rollback_targets_images_are_looked_up_and_a_missing_one_warned_about() {
        let mut current = revision(OLD, Some("healthy"));
        current.json["containerDefinitions"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "worker", "image": format!("{REGISTRY}/web:01d5")}));

        let ecr = images(vec![("web", "01d5")], false);
        let (checks, warnings) = check_rollback_images(&current, &service(), &ecr, None).await;
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            checks
                .iter()
                .map(|c| (c.container.as_str(), &c.found))
                .collect::<Vec<_>>(),
            [
                (
                    "app",
                    &ImageFound::Present("sha256:07a1b2c3d4e5f607".into())
                ),
                (
                    "log-router",
                    &ImageFound::NotChecked("not in this account's ECR".into())
                ),
                (
                    "worker",
                    &ImageFound::Present("sha256:07a1b2c3d4e5f607".into())
                ),
            ]
        );
        assert_eq!(
            *ecr.lookups.lock().unwrap(),
            ["web:01d5"],
            "one lookup per image"
        );

        let expired = images(vec![], false);
        let (checks, warnings) = check_rollback_images(&current, &service(), &expired, None).await;
        assert_eq!(checks[0].found, ImageFound::Missing);
        assert_eq!(
            checks[2].found,
            ImageFound::Missing,
            "the same image, looked up once"
        );
        assert_eq!(warnings.len(), 1, "one warning per image: {warnings:?}");
        for words in [
            "rollback target web:7",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:01d5",
            "no longer exists in ECR",
            "lifecycle policy",
            "fail to pull",
        ] {
            assert!(warnings[0].contains(words), "{words}: {}", warnings[0]);
        }

        let refused = images(vec![], true);
        let (checks, warnings) = check_rollback_images(&current, &service(), &refused, None).await;
        assert!(matches!(checks[0].found, ImageFound::NotChecked(_)));
        assert!(
            warnings[0].contains("could not be looked up"),
            "{warnings:?}"
        );
    }

    #[tokio::test]
    async fn case_12_an_image_pinned_by_digest_is_looked_up_by_its_digest() {
        let pinned = format!("{REGISTRY}/web@sha256:9f8e7d6c");
        let mut current = revision(OLD, Some("healthy"));
        current.json["containerDefinitions"] = serde_json::json!([
            {"name": "app", "image": pinned},
        ]);

        let ecr = images(vec![("web", "sha256:9f8e7d6c")], false);
        let (checks, warnings) = check_rollback_images(&current, &service(), &ecr, None).await;
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            checks[0].found,
            ImageFound::Present("sha256:9f8e7d6c".into())
        );
        assert_eq!(*ecr.lookups.lock().unwrap(), ["web@sha256:9f8e7d6c"]);

        let expired = images(vec![], false);
        let (checks, warnings) = check_rollback_images(&current, &service(), &expired, None).await;
        assert_eq!(checks[0].found, ImageFound::Missing);
        assert!(
            warnings[0].contains(&pinned) && warnings[0].contains("no longer exists in ECR"),
            "{warnings:?}"
        );
    }

    #[test]
    fn the_plan_shows_the_alarms_and_the_rollback_images() {
        let current = revision(OLD, Some("healthy"));
        let plan = DeployPlan {
            image: ImagePlan {
                repository: "web".into(),
                repository_uri: Some(format!("{REGISTRY}/web")),
                tag: "5a1f00d".into(),
                extra_tags: vec![],
                existing_digest: Some("sha256:8b1a".into()),
                build: false,
            },
            service: with_alarms(&["web-5xx", "web-latency"], true),
            current: current.clone(),
            containers: vec!["app".into()],
            next: serde_json::json!({"family": "web"}),
            diff: String::new(),
            target_groups: vec![TG.into()],
            desired_count_before: 1,
            alarms: AlarmsChecked::States(vec![
                alarm("web-5xx", "OK"),
                alarm("web-latency", "INSUFFICIENT_DATA"),
            ]),
            rollback_images: vec![
                ImageCheck {
                    container: "app".into(),
                    image: format!("{REGISTRY}/web:01d5"),
                    found: ImageFound::Missing,
                },
                ImageCheck {
                    container: "log-router".into(),
                    image: "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable".into(),
                    found: ImageFound::NotChecked("not in this account's ECR".into()),
                },
            ],
            warnings: vec![],
        };
        let commit = Commit {
            sha: crate::git::CommitSha::parse("5a1f00d2c0ffee0000000000000000000000a5e1").unwrap(),
            source: crate::git::ShaSource::Flag,
            dirty: false,
        };
        assert_eq!(plan.missing_rollback_images().len(), 1);
        let text = render(&plan, &commit);
        for line in [
            format!("rollback to:   {OLD}\n  image:       app {REGISTRY}/web:01d5 (MISSING from ECR: a rollback would fail to pull it)\n"),
            "  image:       log-router public.ecr.aws/aws-observability/aws-for-fluent-bit:stable (not checked: not in this account's ECR)\n".to_string(),
            "alarms:        web-5xx OK, web-latency INSUFFICIENT_DATA (deployment alarms, ECS rolls back on ALARM)\n".to_string(),
        ] {
            assert!(text.contains(&line), "{line}\nin:\n{text}");
        }
        let unread = DeployPlan {
            alarms: AlarmsChecked::Unread("cloudwatch:DescribeAlarms was refused".into()),
            ..plan
        };
        assert!(render(&unread, &commit)
            .contains("alarms:        not checked (cloudwatch:DescribeAlarms was refused)\n"));
    }
}

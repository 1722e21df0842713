//! One-off tasks of a revision: the `--before` steps of a deploy (database
//! migrations before the update) and `shipit run`.
//!
//! A one-off task is one `RunTask` of a revision, placed as the service
//! places its tasks (its awsvpc subnets, security groups and public-IP
//! setting, its launch type or capacity provider strategy, its platform
//! version), with the command of one container overridden. shipit follows it
//! to STOPPED, streams that container's awslogs lines as they arrive, and
//! judges it by the exit codes of the task's **essential** containers (a
//! non-essential sidecar does not decide). A task that is never placed
//! (RunTask `failures[]`), stops before it ran (`TaskFailedToStart`: image
//! pull, `ResourceInitializationError`) or outlives its timeout fails. A
//! signal stops it (`StopTask`).
//!
//! What is worked out before anything starts ([`placement`],
//! [`pick_container`], [`crate::argv::parse`]) fails as bad input; the verdict
//! ([`verdict`]) is a pure function of the stopped task.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::arn::short;
use crate::ecs::{RunFailure, Service, StopCode, Task, TaskRun, TaskStatus};
use crate::error::{Error, ExitCode, Result};
use crate::failure::ContainerLog;
use crate::logs::{self, LogFollower, LogLine};
use crate::outcome::TaskOutcome;
use crate::report::{Event, Report};
use crate::signals::Signals;
use crate::world::Deps;

/// `startedBy` of every task shipit runs (RunTask allows up to 128 letters,
/// digits, `-`, `_` and `/`). The service's watch counts only tasks started
/// by its deployment, so a one-off task is never taken for one of the service's.
pub const STARTED_BY_BEFORE: &str = "shipit/before";
pub const STARTED_BY_RUN: &str = "shipit/run";

/// One one-off task to run, fully worked out.
#[derive(Debug, Clone)]
pub struct OneOff {
    /// `before 1/2`, `run`: how the output names it.
    pub label: String,
    /// The RunTask request (revision, container, command, placement).
    pub run: TaskRun,
    /// The revision's task definition (essential containers, awslogs options).
    pub task_definition: Value,
    /// How long it may take, from RunTask to STOPPED.
    pub timeout: Duration,
    pub poll_interval: Duration,
    /// Last log lines kept for the failure report.
    pub log_lines: usize,
}

/// Where a one-off task of `service` runs: the service's placement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    pub cluster: String,
    pub network: Option<crate::ecs::NetworkConfiguration>,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Vec<crate::ecs::CapacityProviderItem>,
    pub platform_version: Option<String>,
}

/// How following a one-off task ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// It stopped (or never started, or timed out): see `success`.
    Done(TaskOutcome),
    /// A signal: the task was asked to stop (StopTask); exit 130/143.
    Interrupted(ExitCode, TaskOutcome),
}

/// The verdict on a stopped task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub success: bool,
    pub exit_code: Option<i32>,
    pub reason: String,
}

// ---------------------------------------------------------------- before anything starts

/// The service's placement for a task of `task_definition` in `cluster` (as
/// the user named it). A revision in awsvpc mode (every Fargate one) needs
/// subnets and security groups: from a service without an awsvpc
/// configuration, that is bad input.
pub fn placement(cluster: &str, service: &Service, task_definition: &Value) -> Result<Placement> {
    let mode = task_definition
        .get("networkMode")
        .and_then(Value::as_str)
        .unwrap_or("bridge");
    if mode == "awsvpc" && service.network_configuration.is_none() {
        return Err(Error::bad_input(format!(
            "service `{}` has no awsvpc network configuration, and its revision uses awsvpc networking: a one-off task needs the service's subnets and security groups",
            service.name
        ))
        .hint("give the service a networkConfiguration (aws ecs update-service --network-configuration …), then re-run; nothing was started"));
    }
    Ok(Placement {
        cluster: cluster.to_string(),
        network: service.network_configuration.clone(),
        // RunTask takes a launch type or a capacity provider strategy, never both.
        launch_type: service
            .launch_type
            .clone()
            .filter(|_| service.capacity_provider_strategy.is_empty()),
        capacity_provider_strategy: service.capacity_provider_strategy.clone(),
        platform_version: service.platform_version.clone(),
    })
}

/// The container whose command is overridden: `requested` (it must exist),
/// else `default` (the container a deploy updates), else the only container,
/// else the only essential one.
pub fn pick_container(
    task_definition: &Value,
    requested: Option<&str>,
    default: Option<&str>,
) -> Result<String> {
    let family = task_definition
        .get("family")
        .and_then(Value::as_str)
        .unwrap_or("the task definition");
    let all = crate::ecs::taskdef::containers(task_definition);
    let listing = || all.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    if let Some(name) = requested {
        if all.iter().any(|(n, _)| *n == name) {
            return Ok(name.to_string());
        }
        return Err(Error::bad_input(format!(
            "task definition `{family}` has no container `{name}` to run the command in"
        ))
        .cause(format!("its containers: {}", listing()))
        .hint("name one of the containers above (--container, --before-container, or `container` in [[ecs.before]]); nothing was started"));
    }
    if let Some(name) = default {
        return Ok(name.to_string());
    }
    let essentials = essential_containers(task_definition);
    match (all.as_slice(), essentials.as_slice()) {
        ([(only, _)], _) => Ok(only.to_string()),
        (_, [only]) => Ok(only.clone()),
        _ => Err(Error::bad_input(format!(
            "task definition `{family}` has several containers: which one runs the command?"
        ))
        .cause(format!("its containers: {}", listing()))
        .hint("name it with --container <name>; nothing was started")),
    }
}

/// Containers whose exit decides the task: `essential` defaults to true.
/// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#container_definition_essential
pub fn essential_containers(task_definition: &Value) -> Vec<String> {
    task_definition
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(|defs| {
            defs.iter()
                .filter(|c| c.get("essential").and_then(Value::as_bool).unwrap_or(true))
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The deploy's `--before` steps, as tasks of the revision `arn` (the one
/// `plan` registers). Called in the plan too, so that bad input (an unknown
/// container, a service without the network a task needs) stops the deploy
/// before anything is registered.
pub fn before_steps(
    settings: &crate::settings::DeploySettings,
    plan: &crate::plan::DeployPlan,
    arn: &str,
) -> Result<Vec<OneOff>> {
    if settings.before.is_empty() {
        return Ok(Vec::new());
    }
    let place = placement(&settings.service.cluster, &plan.service, &plan.next)?;
    let count = settings.before.len();
    settings
        .before
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let container = pick_container(
                &plan.next,
                step.container.as_deref(),
                plan.containers.first().map(String::as_str),
            )?;
            Ok(OneOff {
                label: if count == 1 {
                    "before".to_string()
                } else {
                    format!("before {}/{count}", i + 1)
                },
                run: task_run(
                    &place,
                    arn,
                    container,
                    step.command.clone(),
                    Vec::new(),
                    STARTED_BY_BEFORE,
                ),
                task_definition: plan.next.clone(),
                timeout: step.timeout,
                poll_interval: settings.watch.poll_interval,
                log_lines: settings.watch.log_lines,
            })
        })
        .collect()
}

/// For an error after the `--before` steps succeeded (the update failed, a
/// signal came): they ran, and a re-run runs them again.
pub fn already_ran(tasks: &[TaskOutcome]) -> Option<String> {
    let ran: Vec<String> = tasks
        .iter()
        .filter(|t| t.success)
        .map(|t| match &t.task_arn {
            Some(arn) => format!("{} ({})", t.label, crate::arn::short(arn)),
            None => t.label.clone(),
        })
        .collect();
    (!ran.is_empty()).then(|| {
        format!(
            "the --before step(s) already ran: {}; re-running the deploy runs them again",
            ran.join(", ")
        )
    })
}

/// The `--before` steps as the plan prints them.
pub fn render_steps(steps: &[OneOff]) -> String {
    let mut text = String::from(
        "\nbefore the update, in a task of the new revision on the service's network:\n",
    );
    for (i, step) in steps.iter().enumerate() {
        text.push_str(&format!(
            "  {}. {}: {} (timeout {})\n",
            i + 1,
            step.run.container,
            crate::argv::text(&step.run.command),
            humantime(step.timeout)
        ));
    }
    text
}

/// The RunTask request for one task of `arn` placed at `place`.
pub fn task_run(
    place: &Placement,
    arn: &str,
    container: String,
    command: Vec<String>,
    environment: Vec<(String, String)>,
    started_by: &str,
) -> TaskRun {
    TaskRun {
        cluster: place.cluster.clone(),
        task_definition: arn.to_string(),
        container,
        command,
        environment,
        network: place.network.clone(),
        launch_type: place.launch_type.clone(),
        capacity_provider_strategy: place.capacity_provider_strategy.clone(),
        platform_version: place.platform_version.clone(),
        started_by: started_by.to_string(),
    }
}

// ---------------------------------------------------------------- the verdict

/// The verdict on a STOPPED task: every essential container exited 0. The
/// exit code reported is the command container's when it failed, else the
/// first failing essential container's.
///
/// A container that never ran has no `exitCode` (the API leaves it out:
/// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Container.html),
/// and a task that could not start stops with `stopCode` `TaskFailedToStart`
/// (image pull, `ResourceInitializationError`, …:
/// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html).
pub fn verdict(task: &Task, essentials: &[String], command_container: &str) -> Verdict {
    let stopped = task.stopped_reason.clone().unwrap_or_default();
    if task.stop_code == Some(StopCode::TaskFailedToStart) {
        let why = task
            .containers
            .iter()
            .find_map(|c| c.reason.clone())
            .filter(|r| !stopped.contains(r.as_str()))
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        return Verdict {
            success: false,
            exit_code: None,
            reason: format!(
                "the task never started: {}{why}",
                crate::failure::truncate(if stopped.is_empty() {
                    "TaskFailedToStart"
                } else {
                    &stopped
                })
            ),
        };
    }
    let mut order: Vec<&String> = essentials
        .iter()
        .filter(|n| *n == command_container)
        .collect();
    order.extend(essentials.iter().filter(|n| *n != command_container));
    let mut failures = Vec::new();
    let mut code = None;
    for name in order {
        let state = task.containers.iter().find(|c| &c.name == name);
        match state.and_then(|c| c.exit_code) {
            Some(0) => {}
            Some(exit) => {
                code.get_or_insert(exit);
                let meaning = crate::failure::exit_meaning(exit)
                    .filter(|_| exit != 0)
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                failures.push(format!(
                    "container `{name}` exited with code {exit}{meaning}"
                ));
            }
            None => {
                let why = state
                    .and_then(|c| c.reason.clone())
                    .or_else(|| (!stopped.is_empty()).then(|| stopped.clone()))
                    .unwrap_or_else(|| "no reason given".into());
                failures.push(format!(
                    "container `{name}` has no exit code (it never ran to an end): {}",
                    crate::failure::truncate(&why)
                ));
            }
        }
    }
    if failures.is_empty() {
        return Verdict {
            success: true,
            exit_code: Some(0),
            reason: format!(
                "task {} exited 0 (essential containers: {})",
                task.id(),
                essentials.join(", ")
            ),
        };
    }
    let by = match task.stop_code.as_ref() {
        Some(StopCode::EssentialContainerExited) | None => String::new(),
        Some(other) if !stopped.is_empty() => format!(" (stopped: {other}, {stopped})"),
        Some(other) => format!(" (stopped: {other})"),
    };
    Verdict {
        success: false,
        exit_code: code,
        reason: format!("{}{by}", failures.join("; ")),
    }
}

/// RunTask placed no task: its `failures[]` in words (reasons such as
/// `RESOURCE:MEMORY`, `AGENT`, capacity provider messages:
/// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html).
pub fn not_placed(failures: &[RunFailure]) -> String {
    if failures.is_empty() {
        return "RunTask started no task and reported no failure".into();
    }
    let each: Vec<String> = failures
        .iter()
        .map(|f| match &f.detail {
            Some(detail) => format!("{} ({detail})", f.reason),
            None => f.reason.clone(),
        })
        .collect();
    format!("ECS could not place the task: {}", each.join("; "))
}

// ---------------------------------------------------------------- following a task

/// Runs `oneoff` and follows it to its end. Never `Err`: an AWS error is a
/// failed outcome that says so.
pub async fn run(
    oneoff: &OneOff,
    deps: &Deps<'_>,
    report: &Report,
    signals: &mut Signals,
) -> Ended {
    Follow::new(oneoff, deps, report).run(signals).await
}

/// Runs `oneoff` and returns once ECS placed it (`shipit run --detach`).
pub async fn start(oneoff: &OneOff, deps: &Deps<'_>, report: &Report) -> TaskOutcome {
    let mut follow = Follow::new(oneoff, deps, report);
    match follow.start().await {
        Ok(task) => {
            let mut outcome =
                follow.outcome(true, None, "started; not waited for (--detach)".into());
            outcome.task_arn = Some(task.arn);
            outcome
        }
        Err(reason) => follow.finish(false, None, reason),
    }
}

struct Follow<'a> {
    oneoff: &'a OneOff,
    deps: &'a Deps<'a>,
    report: &'a Report,
    started: Instant,
    task: Option<String>,
    follower: Option<LogFollower>,
    last: VecDeque<LogLine>,
}

impl<'a> Follow<'a> {
    fn new(oneoff: &'a OneOff, deps: &'a Deps<'a>, report: &'a Report) -> Self {
        Self {
            oneoff,
            deps,
            report,
            started: Instant::now(),
            task: None,
            follower: None,
            last: VecDeque::new(),
        }
    }

    async fn run(mut self, signals: &mut Signals) -> Ended {
        // RunTask is not raced with a signal: a task ECS started must be known,
        // to be stopped. A signal that came meanwhile is seen by the first wait.
        if let Some(code) = futures_util::FutureExt::now_or_never(signals.next()) {
            let reason = format!(
                "interrupted by {} before the task started",
                code.signal_name()
            );
            return Ended::Interrupted(code, self.finish(false, None, reason));
        }
        let started = self.start().await;
        let task = match started {
            Ok(task) => task,
            Err(reason) => return Ended::Done(self.finish(false, None, reason)),
        };
        let essentials = essential_containers(&self.oneoff.task_definition);
        let mut unseen = 0u32;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.oneoff.poll_interval) => {}
                code = signals.next() => {
                    let reason = format!("interrupted by {}", code.signal_name());
                    let stopped = self.stop(&task.arn, &format!("shipit: {reason}")).await;
                    self.read_logs().await;
                    let outcome = self.finish(false, None, format!("{reason}; {stopped}"));
                    return Ended::Interrupted(code, outcome);
                }
            }
            self.read_logs().await;
            match self
                .deps
                .ecs
                .describe_task(&self.oneoff.run.cluster, &task.arn)
                .await
            {
                Ok(Some(now)) if now.last_status == TaskStatus::Stopped => {
                    self.drain_logs().await;
                    let v = verdict(&now, &essentials, &self.oneoff.run.container);
                    return Ended::Done(self.finish(v.success, v.exit_code, v.reason));
                }
                Ok(Some(now)) => {
                    unseen = 0;
                    self.report.emit(&Event::Waiting {
                        what: format!(
                            "{}: task {} is {}",
                            self.oneoff.label,
                            task.id(),
                            now.last_status
                        ),
                    });
                }
                Ok(None) | Err(_) if unseen < 4 => unseen += 1,
                Ok(None) => {
                    return Ended::Done(self.finish(
                        false,
                        None,
                        format!(
                            "ECS no longer knows task {} (DescribeTasks: MISSING)",
                            task.arn
                        ),
                    ))
                }
                Err(err) => {
                    let stopped = self
                        .stop(&task.arn, "shipit: could not follow the task")
                        .await;
                    return Ended::Done(self.finish(
                        false,
                        None,
                        format!(
                            "could not follow task {}: {}; {stopped}",
                            task.id(),
                            err.message()
                        ),
                    ));
                }
            }
            if self.started.elapsed() >= self.oneoff.timeout {
                let limit = humantime(self.oneoff.timeout);
                let stopped = self
                    .stop(&task.arn, &format!("shipit: did not finish within {limit}"))
                    .await;
                self.read_logs().await;
                return Ended::Done(self.finish(
                    false,
                    None,
                    format!(
                        "task {} did not finish within {limit}; {stopped}",
                        task.id()
                    ),
                ));
            }
        }
    }

    /// RunTask; `Err` is why no task runs.
    async fn start(&mut self) -> std::result::Result<Task, String> {
        let run = &self.oneoff.run;
        let started = self
            .deps
            .ecs
            .run_task(run)
            .await
            .map_err(|err| format!("RunTask failed: {}", err.message()))?;
        let Some(task) = started.tasks.into_iter().next() else {
            return Err(not_placed(&started.failures));
        };
        self.task = Some(task.arn.clone());
        self.report.emit(&Event::OneOffStarted {
            label: self.oneoff.label.clone(),
            task: task.arn.clone(),
            task_definition: run.task_definition.clone(),
            container: run.container.clone(),
            command: run.command.clone(),
        });
        match logs::source(&self.oneoff.task_definition, &run.container, task.id()) {
            Ok(source) if self.deps.logs.is_some() => {
                self.follower = Some(LogFollower::new(source));
            }
            Ok(_) => {}
            Err(why) => self.report.emit(&Event::Info {
                message: format!("{}: its output is not streamed: {why}", self.oneoff.label),
            }),
        }
        Ok(task)
    }

    /// New log lines, each reported as it is read. A read that fails stops the
    /// streaming (said once); the verdict never depends on it.
    async fn read_logs(&mut self) {
        let (Some(follower), Some(reader)) = (self.follower.as_mut(), self.deps.logs) else {
            return;
        };
        match follower.read_new(reader).await {
            Ok(lines) => {
                for line in lines {
                    self.report.emit(&Event::OneOffLog {
                        label: self.oneoff.label.clone(),
                        task: self.task.clone().unwrap_or_default(),
                        container: self.oneoff.run.container.clone(),
                        line: line.message.clone(),
                    });
                    self.last.push_back(line);
                    if self.last.len() > self.oneoff.log_lines.max(1) {
                        self.last.pop_front();
                    }
                }
            }
            Err(err) => {
                let group = follower.source.group.clone();
                self.follower = None;
                self.report.emit(&Event::Warning {
                    message: format!(
                        "{}: its log lines cannot be read ({}); shipit needs logs:GetLogEvents on {group}",
                        self.oneoff.label,
                        err.message()
                    ),
                });
            }
        }
    }

    /// After STOPPED: the driver's last lines may reach CloudWatch a moment
    /// later, so read until a read brings nothing (at most 3 s of waiting).
    async fn drain_logs(&mut self) {
        for _ in 0..3 {
            let before = self.last.len();
            self.read_logs().await;
            if self.follower.is_none() || (self.last.len() == before && before > 0) {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// StopTask; says what became of it.
    async fn stop(&self, arn: &str, reason: &str) -> String {
        match self
            .deps
            .ecs
            .stop_task(&self.oneoff.run.cluster, arn, reason)
            .await
        {
            Ok(()) => format!("the task was stopped (StopTask {})", short(arn)),
            Err(err) => format!(
                "the task could not be stopped ({}); stop it with: aws ecs stop-task --cluster {} --task {arn}",
                err.message(),
                self.oneoff.run.cluster
            ),
        }
    }

    fn outcome(&self, success: bool, exit_code: Option<i32>, reason: String) -> TaskOutcome {
        TaskOutcome {
            label: self.oneoff.label.clone(),
            task_arn: self.task.clone(),
            task_definition: self.oneoff.run.task_definition.clone(),
            container: self.oneoff.run.container.clone(),
            command: self.oneoff.run.command.clone(),
            success,
            exit_code,
            reason,
            seconds: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            last_lines: Vec::new(),
        }
    }

    /// The outcome, reported: the verdict line and, on a failure, the last
    /// log lines as a block (as the failure report prints them).
    fn finish(&self, success: bool, exit_code: Option<i32>, reason: String) -> TaskOutcome {
        let mut outcome = self.outcome(success, exit_code, reason);
        self.report.emit(&Event::OneOffFinished {
            label: outcome.label.clone(),
            task: outcome.task_arn.clone(),
            success,
            exit_code,
            reason: outcome.reason.clone(),
        });
        if !success && !self.last.is_empty() && self.oneoff.log_lines > 0 {
            let lines: Vec<LogLine> = self.last.iter().cloned().collect();
            let id = self
                .task
                .as_deref()
                .map(|t| t.rsplit('/').next().unwrap_or(t))
                .unwrap_or_default();
            let log = ContainerLog::lines(id, &self.oneoff.run.container, &lines);
            outcome.last_lines = log.lines.clone();
            self.report.emit(&Event::FailureLogs { logs: vec![log] });
        }
        outcome
    }
}

fn humantime(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ecs::ContainerState;

    fn stopped(containers: &[(&str, Option<i32>)], stop_code: &str, reason: &str) -> Task {
        Task {
            arn: "arn:aws:ecs:us-east-1:123456789012:task/prod/0a1b2c3d".into(),
            last_status: TaskStatus::Stopped,
            stop_code: Some(StopCode::from_wire(stop_code)),
            stopped_reason: Some(reason.into()),
            containers: containers
                .iter()
                .map(|(name, exit)| ContainerState {
                    name: (*name).into(),
                    exit_code: *exit,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn two_essentials() -> Vec<String> {
        vec!["app".into(), "proxy".into()]
    }

    #[test]
    fn every_essential_container_must_exit_0() {
        let ok = stopped(
            &[("app", Some(0)), ("proxy", Some(0)), ("side", Some(7))],
            "EssentialContainerExited",
            "Essential container in task exited",
        );
        let v = verdict(&ok, &two_essentials(), "app");
        assert!(v.success, "{v:?}");
        assert_eq!(v.exit_code, Some(0));

        let proxy_failed = stopped(
            &[("app", Some(0)), ("proxy", Some(1))],
            "EssentialContainerExited",
            "Essential container in task exited",
        );
        let v = verdict(&proxy_failed, &two_essentials(), "app");
        assert!(!v.success);
        assert_eq!(v.exit_code, Some(1), "{v:?}");
        assert!(
            v.reason.contains("container `proxy` exited with code 1"),
            "{v:?}"
        );
    }

    #[test]
    fn the_command_containers_code_is_the_one_reported() {
        let both = stopped(
            &[("app", Some(3)), ("proxy", Some(137))],
            "EssentialContainerExited",
            "Essential container in task exited",
        );
        let v = verdict(&both, &two_essentials(), "app");
        assert_eq!(v.exit_code, Some(3), "{v:?}");
        let v = verdict(&both, &two_essentials(), "proxy");
        assert_eq!(v.exit_code, Some(137), "{v:?}");
        assert!(v.reason.contains("SIGKILL"), "{v:?}");
    }

    #[test]
    fn a_non_essential_sidecar_does_not_decide() {
        let t = stopped(
            &[("app", Some(0)), ("side", Some(7))],
            "EssentialContainerExited",
            "Essential container in task exited",
        );
        assert!(verdict(&t, &["app".into()], "app").success);
    }

    #[test]
    fn a_task_that_failed_to_start_has_no_exit_code_and_says_why() {
        let t = stopped(
            &[("app", None)],
            "TaskFailedToStart",
            "ResourceInitializationError: unable to pull secrets or registry auth",
        );
        let v = verdict(&t, &["app".into()], "app");
        assert!(!v.success);
        assert_eq!(v.exit_code, None);
        assert!(
            v.reason
                .contains("never started: ResourceInitializationError"),
            "{v:?}"
        );
    }

    #[test]
    fn an_essential_container_without_an_exit_code_fails() {
        let mut t = stopped(&[("app", None)], "UserInitiated", "Task stopped by user");
        t.containers[0].reason = Some("CannotStartContainerError: exec format error".into());
        let v = verdict(&t, &["app".into()], "app");
        assert!(!v.success);
        assert!(
            v.reason.contains("no exit code") && v.reason.contains("exec format"),
            "{v:?}"
        );
        assert!(v.reason.contains("UserInitiated"), "{v:?}");
    }

    #[test]
    fn run_task_failures_are_said_in_words() {
        let text = not_placed(&[RunFailure {
            arn: Some("arn:aws:ecs:us-east-1:123456789012:container-instance/x".into()),
            reason: "RESOURCE:MEMORY".into(),
            detail: None,
        }]);
        assert_eq!(text, "ECS could not place the task: RESOURCE:MEMORY");
        assert!(not_placed(&[]).contains("no failure"));
    }

    #[test]
    fn an_awsvpc_revision_needs_the_services_network_configuration() {
        let td = json!({"networkMode": "awsvpc", "containerDefinitions": []});
        let service = Service {
            name: "web".into(),
            ..Default::default()
        };
        let err = placement("prod", &service, &td).unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Usage);
        assert!(err.hint_text().is_some());
        let bridge = json!({"networkMode": "bridge", "containerDefinitions": []});
        assert!(placement("prod", &service, &bridge).is_ok());
    }

    #[test]
    fn a_capacity_provider_strategy_wins_over_a_launch_type() {
        let service = Service {
            launch_type: Some("FARGATE".into()),
            capacity_provider_strategy: vec![crate::ecs::CapacityProviderItem {
                capacity_provider: "FARGATE_SPOT".into(),
                weight: 1,
                base: 0,
            }],
            network_configuration: Some(Default::default()),
            platform_version: Some("1.4.0".into()),
            ..Default::default()
        };
        let p = placement("prod", &service, &json!({"networkMode": "awsvpc"})).unwrap();
        assert_eq!(p.launch_type, None);
        assert_eq!(p.capacity_provider_strategy.len(), 1);
        assert_eq!(p.platform_version.as_deref(), Some("1.4.0"));
    }

    #[test]
    fn the_container_is_the_named_one_the_default_or_the_only_essential_one() {
        let td = json!({"family": "web", "containerDefinitions": [
            {"name": "app", "image": "a"},
            {"name": "log-router", "image": "b", "essential": false},
        ]});
        assert_eq!(pick_container(&td, None, None).unwrap(), "app");
        assert_eq!(
            pick_container(&td, Some("log-router"), None).unwrap(),
            "log-router"
        );
        assert_eq!(pick_container(&td, None, Some("app")).unwrap(), "app");
        let err = pick_container(&td, Some("worker"), None).unwrap_err();
        assert_eq!(err.exit_code(), ExitCode::Usage);
        assert!(err.causes()[0].contains("app, log-router"), "{err:?}");
        let two = json!({"family": "web", "containerDefinitions": [
            {"name": "app", "image": "a"}, {"name": "worker", "image": "b"}]});
        assert!(pick_container(&two, None, None).is_err());
    }
}

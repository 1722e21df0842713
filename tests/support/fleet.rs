//! A scripted cluster of several services deployed from one build (issue
//! 13), on the [`FakeAws`] endpoint: the aws_shaped tests and the
//! calls-per-poll benchmark share it.
//!
//! Service `i` of `n` runs revision `<name>:7` (one task, deployment
//! `OLD_DEP + i`) and goes to `<name>:8` (deployment `NEW_DEP + i`, one task
//! that turns healthy at once). Services with a load balancer are behind one
//! target group each, or one shared by all with `shared_target_group`.

#![allow(dead_code)]

use serde_json::json;

use super::aws::*;

pub const CLUSTER: &str = "prod";
pub const REPOSITORY: &str = "web";
pub const SHA: &str = "5a1f00d2c0ffee0000000000000000000000a5e1";
pub const OLD_SHA: &str = "01d5000000000000000000000000000000000007";
pub const DIGEST: &str = "sha256:8b1a9953c4611296a827abf8c47804d7e6c49c6b2a4f1f1f3b1b1b2b3c4d5e6f";

pub fn revision(name: &str, n: u32) -> String {
    task_definition_arn(name, n)
}

/// The services of the cluster and how they are load balanced.
pub struct Cluster {
    pub names: Vec<String>,
    /// `Some(target group)` for a service behind a load balancer.
    pub target_groups: Vec<Option<String>>,
}

impl Cluster {
    /// `n` services `svc-0`…; those with `i % lb_every == 0` behind a target
    /// group (`lb_every` 0: none), their own or all the same one.
    pub fn new(names: &[&str], behind_lb: &[bool], shared_target_group: bool) -> Self {
        let target_groups = names
            .iter()
            .zip(behind_lb)
            .map(|(name, lb)| {
                lb.then(|| target_group_arn(if shared_target_group { "shared" } else { name }))
            })
            .collect();
        Cluster {
            names: names.iter().map(|s| s.to_string()).collect(),
            target_groups,
        }
    }

    fn old_dep(i: usize) -> String {
        deployment_id(4_000 + i as u64)
    }

    fn new_dep(i: usize) -> String {
        deployment_id(6_000 + i as u64)
    }

    fn ip(i: usize, new: bool) -> String {
        format!("10.0.{}.{}", if new { 2 } else { 1 }, 10 + i)
    }

    fn service(&self, i: usize, revision_n: u32, deployments: Vec<DeploymentDoc>) -> ServiceDoc {
        let name = &self.names[i];
        let mut doc = ServiceDoc::new(CLUSTER, name, &revision(name, revision_n), 1)
            .set("/deployments", json!([]));
        if let Some(tg) = &self.target_groups[i] {
            doc = doc.target_group(tg, "app", 8080);
        }
        for d in deployments {
            doc = doc.deployment(d);
        }
        doc
    }

    fn task(&self, i: usize, new: bool) -> TaskDoc {
        let name = &self.names[i];
        let (n, dep) = if new {
            (8, Self::new_dep(i))
        } else {
            (7, Self::old_dep(i))
        };
        let doc = TaskDoc::running(
            &task_arn(CLUSTER, (i as u64) * 10 + u64::from(n)),
            &revision(name, n),
            &dep,
            "app",
            &Self::ip(i, new),
        )
        .set("/group", json!(format!("service:{name}")));
        if new {
            doc
        } else {
            doc.started_at(now() - 3_600.0)
        }
    }

    /// One moment of every service: before the deploy, or all on revision 8 and healthy.
    fn frame(&self, deployed: bool) -> Frame {
        let mut services = (0..self.names.len()).map(|i| {
            if deployed {
                self.service(
                    i,
                    8,
                    vec![DeploymentDoc::new(
                        &Self::new_dep(i),
                        "PRIMARY",
                        &revision(&self.names[i], 8),
                        "COMPLETED",
                    )
                    .counts(1, 1, 0)],
                )
            } else {
                self.service(
                    i,
                    7,
                    vec![DeploymentDoc::new(
                        &Self::old_dep(i),
                        "PRIMARY",
                        &revision(&self.names[i], 7),
                        "COMPLETED",
                    )
                    .counts(1, 1, 0)
                    .created_at(now() - 86_000.0)],
                )
            }
        });
        let mut frame = Frame::new(services.next().unwrap());
        for service in services {
            frame = frame.also(service);
        }
        let mut by_group: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
        for i in 0..self.names.len() {
            frame = frame.task(self.task(i, deployed));
            if let Some(tg) = &self.target_groups[i] {
                let t = target(&Self::ip(i, deployed), 8080, "healthy");
                match by_group.iter_mut().find(|(g, _)| g == tg) {
                    Some((_, targets)) => targets.push(t),
                    None => by_group.push((tg.clone(), vec![t])),
                }
            }
        }
        for (tg, targets) in by_group {
            frame = frame.targets(&tg, targets);
        }
        frame
    }

    /// Two moments of every service at rest on revision 7 and healthy, but
    /// `failing`, which is rolling out revision 8 (PRIMARY IN_PROGRESS,
    /// revision 7 ACTIVE): its new task is provisioning, then has exited 3.
    /// What `shipit watch` of several services attaches to.
    pub fn failing_frames(&self, failing: usize) -> Vec<Frame> {
        let moment = |crashed: bool| {
            let mut frame: Option<Frame> = None;
            let mut by_group: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
            for i in 0..self.names.len() {
                let name = &self.names[i];
                let service = if i == failing {
                    self.service(
                        i,
                        8,
                        vec![
                            DeploymentDoc::new(
                                &Self::new_dep(i),
                                "PRIMARY",
                                &revision(name, 8),
                                "IN_PROGRESS",
                            )
                            .counts(1, 0, u32::from(crashed) as i32)
                            .created_at(now() - 60.0),
                            DeploymentDoc::new(
                                &Self::old_dep(i),
                                "ACTIVE",
                                &revision(name, 7),
                                "COMPLETED",
                            )
                            .counts(1, 1, 0)
                            .created_at(now() - 86_000.0),
                        ],
                    )
                } else {
                    self.service(
                        i,
                        7,
                        vec![DeploymentDoc::new(
                            &Self::old_dep(i),
                            "PRIMARY",
                            &revision(name, 7),
                            "COMPLETED",
                        )
                        .counts(1, 1, 0)
                        .created_at(now() - 86_000.0)],
                    )
                };
                frame = Some(match frame {
                    None => Frame::new(service),
                    Some(frame) => frame.also(service),
                });
                let mut f = frame.take().unwrap().task(self.task(i, false));
                if i == failing {
                    let new = self.task(i, true);
                    f = f.task(if crashed {
                        new.stopped(
                            "EssentialContainerExited",
                            "Essential container in task exited",
                        )
                        .container_exit(Some(3), None)
                    } else {
                        new.status("PROVISIONING", "RUNNING")
                    });
                }
                frame = Some(f);
                if let Some(tg) = &self.target_groups[i] {
                    let t = target(&Self::ip(i, false), 8080, "healthy");
                    match by_group.iter_mut().find(|(g, _)| g == tg) {
                        Some((_, targets)) => targets.push(t),
                        None => by_group.push((tg.clone(), vec![t])),
                    }
                }
            }
            let mut frame = frame.unwrap();
            for (tg, targets) in by_group {
                frame = frame.targets(&tg, targets);
            }
            frame
        };
        vec![moment(false), moment(true)]
    }

    /// The scripted account: the image is in ECR, each service's revision 7
    /// is described, RegisterTaskDefinition answers `<family>:8`,
    /// UpdateService answers each service on its new deployment, and once
    /// every service was updated they are all healthy.
    pub async fn world(&self) -> FakeAws {
        let aws = FakeAws::start().await;
        aws.on("ECR.DescribeRepositories")
            .when("repositoryNames", REPOSITORY)
            .reply(Reply::Doc(ecr_repositories(REPOSITORY)));
        aws.on("ECR.DescribeImages")
            .reply(ecr_image_not_found(REPOSITORY, "?"));
        aws.on("ECR.DescribeImages")
            .when("imageIds", SHA)
            .reply(Reply::Doc(ecr_images(REPOSITORY, SHA, DIGEST)));
        aws.on("ECR.DescribeImages")
            .when("imageIds", OLD_SHA)
            .reply(Reply::Doc(ecr_images(REPOSITORY, OLD_SHA, DIGEST)));
        for (i, name) in self.names.iter().enumerate() {
            let old = revision(name, 7);
            aws.on("ECS.DescribeTaskDefinition")
                .when("taskDefinition", &old)
                .reply(Reply::Doc(describe_task_definition(
                    task_definition(
                        &old,
                        "app",
                        &format!("{}:{OLD_SHA}", ecr_uri(REPOSITORY)),
                        8080,
                    ),
                    &[("shipit:sha", OLD_SHA), ("shipit:verdict", "healthy")],
                )));
            aws.on("ECS.RegisterTaskDefinition")
                .when("family", name)
                .reply(Reply::Registered(revision(name, 8)));
            aws.on("ECS.UpdateService")
                .when("service", name)
                .reply(Reply::Doc(json!({"service": self.service(
                    i,
                    8,
                    vec![
                        DeploymentDoc::new(&Self::new_dep(i), "PRIMARY", &revision(name, 8), "IN_PROGRESS").counts(1, 0, 0),
                        DeploymentDoc::new(&Self::old_dep(i), "ACTIVE", &revision(name, 7), "COMPLETED").counts(1, 1, 0),
                    ],
                ).0})));
        }
        aws.before(vec![self.frame(false)]);
        let news: Vec<String> = self.names.iter().map(|n| revision(n, 8)).collect();
        let news: Vec<&str> = news.iter().map(String::as_str).collect();
        aws.after_updates_to(&news, vec![self.frame(true)]);
        aws
    }

    /// `shipit deploy` of every service (`--service` each, in order), with
    /// 1 s polls and a 1 s settle, as CI runs it; the result object and stderr.
    pub fn deploy_args(&self, dir: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "deploy",
            "-C",
            dir,
            "--sha",
            SHA,
            "--repository",
            REPOSITORY,
            "--cluster",
            CLUSTER,
            "--poll-interval",
            "1s",
            "--settle",
            "1s",
            "--timeout",
            "30s",
            "--output",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for name in &self.names {
            args.push("--service".into());
            args.push(name.clone());
        }
        args
    }
}

/// The watch's polls: DescribeServices calls from the first UpdateService to
/// the first `shipit:verdict` tag, counted as the watch makes them (one poll
/// asks for up to 10 services per call: `per_poll` calls make one poll).
pub fn watch_calls(aws: &FakeAws) -> Vec<Call> {
    let calls = aws.calls();
    let start = calls
        .iter()
        .rposition(|c| c.operation == "ECS.UpdateService")
        .map_or(calls.len(), |i| i + 1);
    calls[start..]
        .iter()
        .take_while(|c| c.operation != "ECS.TagResource")
        .cloned()
        .collect()
}

/// How many of `calls` are of `operation`.
pub fn count(calls: &[Call], operation: &str) -> usize {
    calls.iter().filter(|c| c.operation == operation).count()
}

//! The ECS adapter (aws-sdk-ecs). Task definitions travel as raw JSON in both
//! directions — captured from the DescribeTaskDefinition response and put as
//! the RegisterTaskDefinition request body, before signing — so fields this
//! code does not model survive a re-registration unchanged.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::{DesiredStatus, TaskDefinitionField};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;

use super::{
    CapacityProviderItem, CircuitBreaker, ContainerState, Deployment, DeploymentAlarms,
    DeploymentConfiguration, DeploymentStatus, DesiredStatus as TaskDesiredStatus, Ecs,
    HealthStatus, LoadBalancerRef, NetworkConfiguration, PortBinding, RolloutState, Service,
    ServiceDeployment, ServiceDeploymentRollback, ServiceDeploymentStatus, ServiceEvent,
    ServiceStatus, ServiceUpdate, StopCode, Task, TaskDefinitionDoc, TaskStatus,
};
use super::{RunFailure, RunStarted, TaskRun};
use crate::aws_error::sdk_error;
use crate::error::{Error, Result};

pub struct AwsEcs {
    client: aws_sdk_ecs::Client,
}

impl AwsEcs {
    pub fn new(config: &aws_config::SdkConfig, calls: &crate::api_calls::ApiCalls) -> Self {
        let config = aws_sdk_ecs::config::Builder::from(config)
            .interceptor(calls.clone())
            .build();
        Self {
            client: aws_sdk_ecs::Client::from_conf(config),
        }
    }

    /// The service's running and recently stopped task ARNs (ListTasks per
    /// desired status, paged).
    async fn task_arns(&self, cluster: &str, service: &str) -> Result<Vec<String>> {
        let mut arns: Vec<String> = Vec::new();
        for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
            // One page (100 tasks) covers most services; larger ones page on.
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .list_tasks()
                    .cluster(cluster)
                    .service_name(service)
                    .desired_status(status.clone())
                    .max_results(100)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|err| {
                        sdk_error(&format!("listing tasks of service `{service}`"), err)
                    })?;
                arns.extend(out.task_arns().iter().cloned());
                match out.next_token() {
                    Some(next) if !next.is_empty() => token = Some(next.to_string()),
                    _ => break,
                }
            }
        }
        Ok(arns)
    }

    /// DescribeTasks in batches of 100, plus the EC2 instance of each
    /// bridge/host task. `whose` names the tasks' service(s) in errors.
    async fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
        whose: &str,
    ) -> Result<Vec<Task>> {
        let mut tasks = Vec::with_capacity(arns.len());
        for batch in arns.chunks(100) {
            let out = self
                .client
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|err| sdk_error(&format!("describing tasks of {whose}"), err))?;
            tasks.extend(out.tasks().iter().map(task_from));
        }
        // EC2 launch type without awsvpc (bridge/host: published host ports, no
        // task IP): ELB knows the task by its instance. An awsvpc task that has
        // no IP yet has no host ports either, and costs no extra call.
        let instances: Vec<String> = tasks
            .iter()
            .filter(|t| {
                t.private_ip.is_none()
                    && t.ipv6.is_none()
                    && !t.bindings.is_empty()
                    && t.last_status != TaskStatus::Stopped
            })
            .filter_map(|t| t.container_instance_arn.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut ids = std::collections::HashMap::new();
        for batch in instances.chunks(100) {
            let out = self
                .client
                .describe_container_instances()
                .cluster(cluster)
                .set_container_instances(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|err| {
                    sdk_error(
                        &format!("describing container instances of `{cluster}`"),
                        err,
                    )
                })?;
            for ci in out.container_instances() {
                if let (Some(arn), Some(id)) = (ci.container_instance_arn(), ci.ec2_instance_id()) {
                    ids.insert(arn.to_string(), id.to_string());
                }
            }
        }
        for task in &mut tasks {
            if let Some(arn) = &task.container_instance_arn {
                task.instance_id = ids.get(arn).cloned();
            }
        }
        Ok(tasks)
    }
}

/// Puts a prepared JSON body on the request (and fixes Content-Length) before it is signed.
#[derive(Debug)]
struct ReplaceBody(bytes::Bytes);

impl Intercept for ReplaceBody {
    fn name(&self) -> &'static str {
        "ShipitReplaceBody"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        *request.body_mut() = SdkBody::from(self.0.clone());
        request
            .headers_mut()
            .insert("content-length", self.0.len().to_string());
        Ok(())
    }
}

/// Keeps the raw response body of the last attempt.
#[derive(Debug, Clone, Default)]
struct CaptureBody(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for CaptureBody {
    fn name(&self) -> &'static str {
        "ShipitCaptureBody"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(bytes) = context.response().body().bytes() {
            *self.0.lock().unwrap() = Some(bytes.to_vec());
        }
        Ok(())
    }
}

fn epoch(dt: Option<&aws_smithy_types::DateTime>) -> Option<f64> {
    dt.map(|d| d.as_secs_f64())
}

fn service_from(svc: &aws_sdk_ecs::types::Service) -> Service {
    Service {
        arn: svc.service_arn().unwrap_or_default().to_string(),
        name: svc.service_name().unwrap_or_default().to_string(),
        cluster: svc.cluster_arn().unwrap_or_default().to_string(),
        status: ServiceStatus::from_wire(svc.status().unwrap_or_default()),
        desired_count: svc.desired_count(),
        task_definition: svc.task_definition().unwrap_or_default().to_string(),
        deployment_controller: svc
            .deployment_controller()
            .map(|c| c.r#type().as_str().to_string()),
        deployments: svc.deployments().iter().map(deployment_from).collect(),
        load_balancers: svc
            .load_balancers()
            .iter()
            .map(|lb| LoadBalancerRef {
                target_group_arn: lb.target_group_arn().unwrap_or_default().to_string(),
                container_name: lb.container_name().unwrap_or_default().to_string(),
                container_port: lb.container_port().unwrap_or_default(),
                load_balancer_name: lb.load_balancer_name().map(str::to_string),
                alternate_target_group_arn: lb
                    .advanced_configuration()
                    .and_then(|a| a.alternate_target_group_arn())
                    .map(str::to_string),
            })
            .collect(),
        events: svc
            .events()
            .iter()
            .map(|e| ServiceEvent {
                id: e.id().unwrap_or_default().to_string(),
                created_at: epoch(e.created_at()).unwrap_or_default(),
                message: e.message().unwrap_or_default().to_string(),
            })
            .collect(),
        health_check_grace_seconds: svc.health_check_grace_period_seconds().unwrap_or(0),
        deployment_configuration: svc
            .deployment_configuration()
            .map(deployment_configuration_from)
            .unwrap_or_default(),
        network_configuration: svc
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
            .map(|vpc| NetworkConfiguration {
                subnets: vpc.subnets().to_vec(),
                security_groups: vpc.security_groups().to_vec(),
                assign_public_ip: vpc.assign_public_ip().map(|a| a.as_str() == "ENABLED"),
            }),
        launch_type: svc.launch_type().map(|l| l.as_str().to_string()),
        capacity_provider_strategy: svc
            .capacity_provider_strategy()
            .iter()
            .map(|c| CapacityProviderItem {
                capacity_provider: c.capacity_provider().to_string(),
                weight: c.weight(),
                base: c.base(),
            })
            .collect(),
        platform_version: svc.platform_version().map(str::to_string),
    }
}

fn deployment_from(d: &aws_sdk_ecs::types::Deployment) -> Deployment {
    Deployment {
        id: d.id().unwrap_or_default().to_string(),
        status: DeploymentStatus::from_wire(d.status().unwrap_or_default()),
        task_definition: d.task_definition().unwrap_or_default().to_string(),
        rollout_state: d
            .rollout_state()
            .map(|s| RolloutState::from_wire(s.as_str())),
        rollout_state_reason: d.rollout_state_reason().map(str::to_string),
        desired_count: d.desired_count(),
        running_count: d.running_count(),
        failed_tasks: d.failed_tasks(),
        created_at: epoch(d.created_at()),
        updated_at: epoch(d.updated_at()),
    }
}

fn deployment_configuration_from(
    c: &aws_sdk_ecs::types::DeploymentConfiguration,
) -> DeploymentConfiguration {
    DeploymentConfiguration {
        maximum_percent: c.maximum_percent(),
        minimum_healthy_percent: c.minimum_healthy_percent(),
        circuit_breaker: c.deployment_circuit_breaker().map(|b| CircuitBreaker {
            enable: b.enable(),
            rollback: b.rollback(),
        }),
        alarms: c.alarms().map(|a| DeploymentAlarms {
            names: a.alarm_names().to_vec(),
            enable: a.enable(),
            rollback: a.rollback(),
        }),
        strategy: c.strategy().map(|s| s.as_str().to_string()),
        bake_time_minutes: c.bake_time_in_minutes(),
    }
}

fn service_deployment_from(sd: &aws_sdk_ecs::types::ServiceDeployment) -> ServiceDeployment {
    ServiceDeployment {
        arn: sd.service_deployment_arn().unwrap_or_default().to_string(),
        status: sd
            .status()
            .map(|s| ServiceDeploymentStatus::from_wire(s.as_str()))
            .unwrap_or_default(),
        status_reason: sd.status_reason().map(str::to_string),
        created_at: epoch(sd.created_at()),
        finished_at: epoch(sd.finished_at()),
        target_revision: sd
            .target_service_revision()
            .and_then(|r| r.arn())
            .map(str::to_string),
        rollback: sd.rollback().map(|r| ServiceDeploymentRollback {
            reason: r.reason().map(str::to_string),
            started_at: epoch(r.started_at()),
            service_revision_arn: r.service_revision_arn().map(str::to_string),
        }),
        circuit_breaker: sd
            .deployment_circuit_breaker()
            .map(|c| (c.failure_count(), c.threshold())),
        alarm_names: sd
            .alarms()
            .map(|a| a.alarm_names().to_vec())
            .unwrap_or_default(),
        triggered_alarms: sd
            .alarms()
            .map(|a| a.triggered_alarm_names().to_vec())
            .unwrap_or_default(),
    }
}

/// The task's address in awsvpc mode: an ENI attachment detail, else the container's interface.
fn attachment_detail(task: &aws_sdk_ecs::types::Task, name: &str) -> Option<String> {
    task.attachments()
        .iter()
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some(name))
        .and_then(|d| d.value())
        .map(str::to_string)
}

fn task_from(task: &aws_sdk_ecs::types::Task) -> Task {
    let private_ip = attachment_detail(task, "privateIPv4Address").or_else(|| {
        task.containers()
            .iter()
            .flat_map(|c| c.network_interfaces())
            .find_map(|n| n.private_ipv4_address())
            .map(str::to_string)
    });
    let ipv6 = attachment_detail(task, "ipv6Address").or_else(|| {
        task.containers()
            .iter()
            .flat_map(|c| c.network_interfaces())
            .find_map(|n| n.ipv6_address())
            .map(str::to_string)
    });
    Task {
        arn: task.task_arn().unwrap_or_default().to_string(),
        task_definition: task.task_definition_arn().unwrap_or_default().to_string(),
        last_status: TaskStatus::from_wire(task.last_status().unwrap_or_default()),
        desired_status: TaskDesiredStatus::from_wire(task.desired_status().unwrap_or_default()),
        started_by: task.started_by().map(str::to_string),
        stopped_reason: task.stopped_reason().map(str::to_string),
        stop_code: task.stop_code().map(|c| StopCode::from_wire(c.as_str())),
        health_status: task
            .health_status()
            .map(|h| HealthStatus::from_wire(h.as_str())),
        containers: task
            .containers()
            .iter()
            .map(|c| ContainerState {
                name: c.name().unwrap_or_default().to_string(),
                last_status: c.last_status().map(str::to_string),
                exit_code: c.exit_code(),
                reason: c.reason().map(str::to_string),
                health_status: c
                    .health_status()
                    .map(|h| HealthStatus::from_wire(h.as_str())),
            })
            .collect(),
        private_ip,
        ipv6,
        created_at: epoch(task.created_at()),
        started_at: epoch(task.started_at()),
        stopped_at: epoch(task.stopped_at()),
        container_instance_arn: task.container_instance_arn().map(str::to_string),
        instance_id: None,
        bindings: task
            .containers()
            .iter()
            .flat_map(|c| {
                c.network_bindings().iter().filter_map(|b| {
                    Some(PortBinding {
                        container: c.name()?.to_string(),
                        container_port: b.container_port()?,
                        host_port: b.host_port()?,
                    })
                })
            })
            .collect(),
    }
}

#[async_trait]
impl Ecs for AwsEcs {
    async fn service(&self, cluster: &str, service: &str) -> Result<Option<Service>> {
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|err| {
                if err.code() == Some("ClusterNotFoundException") {
                    Error::bad_input(format!("ECS cluster `{cluster}` does not exist"))
                        .hint("check --cluster / SHIPIT_CLUSTER and the AWS region")
                } else {
                    sdk_error(
                        &format!("describing ECS service `{service}` in cluster `{cluster}`"),
                        err,
                    )
                }
            })?;
        Ok(out.services().first().map(service_from))
    }

    async fn task_definition(&self, arn: &str) -> Result<TaskDefinitionDoc> {
        let capture = CaptureBody::default();
        self.client
            .describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .customize()
            .interceptor(capture.clone())
            .send()
            .await
            .map_err(|err| {
                if err.code() == Some("ClientException") {
                    Error::bad_input(format!("task definition `{arn}` does not exist"))
                        .cause(err.message().unwrap_or_default().to_string())
                        .hint("check the revision, ARN or SHA given")
                } else {
                    sdk_error(&format!("describing task definition `{arn}`"), err)
                }
            })?;
        let raw = capture
            .0
            .lock()
            .unwrap()
            .take()
            .ok_or_else(|| Error::failed("DescribeTaskDefinition returned no body"))?;
        let response: Value = serde_json::from_slice(&raw).map_err(|err| {
            Error::failed("DescribeTaskDefinition returned a body that is not JSON").caused_by(&err)
        })?;
        let json = response
            .get("taskDefinition")
            .cloned()
            .unwrap_or(Value::Null);
        let tags = response
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| {
                        Some((
                            t.get("key")?.as_str()?.to_string(),
                            t.get("value")?.as_str().unwrap_or("").to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let arn = json
            .get("taskDefinitionArn")
            .and_then(Value::as_str)
            .unwrap_or(arn)
            .to_string();
        Ok(TaskDefinitionDoc { arn, json, tags })
    }

    async fn register_task_definition(&self, body: &Value) -> Result<String> {
        use aws_sdk_ecs::types::ContainerDefinition;
        let family = body
            .get("family")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let bytes = bytes::Bytes::from(serde_json::to_vec(body).expect("JSON value serializes"));
        // The typed input is a placeholder: the interceptor sends `body` instead.
        let out = self
            .client
            .register_task_definition()
            .family(&family)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("placeholder")
                    .image("placeholder")
                    .build(),
            )
            .customize()
            .interceptor(ReplaceBody(bytes))
            .send()
            .await
            .map_err(|err| {
                let error = sdk_error(
                    &format!("registering a revision of task definition family `{family}`"),
                    err,
                );
                error.hint(
                    "the service was not changed; check the task definition fields named above",
                )
            })?;
        out.task_definition()
            .and_then(|td| td.task_definition_arn())
            .map(str::to_string)
            .ok_or_else(|| Error::failed("RegisterTaskDefinition returned no ARN"))
    }

    async fn update_service(&self, update: &ServiceUpdate) -> Result<Service> {
        let out = self
            .client
            .update_service()
            .cluster(&update.cluster)
            .service(&update.service)
            .task_definition(&update.task_definition)
            .set_desired_count(update.desired_count)
            .force_new_deployment(update.force_new_deployment)
            .send()
            .await
            .map_err(|err| sdk_error(&format!("updating ECS service `{}`", update.service), err))?;
        out.service()
            .map(service_from)
            .ok_or_else(|| Error::failed("UpdateService returned no service"))
    }

    async fn tasks(&self, cluster: &str, service: &str) -> Result<Vec<Task>> {
        let arns = self.task_arns(cluster, service).await?;
        self.describe_tasks(cluster, &arns, &format!("service `{service}`"))
            .await
    }

    async fn services(&self, cluster: &str, names: &[String]) -> Result<Vec<Option<Service>>> {
        // "You may specify up to 10 services to describe in a single operation."
        // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServices.html
        let mut found: Vec<Service> = Vec::with_capacity(names.len());
        for batch in names.chunks(10) {
            let out = self
                .client
                .describe_services()
                .cluster(cluster)
                .set_services(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|err| {
                    if err.code() == Some("ClusterNotFoundException") {
                        Error::bad_input(format!("ECS cluster `{cluster}` does not exist"))
                            .hint("check --cluster / SHIPIT_CLUSTER and the AWS region")
                    } else {
                        sdk_error(
                            &format!(
                                "describing ECS services {} in cluster `{cluster}`",
                                batch.join(", ")
                            ),
                            err,
                        )
                    }
                })?;
            // A name ECS does not know comes back in `failures` (MISSING), not `services`.
            found.extend(out.services().iter().map(service_from));
        }
        // The answer's order is not the request's: match by name or ARN.
        Ok(names
            .iter()
            .map(|name| {
                found
                    .iter()
                    .find(|s| &s.name == name || &s.arn == name)
                    .cloned()
            })
            .collect())
    }

    async fn tasks_of(&self, cluster: &str, services: &[String]) -> Result<Vec<Vec<Task>>> {
        // ListTasks filters by one `serviceName`, so each service is listed on
        // its own; DescribeTasks then takes the tasks of all of them, 100 per
        // call ("A list of up to 100 task IDs or full ARN entries").
        // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html
        // https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html
        let mut owner: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut arns: Vec<String> = Vec::new();
        for (i, service) in services.iter().enumerate() {
            for arn in self.task_arns(cluster, service).await? {
                if owner.insert(arn.clone(), i).is_none() {
                    arns.push(arn);
                }
            }
        }
        let tasks = self
            .describe_tasks(cluster, &arns, &format!("services {}", services.join(", ")))
            .await?;
        let mut split: Vec<Vec<Task>> = vec![Vec::new(); services.len()];
        for task in tasks {
            if let Some(i) = owner.get(&task.arn) {
                split[*i].push(task);
            }
        }
        Ok(split)
    }

    async fn tag_task_definition(&self, arn: &str, tags: &[(String, String)]) -> Result<()> {
        use aws_sdk_ecs::types::Tag;
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|err| sdk_error(&format!("tagging task definition `{arn}`"), err))?;
        Ok(())
    }

    async fn deregister_task_definition(&self, arn: &str) -> Result<()> {
        self.client
            .deregister_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|err| sdk_error(&format!("deregistering task definition `{arn}`"), err))?;
        Ok(())
    }

    async fn task_definition_arns(&self, family: &str) -> Result<Vec<String>> {
        use aws_sdk_ecs::types::SortOrder;
        let mut arns = Vec::new();
        let mut pages = self
            .client
            .list_task_definitions()
            .family_prefix(family)
            .sort(SortOrder::Desc)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| {
                sdk_error(
                    &format!("listing revisions of task definition family `{family}`"),
                    err,
                )
            })?;
            arns.extend(
                page.task_definition_arns()
                    .iter()
                    .filter(|arn| {
                        arn.rsplit('/')
                            .next()
                            .and_then(|n| n.rsplit_once(':'))
                            .map(|(f, _)| f)
                            == Some(family)
                    })
                    .cloned(),
            );
            if arns.len() >= 100 {
                break;
            }
        }
        Ok(arns)
    }

    async fn service_deployments(
        &self,
        cluster: &str,
        service: &str,
        created_after: f64,
    ) -> Result<Option<Vec<ServiceDeployment>>> {
        use aws_sdk_ecs::types::CreatedAt;
        let listed = self
            .client
            .list_service_deployments()
            .cluster(cluster)
            .service(service)
            .created_at(
                CreatedAt::builder()
                    .after(aws_smithy_types::DateTime::from_secs_f64(created_after))
                    .build(),
            )
            .max_results(20)
            .send()
            .await;
        let listed = match listed {
            Ok(out) => out,
            // Older regions and emulators do not know the operation.
            Err(err) if unsupported(err.code()) => return Ok(None),
            Err(err) => {
                return Err(sdk_error(
                    &format!("listing service deployments of `{service}`"),
                    err,
                ))
            }
        };
        let arns: Vec<String> = listed
            .service_deployments()
            .iter()
            .filter_map(|b| b.service_deployment_arn().map(str::to_string))
            .collect();
        if arns.is_empty() {
            return Ok(Some(vec![]));
        }
        let described = self
            .client
            .describe_service_deployments()
            .set_service_deployment_arns(Some(arns))
            .send()
            .await
            .map_err(|err| {
                sdk_error(
                    &format!("describing service deployments of `{service}`"),
                    err,
                )
            })?;
        let mut deployments: Vec<ServiceDeployment> = described
            .service_deployments()
            .iter()
            .map(service_deployment_from)
            .collect();
        deployments.sort_by(|a, b| {
            b.created_at
                .partial_cmp(&a.created_at)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Ok(Some(deployments))
    }

    async fn run_task(&self, run: &TaskRun) -> Result<RunStarted> {
        self.run_one(run).await
    }

    async fn describe_task(&self, cluster: &str, task: &str) -> Result<Option<Task>> {
        let out = self
            .client
            .describe_tasks()
            .cluster(cluster)
            .tasks(task)
            .send()
            .await
            .map_err(|err| sdk_error(&format!("describing task {task}"), err))?;
        Ok(out.tasks().first().map(task_from))
    }

    async fn stop_task(&self, cluster: &str, task: &str, reason: &str) -> Result<()> {
        self.client
            .stop_task()
            .cluster(cluster)
            .task(task)
            .reason(reason)
            .send()
            .await
            .map_err(|err| sdk_error(&format!("stopping task {task}"), err))?;
        Ok(())
    }
}

impl AwsEcs {
    /// RunTask of `run` (count 1), placed as the service places its tasks.
    async fn run_one(&self, run: &TaskRun) -> Result<RunStarted> {
        use aws_sdk_ecs::types::{
            AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride,
            KeyValuePair, LaunchType, NetworkConfiguration as SdkNetwork, TaskOverride,
        };
        let what = || format!("running a task of {}", run.task_definition);
        let network = match &run.network {
            None => None,
            Some(net) => Some(
                SdkNetwork::builder()
                    .awsvpc_configuration(
                        AwsVpcConfiguration::builder()
                            .set_subnets(Some(net.subnets.clone()))
                            .set_security_groups(Some(net.security_groups.clone()))
                            .set_assign_public_ip(net.assign_public_ip.map(|on| {
                                if on {
                                    AssignPublicIp::Enabled
                                } else {
                                    AssignPublicIp::Disabled
                                }
                            }))
                            .build()
                            .map_err(|err| Error::failed(format!("{}: {err}", what())))?,
                    )
                    .build(),
            ),
        };
        let strategy = run
            .capacity_provider_strategy
            .iter()
            .map(|c| {
                CapacityProviderStrategyItem::builder()
                    .capacity_provider(&c.capacity_provider)
                    .weight(c.weight)
                    .base(c.base)
                    .build()
                    .map_err(|err| Error::failed(format!("{}: {err}", what())))
            })
            .collect::<Result<Vec<_>>>()?;
        let container = ContainerOverride::builder()
            .name(&run.container)
            .set_command(Some(run.command.clone()))
            .set_environment((!run.environment.is_empty()).then(|| {
                run.environment
                    .iter()
                    .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                    .collect()
            }))
            .build();
        let out = self
            .client
            .run_task()
            .cluster(&run.cluster)
            .task_definition(&run.task_definition)
            .count(1)
            .started_by(&run.started_by)
            .set_launch_type(run.launch_type.as_deref().map(LaunchType::from))
            .set_capacity_provider_strategy((!strategy.is_empty()).then_some(strategy))
            .set_network_configuration(network)
            .set_platform_version(run.platform_version.clone())
            .overrides(
                TaskOverride::builder()
                    .container_overrides(container)
                    .build(),
            )
            .send()
            .await
            .map_err(|err| sdk_error(&what(), err))?;
        Ok(RunStarted {
            tasks: out.tasks().iter().map(task_from).collect(),
            failures: out
                .failures()
                .iter()
                .map(|f| RunFailure {
                    arn: f.arn().map(str::to_string),
                    reason: f.reason().unwrap_or("no reason given").to_string(),
                    detail: f.detail().map(str::to_string),
                })
                .collect(),
        })
    }
}

/// Error codes that mean "this endpoint has no such operation".
fn unsupported(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "UnknownOperationException"
                | "InvalidAction"
                | "UnsupportedOperation"
                | "UnsupportedFeatureException"
                | "NotImplemented"
        )
    )
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types as sdk;

    use super::*;

    #[test]
    fn tasks_come_out_typed_with_health_stop_code_and_ipv6() {
        let eni = sdk::Attachment::builder()
            .r#type("ElasticNetworkInterface")
            .details(
                sdk::KeyValuePair::builder()
                    .name("privateIPv4Address")
                    .value("10.0.1.15")
                    .build(),
            )
            .details(
                sdk::KeyValuePair::builder()
                    .name("ipv6Address")
                    .value("2600:1f18:4b0:ee00::1a")
                    .build(),
            )
            .build();
        let task = sdk::Task::builder()
            .task_arn("arn:aws:ecs:us-east-1:123456789012:task/prod/a1")
            .last_status("DEACTIVATING")
            .desired_status("STOPPED")
            .health_status(sdk::HealthStatus::Unhealthy)
            .stop_code(sdk::TaskStopCode::EssentialContainerExited)
            .stopped_reason("Essential container in task exited")
            .attachments(eni)
            .containers(
                sdk::Container::builder()
                    .name("app")
                    .health_status(sdk::HealthStatus::Unhealthy)
                    .exit_code(1)
                    .build(),
            )
            .build();
        let t = task_from(&task);
        assert_eq!(t.last_status, TaskStatus::Deactivating);
        assert_eq!(t.desired_status, TaskDesiredStatus::Stopped);
        assert!(t.is_leaving());
        assert_eq!(t.health_status, Some(HealthStatus::Unhealthy));
        assert_eq!(t.containers[0].health_status, Some(HealthStatus::Unhealthy));
        assert_eq!(t.stop_code, Some(StopCode::EssentialContainerExited));
        assert_eq!(t.private_ip.as_deref(), Some("10.0.1.15"));
        assert_eq!(t.ipv6.as_deref(), Some("2600:1f18:4b0:ee00::1a"));
    }

    #[test]
    fn services_come_out_with_deployment_configuration_and_typed_deployments() {
        let svc = sdk::Service::builder()
            .status("ACTIVE")
            .deployments(
                sdk::Deployment::builder()
                    .id("ecs-svc/4715279036817256543")
                    .status("PRIMARY")
                    .rollout_state(sdk::DeploymentRolloutState::Failed)
                    .rollout_state_reason("ECS deployment circuit breaker: tasks failed to start.")
                    .build(),
            )
            .deployment_configuration(
                sdk::DeploymentConfiguration::builder()
                    .maximum_percent(200)
                    .minimum_healthy_percent(100)
                    .deployment_circuit_breaker(
                        sdk::DeploymentCircuitBreaker::builder()
                            .enable(true)
                            .rollback(true)
                            .build(),
                    )
                    .strategy(sdk::DeploymentStrategy::Rolling)
                    .build(),
            )
            .load_balancers(
                sdk::LoadBalancer::builder()
                    .load_balancer_name("classic-web")
                    .container_name("app")
                    .container_port(80)
                    .build(),
            )
            .build();
        let s = service_from(&svc);
        assert_eq!(s.status, ServiceStatus::Active);
        assert_eq!(s.deployments[0].status, DeploymentStatus::Primary);
        assert_eq!(s.deployments[0].rollout_state, Some(RolloutState::Failed));
        assert!(s.deployment_configuration.ecs_rolls_back());
        assert_eq!(
            s.deployment_configuration.strategy.as_deref(),
            Some("ROLLING")
        );
        assert_eq!(
            s.load_balancers[0].load_balancer_name.as_deref(),
            Some("classic-web")
        );
        assert!(s.load_balancers[0].target_group_arn.is_empty());
    }

    #[test]
    fn unknown_values_are_kept_not_guessed() {
        assert_eq!(
            TaskStatus::from_wire("NEW_STATE"),
            TaskStatus::Other("NEW_STATE".into())
        );
        assert_eq!(TaskStatus::from_wire("NEW_STATE").as_str(), "NEW_STATE");
        assert_eq!(format!("{:<8}|", DeploymentStatus::Primary), "PRIMARY |");
        assert_eq!(
            crate::elb::TargetState::from_wire("unhealthy.draining"),
            crate::elb::TargetState::UnhealthyDraining
        );
    }
}

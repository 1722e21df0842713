//! Provisions the reference architecture on the local stack through the real
//! AWS SDKs: VPC with public and private subnets in two AZs, a security group,
//! an internet-facing ALB with an HTTP listener, an `ip` target group with a
//! health check, an ECR repository, an ECS cluster and a Fargate service
//! (awsvpc, private subnets) behind the ALB. Shared by the tests and the demo.
//!
//! Every create tolerates "already exists": tests run side by side (threads of
//! one test binary, and test binaries of several checkouts against one stack),
//! and the first run on an empty stack is where they race. A create that AWS
//! (or the emulator) answers with "already exists" looks the resource up and
//! uses it, so concurrent creators converge on one resource.

#![allow(dead_code)]

use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, LoadBalancer, NetworkConfiguration,
    NetworkMode, PortMapping,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, ProtocolEnum, TargetTypeEnum,
};

use aws_sdk_ecs::error::ProvideErrorMetadata;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The answers AWS gives a create whose resource is already there.
pub fn already_exists(err: &impl ProvideErrorMetadata) -> bool {
    match err.code() {
        Some(
            "RepositoryAlreadyExistsException"
            | "ResourceAlreadyExistsException"
            | "EntityAlreadyExists"
            | "DuplicateLoadBalancerName"
            | "DuplicateTargetGroupName"
            | "DuplicateListener"
            | "InvalidGroup.Duplicate",
        ) => true,
        // ECS: CreateService for a name that is already an ACTIVE service.
        Some("InvalidParameterException") => {
            err.message().is_some_and(|m| m.contains("not idempotent"))
        }
        _ => false,
    }
}

/// The error for a create that said "already exists" and a lookup that then
/// found nothing.
fn vanished(what: &str) -> BoxError {
    format!("{what} already exists, but looking it up found nothing").into()
}

pub struct Aws {
    pub ec2: aws_sdk_ec2::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

impl Aws {
    pub async fn from_env() -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self {
            ec2: aws_sdk_ec2::Client::new(&config),
            ecr: aws_sdk_ecr::Client::new(&config),
            ecs: aws_sdk_ecs::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Network {
    pub vpc: String,
    pub public_subnets: Vec<String>,
    pub private_subnets: Vec<String>,
    pub security_group: String,
}

/// Each call gets its own /16, so parallel tests don't share address space.
pub async fn network(aws: &Aws, name: &str, second_octet: u8) -> Result<Network, BoxError> {
    let vpc = aws
        .ec2
        .create_vpc()
        .cidr_block(format!("10.{second_octet}.0.0/16"))
        .send()
        .await?;
    let vpc = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .ok_or("no vpc id")?
        .to_string();
    let mut public_subnets = Vec::new();
    let mut private_subnets = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        for (kind, offset, list) in [
            ("public", 0u8, &mut public_subnets),
            ("private", 10u8, &mut private_subnets),
        ] {
            let out = aws
                .ec2
                .create_subnet()
                .vpc_id(&vpc)
                .availability_zone(*az)
                .cidr_block(format!("10.{second_octet}.{}.0/24", offset + i as u8))
                .send()
                .await?;
            let id = out
                .subnet()
                .and_then(|s| s.subnet_id())
                .ok_or("no subnet id")?
                .to_string();
            let _ = kind;
            list.push(id);
        }
    }
    let security_group = security_group(aws, &format!("{name}-sg"), &vpc).await?;
    Ok(Network {
        vpc,
        public_subnets,
        private_subnets,
        security_group,
    })
}

async fn security_group(aws: &Aws, name: &str, vpc: &str) -> Result<String, BoxError> {
    match aws
        .ec2
        .create_security_group()
        .group_name(name)
        .description("shipit test")
        .vpc_id(vpc)
        .send()
        .await
    {
        Ok(out) => Ok(out.group_id().ok_or("no sg id")?.to_string()),
        Err(err) if already_exists(&err) => {
            use aws_sdk_ec2::types::Filter;
            let filter = |key: &str, value: &str| Filter::builder().name(key).values(value).build();
            let out = aws
                .ec2
                .describe_security_groups()
                .filters(filter("group-name", name))
                .filters(filter("vpc-id", vpc))
                .send()
                .await?;
            let group = out.security_groups().first().and_then(|g| g.group_id());
            Ok(group
                .ok_or_else(|| vanished(&format!("security group {name}")))?
                .to_string())
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Debug, Clone)]
pub struct Alb {
    pub load_balancer: String,
    pub target_group: String,
    pub dns_name: String,
}

pub async fn alb(aws: &Aws, name: &str, net: &Network, health_path: &str) -> Result<Alb, BoxError> {
    let (load_balancer, dns_name) = load_balancer(aws, &format!("{name}-alb"), net).await?;
    let target_group = target_group(aws, &format!("{name}-tg"), net, health_path).await?;
    listener(aws, &load_balancer, &target_group).await?;
    Ok(Alb {
        load_balancer,
        target_group,
        dns_name,
    })
}

/// The load balancer's ARN and DNS name.
async fn load_balancer(aws: &Aws, name: &str, net: &Network) -> Result<(String, String), BoxError> {
    let created = aws
        .elb
        .create_load_balancer()
        .name(name)
        .scheme(LoadBalancerSchemeEnum::InternetFacing)
        .set_subnets(Some(net.public_subnets.clone()))
        .security_groups(&net.security_group)
        .send()
        .await;
    let lbs = match created {
        Ok(out) => out.load_balancers().to_vec(),
        Err(err) if already_exists(&err) => aws
            .elb
            .describe_load_balancers()
            .names(name)
            .send()
            .await?
            .load_balancers()
            .to_vec(),
        Err(err) => Err(err)?,
    };
    let lb = lbs
        .first()
        .ok_or_else(|| vanished(&format!("load balancer {name}")))?;
    Ok((
        lb.load_balancer_arn().ok_or("no lb arn")?.to_string(),
        lb.dns_name().unwrap_or_default().to_string(),
    ))
}

async fn target_group(
    aws: &Aws,
    name: &str,
    net: &Network,
    health_path: &str,
) -> Result<String, BoxError> {
    let created = aws
        .elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .vpc_id(&net.vpc)
        .target_type(TargetTypeEnum::Ip)
        .health_check_path(health_path)
        .health_check_interval_seconds(5)
        .health_check_timeout_seconds(3)
        .healthy_threshold_count(2)
        .unhealthy_threshold_count(2)
        .send()
        .await;
    let groups = match created {
        Ok(out) => out.target_groups().to_vec(),
        Err(err) if already_exists(&err) => aws
            .elb
            .describe_target_groups()
            .names(name)
            .send()
            .await?
            .target_groups()
            .to_vec(),
        Err(err) => Err(err)?,
    };
    let arn = groups.first().and_then(|t| t.target_group_arn());
    Ok(arn
        .ok_or_else(|| vanished(&format!("target group {name}")))?
        .to_string())
}

/// An HTTP listener on port 80 forwarding to the target group (an existing
/// listener on that port is kept).
async fn listener(aws: &Aws, load_balancer: &str, target_group: &str) -> Result<(), BoxError> {
    // Looked up first: the emulator does not refuse a second listener on a port.
    if has_port_80_listener(aws, load_balancer).await? {
        return Ok(());
    }
    let created = aws
        .elb
        .create_listener()
        .load_balancer_arn(load_balancer)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(target_group)
                .build(),
        )
        .send()
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(err) if already_exists(&err) => match has_port_80_listener(aws, load_balancer).await? {
            true => Ok(()),
            false => Err(vanished(&format!(
                "the port 80 listener of {load_balancer}"
            ))),
        },
        Err(err) => Err(err.into()),
    }
}

async fn has_port_80_listener(aws: &Aws, load_balancer: &str) -> Result<bool, BoxError> {
    let out = aws
        .elb
        .describe_listeners()
        .load_balancer_arn(load_balancer)
        .send()
        .await?;
    Ok(out.listeners().iter().any(|l| l.port() == Some(80)))
}

/// The repository URI (creating the repository if needed).
pub async fn repository(aws: &Aws, name: &str) -> Result<String, BoxError> {
    if let Some(uri) = repository_uri(aws, name).await? {
        return Ok(uri);
    }
    match aws
        .ecr
        .create_repository()
        .repository_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .repository()
            .and_then(|r| r.repository_uri())
            .ok_or("no repository uri")?
            .to_string()),
        Err(err) if already_exists(&err) => repository_uri(aws, name)
            .await?
            .ok_or_else(|| vanished(&format!("ECR repository {name}"))),
        Err(err) => Err(err.into()),
    }
}

/// The URI of the repository, `None` when there is no such repository.
async fn repository_uri(aws: &Aws, name: &str) -> Result<Option<String>, BoxError> {
    match aws
        .ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .repositories()
            .first()
            .and_then(|r| r.repository_uri())
            .map(str::to_string)),
        Err(err) if err.code() == Some("RepositoryNotFoundException") => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The cluster, created if there is no ACTIVE one of that name. (The emulator
/// answers CreateCluster for an existing name by replacing the cluster, so it
/// is only created when missing.)
pub async fn cluster(aws: &Aws, name: &str) -> Result<(), BoxError> {
    if cluster_active(aws, name).await? {
        return Ok(());
    }
    match aws.ecs.create_cluster().cluster_name(name).send().await {
        Ok(_) => Ok(()),
        Err(err) if already_exists(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

async fn cluster_active(aws: &Aws, name: &str) -> Result<bool, BoxError> {
    let out = aws.ecs.describe_clusters().clusters(name).send().await?;
    Ok(out
        .clusters()
        .iter()
        .any(|c| c.cluster_name() == Some(name) && c.status() == Some("ACTIVE")))
}

/// A container of the bootstrap revision.
pub struct Container {
    pub name: &'static str,
    pub image: String,
    pub port: i32,
    pub environment: Vec<(&'static str, String)>,
}

/// Registers the bootstrap revision and creates the service (desired count 0:
/// the first `shipit deploy --desired-count 1` brings it up). Returns the
/// service's task definition: if the service already existed (created
/// concurrently), the one it runs.
pub async fn service(
    aws: &Aws,
    cluster: &str,
    name: &str,
    containers: &[Container],
    net: &Network,
    alb: &Alb,
) -> Result<String, BoxError> {
    service_with(aws, cluster, name, containers, net, Some(alb)).await
}

/// [`service`], behind `alb` or (a worker) behind no load balancer.
pub async fn service_with(
    aws: &Aws,
    cluster: &str,
    name: &str,
    containers: &[Container],
    net: &Network,
    alb: Option<&Alb>,
) -> Result<String, BoxError> {
    let defs = containers
        .iter()
        .map(|c| {
            let mut def = ContainerDefinition::builder()
                .name(c.name)
                .image(&c.image)
                .essential(true)
                .port_mappings(PortMapping::builder().container_port(c.port).build());
            for (key, value) in &c.environment {
                def = def.environment(
                    aws_sdk_ecs::types::KeyValuePair::builder()
                        .name(*key)
                        .value(value)
                        .build(),
                );
            }
            def.build()
        })
        .collect::<Vec<_>>();
    let td = aws
        .ecs
        .register_task_definition()
        .family(name)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .set_container_definitions(Some(defs))
        .send()
        .await?;
    let td_arn = td
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .ok_or("no td arn")?
        .to_string();
    let created = aws
        .ecs
        .create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(&td_arn)
        .desired_count(0)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .set_subnets(Some(net.private_subnets.clone()))
                        .security_groups(&net.security_group)
                        .build()?,
                )
                .build(),
        )
        .set_load_balancers(alb.map(|alb| {
            vec![LoadBalancer::builder()
                .target_group_arn(&alb.target_group)
                .container_name(containers[0].name)
                .container_port(containers[0].port)
                .build()]
        }))
        .send()
        .await;
    match created {
        Ok(_) => Ok(td_arn),
        Err(err) if already_exists(&err) => {
            let out = aws
                .ecs
                .describe_services()
                .cluster(cluster)
                .services(name)
                .send()
                .await?;
            let running = out
                .services()
                .iter()
                .find(|s| s.status() == Some("ACTIVE"))
                .and_then(|s| s.task_definition());
            Ok(running
                .ok_or_else(|| vanished(&format!("service {name}")))?
                .to_string())
        }
        Err(err) => Err(err.into()),
    }
}

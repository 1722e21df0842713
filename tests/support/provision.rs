//! Provisions the reference architecture on the local stack through the real
//! AWS SDKs: VPC with public and private subnets in two AZs, a security group,
//! an internet-facing ALB with an HTTP listener, an `ip` target group with a
//! health check, an ECR repository, an ECS cluster and a Fargate service
//! (awsvpc, private subnets) behind the ALB. Shared by the tests and the demo.

#![allow(dead_code)]

use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, LoadBalancer, NetworkConfiguration,
    NetworkMode, PortMapping,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, ProtocolEnum, TargetTypeEnum,
};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub struct Aws {
    pub ec2: aws_sdk_ec2::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
}

impl Aws {
    pub async fn from_env() -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self {
            ec2: aws_sdk_ec2::Client::new(&config),
            ecr: aws_sdk_ecr::Client::new(&config),
            ecs: aws_sdk_ecs::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
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
    let sg = aws
        .ec2
        .create_security_group()
        .group_name(format!("{name}-sg"))
        .description("shipit test")
        .vpc_id(&vpc)
        .send()
        .await?;
    let security_group = sg.group_id().ok_or("no sg id")?.to_string();
    Ok(Network {
        vpc,
        public_subnets,
        private_subnets,
        security_group,
    })
}

#[derive(Debug, Clone)]
pub struct Alb {
    pub load_balancer: String,
    pub target_group: String,
    pub dns_name: String,
}

pub async fn alb(aws: &Aws, name: &str, net: &Network, health_path: &str) -> Result<Alb, BoxError> {
    let lb = aws
        .elb
        .create_load_balancer()
        .name(format!("{name}-alb"))
        .scheme(LoadBalancerSchemeEnum::InternetFacing)
        .set_subnets(Some(net.public_subnets.clone()))
        .security_groups(&net.security_group)
        .send()
        .await?;
    let lb = lb.load_balancers().first().ok_or("no load balancer")?;
    let load_balancer = lb.load_balancer_arn().ok_or("no lb arn")?.to_string();
    let dns_name = lb.dns_name().unwrap_or_default().to_string();
    let tg = aws
        .elb
        .create_target_group()
        .name(format!("{name}-tg"))
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
        .await?;
    let target_group = tg
        .target_groups()
        .first()
        .and_then(|t| t.target_group_arn())
        .ok_or("no tg arn")?
        .to_string();
    aws.elb
        .create_listener()
        .load_balancer_arn(&load_balancer)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&target_group)
                .build(),
        )
        .send()
        .await?;
    Ok(Alb {
        load_balancer,
        target_group,
        dns_name,
    })
}

/// The repository URI (creating the repository if needed).
pub async fn repository(aws: &Aws, name: &str) -> Result<String, BoxError> {
    if let Ok(out) = aws
        .ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        if let Some(uri) = out.repositories().first().and_then(|r| r.repository_uri()) {
            return Ok(uri.to_string());
        }
    }
    let out = aws
        .ecr
        .create_repository()
        .repository_name(name)
        .send()
        .await?;
    Ok(out
        .repository()
        .and_then(|r| r.repository_uri())
        .ok_or("no repository uri")?
        .to_string())
}

pub async fn cluster(aws: &Aws, name: &str) -> Result<(), BoxError> {
    aws.ecs.create_cluster().cluster_name(name).send().await?;
    Ok(())
}

/// A container of the bootstrap revision.
pub struct Container {
    pub name: &'static str,
    pub image: String,
    pub port: i32,
    pub environment: Vec<(&'static str, String)>,
}

/// Registers the bootstrap revision and creates the service (desired count 0:
/// the first `shipit deploy --desired-count 1` brings it up).
pub async fn service(
    aws: &Aws,
    cluster: &str,
    name: &str,
    containers: &[Container],
    net: &Network,
    alb: &Alb,
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
    aws.ecs
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
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(&alb.target_group)
                .container_name(containers[0].name)
                .container_port(containers[0].port)
                .build(),
        )
        .send()
        .await?;
    Ok(td_arn)
}

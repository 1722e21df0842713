//! Provisions the reference architecture on the local stack and prints its
//! names as shell assignments: `eval "$(cargo run -q --example provision -- web)"`.
//! Optional second and third arguments name the cluster and the ECR repository
//! (both `shipit-demo` by default).

#[path = "../tests/support/provision.rs"]
mod provision;

use provision::{Aws, Container};

#[tokio::main]
async fn main() -> Result<(), provision::BoxError> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "demo".into());
    let cluster = args.next().unwrap_or_else(|| "shipit-demo".into());
    let repository = args.next().unwrap_or_else(|| "shipit-demo".into());
    let octet = (std::process::id() % 200 + 20) as u8;
    let aws = Aws::from_env().await;
    let net = provision::network(&aws, &name, octet).await?;
    let alb = provision::alb(&aws, &name, &net, "/health").await?;
    let uri = provision::repository(&aws, &repository).await?;
    provision::cluster(&aws, &cluster).await?;
    let app = Container {
        name: "app",
        image: format!("{uri}:bootstrap"),
        port: 8080,
        environment: vec![],
    };
    let td = provision::service(&aws, &cluster, &name, &[app], &net, &alb).await?;
    println!("CLUSTER={cluster}");
    println!("SERVICE={name}");
    println!("REPOSITORY={repository}");
    println!("REPOSITORY_URI={uri}");
    println!("TARGET_GROUP={}", alb.target_group);
    println!("BOOTSTRAP_TASK_DEFINITION={td}");
    Ok(())
}

//! Provisions the reference architecture on the local stack and prints its
//! names as shell assignments: `eval "$(cargo run -q --example provision -- web)"`.

#[path = "../tests/support/provision.rs"]
mod provision;

use provision::{Aws, Container};

#[tokio::main]
async fn main() -> Result<(), provision::BoxError> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "demo".into());
    let octet = (std::process::id() % 200 + 20) as u8;
    let aws = Aws::from_env().await;
    let net = provision::network(&aws, &name, octet).await?;
    let alb = provision::alb(&aws, &name, &net, "/health").await?;
    let uri = provision::repository(&aws, "shipit-demo").await?;
    provision::cluster(&aws, "shipit-demo").await?;
    let app = Container {
        name: "app",
        image: format!("{uri}:bootstrap"),
        port: 8080,
        environment: vec![],
    };
    let td = provision::service(&aws, "shipit-demo", &name, &[app], &net, &alb).await?;
    println!("CLUSTER=shipit-demo");
    println!("SERVICE={name}");
    println!("REPOSITORY=shipit-demo");
    println!("TARGET_GROUP={}", alb.target_group);
    println!("BOOTSTRAP_TASK_DEFINITION={td}");
    Ok(())
}

//! Build context, build and push through the Docker Engine API.

pub mod context;
pub mod dockerignore;
pub mod engine;
pub mod pipeline;

pub use context::{BuildContext, ContextStats};
pub use engine::{BuildSpec, ContainerEngine, DockerEngine};

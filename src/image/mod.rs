//! Build context, build and push through the Docker Engine API.

pub mod build_lock;
pub mod builder;
pub mod buildkit;
pub mod cache;
pub mod context;
pub mod dockerignore;
pub mod engine;
pub mod pipeline;

pub use builder::{Builder, BuilderChoice, EngineFacts};

pub use context::{BuildContext, ContextStats};
pub use engine::{BuildSpec, Built, ContainerEngine, DockerEngine};

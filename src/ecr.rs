//! The registry seam (ECR): authorization, repositories, image lookups.
//! Registry host and repository URI always come from the API
//! (`proxyEndpoint`, `repositoryUri`), never assembled from account and region.

use async_trait::async_trait;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use base64::Engine as _;

use crate::aws_error::sdk_error;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Credentials for one registry, held in memory only.
#[derive(Debug, Clone)]
pub struct RegistryAuth {
    /// Registry host (from `proxyEndpoint`, scheme removed).
    pub server: String,
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: String,
    /// `repositoryUri` as ECR reports it (`<host>/<name>`).
    pub uri: String,
}

/// A tagged image in a repository, as far as choosing a layer cache needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedImage {
    pub tags: Vec<String>,
    /// `imagePushedAt`, seconds since the epoch.
    pub pushed_at: Option<i64>,
}

/// At most this many `DescribeImages` pages (1000 images each) are read to
/// find the newest commit tag.
const TAGGED_IMAGE_PAGES: usize = 5;

#[derive(Debug, Clone, Default)]
pub struct RepositoryOptions {
    pub scan_on_push: bool,
    pub immutable_tags: bool,
}

#[async_trait]
pub trait Registry: Send + Sync {
    async fn repository(&self, name: &str) -> Result<Option<Repository>>;
    async fn create_repository(
        &self,
        name: &str,
        options: &RepositoryOptions,
    ) -> Result<Repository>;
    /// The digest of `tag` in the repository, if the tag exists.
    async fn image_digest(&self, repository: &str, tag: &str) -> Result<Option<String>>;
    async fn authorization(&self) -> Result<RegistryAuth>;
    /// Whether the image `repository@digest` is in the registry; `None` when
    /// this registry cannot tell.
    async fn has_digest(&self, _repository: &str, _digest: &str) -> Result<Option<bool>> {
        Ok(None)
    }
    /// The repository's tagged images with when each was pushed (for the
    /// layer cache). A registry that cannot tell answers with none.
    async fn tagged_images(&self, _repository: &str) -> Result<Vec<TaggedImage>> {
        Ok(Vec::new())
    }
}

pub struct Ecr {
    client: aws_sdk_ecr::Client,
}

impl Ecr {
    pub fn new(config: &aws_config::SdkConfig, calls: &crate::api_calls::ApiCalls) -> Self {
        let config = aws_sdk_ecr::config::Builder::from(config)
            .interceptor(calls.clone())
            .build();
        Self {
            client: aws_sdk_ecr::Client::from_conf(config),
        }
    }
}

#[async_trait]
impl Registry for Ecr {
    async fn repository(&self, name: &str) -> Result<Option<Repository>> {
        match self
            .client
            .describe_repositories()
            .repository_names(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.repositories().first().map(|repo| Repository {
                name: repo.repository_name().unwrap_or(name).to_string(),
                uri: repo.repository_uri().unwrap_or_default().to_string(),
            })),
            Err(err) if err.code() == Some("RepositoryNotFoundException") => Ok(None),
            Err(err) => Err(sdk_error(
                &format!("looking up ECR repository `{name}`"),
                err,
            )),
        }
    }

    async fn create_repository(
        &self,
        name: &str,
        options: &RepositoryOptions,
    ) -> Result<Repository> {
        use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability};
        let out = self
            .client
            .create_repository()
            .repository_name(name)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(options.scan_on_push)
                    .build(),
            )
            .image_tag_mutability(if options.immutable_tags {
                ImageTagMutability::Immutable
            } else {
                ImageTagMutability::Mutable
            })
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // Another run created it between our lookup and this call (two
            // pipelines shipping a new service at once): use that one.
            Err(err) if err.code() == Some("RepositoryAlreadyExistsException") => {
                return self.repository(name).await?.ok_or_else(|| {
                    Error::failed(format!(
                        "ECR says repository `{name}` already exists, but cannot describe it"
                    ))
                    .hint("check the ecr:DescribeRepositories permission and the region")
                });
            }
            Err(err) => return Err(sdk_error(&format!("creating ECR repository `{name}`"), err)),
        };
        let repo = out
            .repository()
            .ok_or_else(|| Error::failed("CreateRepository returned no repository"))?;
        Ok(Repository {
            name: repo.repository_name().unwrap_or(name).to_string(),
            uri: repo.repository_uri().unwrap_or_default().to_string(),
        })
    }

    async fn image_digest(&self, repository: &str, tag: &str) -> Result<Option<String>> {
        use aws_sdk_ecr::types::ImageIdentifier;
        let result = self
            .client
            .describe_images()
            .repository_name(repository)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .image_details()
                .first()
                .and_then(|d| d.image_digest())
                .map(str::to_string)),
            Err(err) if err.code() == Some("ImageNotFoundException") => Ok(None),
            Err(err) => Err(sdk_error(
                &format!("looking up {repository}:{tag} in ECR"),
                err,
            )),
        }
    }

    /// DescribeImages by `imageDigest` (the same `ecr:DescribeImages` as a
    /// tag lookup); `ImageNotFoundException` means it is not there.
    /// https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImages.html
    async fn has_digest(&self, repository: &str, digest: &str) -> Result<Option<bool>> {
        use aws_sdk_ecr::types::ImageIdentifier;
        let result = self
            .client
            .describe_images()
            .repository_name(repository)
            .image_ids(ImageIdentifier::builder().image_digest(digest).build())
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(!out.image_details().is_empty())),
            Err(err) if err.code() == Some("ImageNotFoundException") => Ok(Some(false)),
            Err(err) => Err(sdk_error(
                &format!("looking up {repository}@{digest} in ECR"),
                err,
            )),
        }
    }

    async fn authorization(&self) -> Result<RegistryAuth> {
        let out = self
            .client
            .get_authorization_token()
            .send()
            .await
            .map_err(|err| sdk_error("getting an ECR authorization token", err))?;
        let data = out
            .authorization_data()
            .first()
            .ok_or_else(|| Error::failed("GetAuthorizationToken returned no authorization data"))?;
        let token = data.authorization_token().unwrap_or_default();
        let endpoint = data.proxy_endpoint().unwrap_or_default();
        parse_authorization(token, endpoint)
    }

    async fn tagged_images(&self, repository: &str) -> Result<Vec<TaggedImage>> {
        use aws_sdk_ecr::types::{DescribeImagesFilter, TagStatus};
        let mut pages = self
            .client
            .describe_images()
            .repository_name(repository)
            .filter(
                DescribeImagesFilter::builder()
                    .tag_status(TagStatus::Tagged)
                    .build(),
            )
            .max_results(1000)
            .into_paginator()
            .send();
        let mut images = Vec::new();
        for _ in 0..TAGGED_IMAGE_PAGES {
            let Some(page) = pages.next().await else {
                break;
            };
            let page = page.map_err(|err| {
                sdk_error(
                    &format!("listing the images of ECR repository `{repository}`"),
                    err,
                )
            })?;
            images.extend(page.image_details().iter().map(|d| TaggedImage {
                tags: d.image_tags().to_vec(),
                pushed_at: d.image_pushed_at().map(|t| t.secs()),
            }));
        }
        Ok(images)
    }
}

/// Decodes `base64(user:password)` and takes the host from `proxyEndpoint`.
pub fn parse_authorization(token: &str, proxy_endpoint: &str) -> Result<RegistryAuth> {
    let bad =
        || Error::failed("ECR returned an authorization token that is not base64 `user:password`");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (username, password) = decoded.split_once(':').ok_or_else(bad)?;
    let server = proxy_endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    if server.is_empty() {
        return Err(Error::failed(
            "ECR returned no proxyEndpoint with the authorization token",
        ));
    }
    Ok(RegistryAuth {
        server: server.to_string(),
        username: username.to_string(),
        password: Secret::new(password),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_decoded_and_host_taken_from_the_proxy_endpoint() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:s3cr3t");
        let auth = parse_authorization(
            &token,
            "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        )
        .unwrap();
        assert_eq!(auth.server, "123456789012.dkr.ecr.eu-west-1.amazonaws.com");
        assert_eq!(auth.username, "AWS");
        assert_eq!(auth.password.expose(), "s3cr3t");
        assert!(
            !format!("{auth:?}").contains("s3cr3t"),
            "Debug must not reveal the password"
        );
        assert_eq!(
            parse_authorization(&token, "http://127.0.0.1:4566")
                .unwrap()
                .server,
            "127.0.0.1:4566"
        );
        assert!(parse_authorization("not base64!", "https://x").is_err());
    }
}

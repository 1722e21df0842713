//! Where a build on a cold engine gets yesterday's layers: the image the
//! service runs now, else the newest commit-SHA tag in the repository.
//! Pure selection; the pipeline does the lookups and the engine the reuse.

use crate::ecr::TaggedImage;
use crate::ecs::taskdef::image_repository;

/// An image a container of the service runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningImage {
    pub image: String,
    /// `false` when ECR no longer has it (the plan looked it up).
    pub in_ecr: bool,
}

/// The image whose layers the build may reuse, and why it was picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSource {
    pub image: String,
    pub why: String,
}

/// The first image the service runs now from this repository that ECR
/// still has.
pub fn from_running(repository_uri: &str, running: &[RunningImage]) -> Option<CacheSource> {
    running
        .iter()
        .find(|r| {
            r.in_ecr && image_repository(&r.image) == repository_uri && r.image != repository_uri
        })
        .map(|r| CacheSource {
            image: r.image.clone(),
            why: "the image the service runs now".into(),
        })
}

/// A tag shipit would have pushed: 7 to 40 hex characters (a commit SHA).
fn sha_like(tag: &str) -> bool {
    (7..=40).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The most recently pushed image with a commit-SHA tag.
pub fn newest_sha_tag(repository_uri: &str, images: &[TaggedImage]) -> Option<CacheSource> {
    images
        .iter()
        .filter_map(|image| {
            let tag = image.tags.iter().find(|t| sha_like(t))?;
            Some((image.pushed_at, tag))
        })
        .max_by_key(|(pushed_at, _)| *pushed_at)
        .map(|(_, tag)| CacheSource {
            image: format!("{repository_uri}:{tag}"),
            why: "the newest commit tag in the repository".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web";

    fn running(image: &str, in_ecr: bool) -> RunningImage {
        RunningImage {
            image: image.into(),
            in_ecr,
        }
    }

    fn tagged(tags: &[&str], pushed_at: i64) -> TaggedImage {
        TaggedImage {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: Some(pushed_at),
        }
    }

    #[test]
    fn the_running_image_comes_first_when_it_is_from_this_repository_and_still_in_ecr() {
        let cases: &[(&str, Vec<RunningImage>, Option<&str>)] = &[
            (
                "runs a tag of this repository",
                vec![running(&format!("{URI}:0123abc"), true)],
                Some("0123abc"),
            ),
            (
                "pinned by digest",
                vec![running(&format!("{URI}@sha256:ab12"), true)],
                Some("@sha256:ab12"),
            ),
            (
                "another repository's image is skipped",
                vec![
                    running("public.ecr.aws/nginx/nginx:1.27", true),
                    running(&format!("{URI}:feed123"), true),
                ],
                Some("feed123"),
            ),
            (
                "expired from ECR",
                vec![running(&format!("{URI}:0123abc"), false)],
                None,
            ),
            (
                "a repository whose name starts the same is another one",
                vec![running(&format!("{URI}-worker:0123abc"), true)],
                None,
            ),
            ("no service (shipit push)", vec![], None),
        ];
        for (name, images, expected) in cases {
            let got = from_running(URI, images);
            match expected {
                Some(part) => {
                    let got = got.unwrap_or_else(|| panic!("{name}: none"));
                    assert!(
                        got.image.starts_with(URI) && got.image.ends_with(part),
                        "{name}: {got:?}"
                    );
                    assert_eq!(got.why, "the image the service runs now");
                }
                None => assert_eq!(got, None, "{name}"),
            }
        }
    }

    #[test]
    fn otherwise_the_newest_commit_tag_not_latest_or_a_release_name() {
        let images = vec![
            tagged(&["1111111"], 100),
            tagged(&["latest", "v1.2.0"], 400),
            tagged(
                &["release", "2222222222222222222222222222222222222222"],
                300,
            ),
            tagged(&["333333g"], 500), // not hex
            tagged(&["444"], 600),     // too short
        ];
        let got = newest_sha_tag(URI, &images).unwrap();
        assert_eq!(
            got.image,
            format!("{URI}:2222222222222222222222222222222222222222")
        );
        assert_eq!(got.why, "the newest commit tag in the repository");
        assert_eq!(newest_sha_tag(URI, &[tagged(&["latest"], 1)]), None);
        assert_eq!(newest_sha_tag(URI, &[]), None);
    }
}

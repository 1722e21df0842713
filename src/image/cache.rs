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
    /// Older commit images, newest first, offered to BuildKit as well.
    pub older: Vec<String>,
}

impl CacheSource {
    /// Every image offered as cache, the chosen one first.
    pub fn images(&self) -> Vec<String> {
        std::iter::once(self.image.clone())
            .chain(self.older.iter().cloned())
            .collect()
    }
}

/// How many images at most are offered to BuildKit as cache. More than one:
/// the BuildKit in Docker 20.10 exports an inline cache without the layers a
/// build took from an imported cache, so an image built from the cache is a
/// poor cache for the next build ("does not work every second time",
/// https://github.com/moby/buildkit/issues/1981, tracked for 20.10 as
/// https://github.com/moby/buildkit/issues/1992; fixed in BuildKit 0.14,
/// https://github.com/moby/buildkit/pull/4796). With the older images offered
/// too, a build still finds one that was built in full.
pub const MAX_SOURCES: usize = 5;

/// The first image the service runs now from this repository that ECR
/// still has.
pub fn from_running(repository_uri: &str, running: &[RunningImage]) -> Option<String> {
    running
        .iter()
        .find(|r| {
            r.in_ecr && image_repository(&r.image) == repository_uri && r.image != repository_uri
        })
        .map(|r| r.image.clone())
}

/// A tag shipit would have pushed: 7 to 40 hex characters (a commit SHA).
fn sha_like(tag: &str) -> bool {
    (7..=40).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The images with a commit-SHA tag, most recently pushed first.
pub fn newest_sha_tags(repository_uri: &str, images: &[TaggedImage]) -> Vec<String> {
    let mut tagged: Vec<(Option<i64>, &String)> = images
        .iter()
        .filter_map(|image| {
            let tag = image.tags.iter().find(|t| sha_like(t))?;
            Some((image.pushed_at, tag))
        })
        .collect();
    tagged.sort_by_key(|image| std::cmp::Reverse(image.0));
    tagged
        .into_iter()
        .map(|(_, tag)| format!("{repository_uri}:{tag}"))
        .collect()
}

/// The cache for a build: the image the service runs now, else the newest
/// commit image; with the next newest commit images behind it.
pub fn select(
    repository_uri: &str,
    running: &[RunningImage],
    images: &[TaggedImage],
) -> Option<CacheSource> {
    let newest = newest_sha_tags(repository_uri, images);
    let (image, why) = match from_running(repository_uri, running) {
        Some(image) => (image, "the image the service runs now"),
        None => (
            newest.first()?.clone(),
            "the newest commit tag in the repository",
        ),
    };
    let older = newest
        .into_iter()
        .filter(|other| *other != image)
        .take(MAX_SOURCES - 1)
        .collect();
    Some(CacheSource {
        image,
        why: why.into(),
        older,
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
                Some(":0123abc"),
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
                Some(":feed123"),
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
        // The repository has one newer commit image: it comes second, or first without a running one.
        let images = [tagged(&["9999999"], 50)];
        for (name, running, expected) in cases {
            let got = select(URI, running, &images).unwrap();
            match expected {
                Some(part) => {
                    assert_eq!(got.image, format!("{URI}{part}"), "{name}");
                    assert_eq!(got.why, "the image the service runs now", "{name}");
                    assert_eq!(got.older, [format!("{URI}:9999999")], "{name}");
                }
                None => {
                    assert_eq!(got.image, format!("{URI}:9999999"), "{name}");
                    assert_eq!(got.why, "the newest commit tag in the repository", "{name}");
                    assert!(got.older.is_empty(), "{name}");
                }
            }
        }
    }

    #[test]
    fn otherwise_the_newest_commit_tags_not_latest_or_a_release_name() {
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
        let got = select(URI, &[], &images).unwrap();
        assert_eq!(
            got.images(),
            [
                format!("{URI}:2222222222222222222222222222222222222222"),
                format!("{URI}:1111111"),
            ]
        );
        assert_eq!(got.why, "the newest commit tag in the repository");
        assert_eq!(select(URI, &[], &[tagged(&["latest"], 1)]), None);
        assert_eq!(select(URI, &[], &[]), None);
    }

    #[test]
    fn at_most_five_images_are_offered_and_the_running_one_is_not_repeated() {
        let images: Vec<TaggedImage> = (0..9)
            .map(|i| tagged(&[&format!("{i}{i}{i}{i}{i}{i}{i}")], i))
            .collect();
        let got = select(URI, &[running(&format!("{URI}:7777777"), true)], &images).unwrap();
        assert_eq!(
            got.images(),
            ["7777777", "8888888", "6666666", "5555555", "4444444"].map(|t| format!("{URI}:{t}"))
        );
    }
}

//! Amazon Resource Names, read in one place: the short names shipit prints
//! and the family/revision of a task definition.

/// An ARN (or a bare name where AWS accepts either), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a>(pub &'a str);

impl<'a> Arn<'a> {
    /// The name a person reads: `…:task-definition/web:7` → `web:7`,
    /// `…:targetgroup/web/0123` → `web`, `…/task/c/abc` → `abc`.
    pub fn short(self) -> &'a str {
        let arn = self.0;
        if arn.contains(":targetgroup/") {
            return arn.split('/').nth(1).unwrap_or(arn);
        }
        arn.rsplit('/').next().unwrap_or(arn)
    }

    /// `…:task-definition/web-api:12` (or `web-api:12`) → `web-api`.
    pub fn family(self) -> &'a str {
        let name = self.short();
        name.rsplit_once(':').map(|(f, _)| f).unwrap_or(name)
    }

    /// `…:task-definition/web-api:12` → 12.
    pub fn revision(self) -> Option<u32> {
        self.short().rsplit_once(':')?.1.parse().ok()
    }
}

/// [`Arn::short`] of a string.
pub fn short(arn: &str) -> &str {
    Arn(arn).short()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_arn() {
        let td = Arn("arn:aws:ecs:us-east-1:1:task-definition/web-api:12");
        assert_eq!(td.short(), "web-api:12");
        assert_eq!(td.family(), "web-api");
        assert_eq!(td.revision(), Some(12));
        assert_eq!(Arn("web:3").family(), "web");
        assert_eq!(Arn("web").revision(), None);
        assert_eq!(
            short("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/0123abcd"),
            "web"
        );
        assert_eq!(short("arn:aws:ecs:us-east-1:1:task/c/abc"), "abc");
    }
}

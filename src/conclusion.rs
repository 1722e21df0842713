//! How a command ended: every verdict a command can reach, each with its one
//! name on the wire (JSON `verdict`, the GitHub output, stdout) and its one
//! exit code. Nothing else in the crate spells `"rolled_back"` or derives an
//! exit code from a verdict.

use serde::{Serialize, Serializer};

use crate::error::ExitCode;

/// Why a rollback happened: it decides the exit code of a healthy rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackCause {
    /// The deploy failed (exit 1: the service is fine, the release is not).
    DeployFailed,
    /// A signal during the watch asked for it (exit 130/143).
    Signal(ExitCode),
    /// `shipit rollback` asked for it (exit 0: it did what it was asked).
    Requested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conclusion {
    /// The new revision is healthy (and tagged so).
    Deployed,
    /// `--until updated`: the service was updated; nobody watched the rollout.
    Updated,
    /// desiredCount 0: nothing could be verified, and the revision is not tagged healthy.
    Unverified,
    /// The service is back on a healthy revision (shipit's rollback or ECS's own).
    RolledBack(RollbackCause),
    /// The deploy failed and, with `--no-rollback`, the service stays on it.
    /// A signal that ended the watch gives its own exit code.
    Failed(Option<ExitCode>),
    /// The service may be in a bad state. A signal that stopped a manual
    /// rollback's wait gives its own exit code.
    NeedsHuman(Option<ExitCode>),
    /// The watch could not see the rollout; shipit left the service as it is.
    Blind,
    /// Another deployment took over; shipit changed nothing more.
    Superseded,
    /// A signal with `--on-interrupt leave`: the rollout goes on unwatched.
    Interrupted(ExitCode),
    Built,
    Pushed,
    AlreadyPushed,
    Planned,
    /// A `--before` task failed (or never ran): the service was not updated
    /// and the new revision is tagged failed (exit 1).
    BeforeFailed,
    /// `shipit run`: the task ran to its end; its container's exit code.
    TaskExited(u8),
    /// `shipit run --detach`: the task was started; nobody waits for it.
    TaskStarted,
    /// `status`, `completions`.
    #[default]
    Ok,
    /// An error before (or instead of) a verdict.
    Error(ExitCode),
}

impl Conclusion {
    /// Every verdict name, for the README check.
    pub const NAMES: &'static [&'static str] = &[
        "deployed",
        "updated",
        "unverified",
        "rolled_back",
        "failed",
        "needs_human",
        "blind",
        "superseded",
        "interrupted",
        "built",
        "pushed",
        "already_pushed",
        "planned",
        "before_failed",
        "exited",
        "started",
        "ok",
        "error",
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Deployed => "deployed",
            Self::Updated => "updated",
            Self::Unverified => "unverified",
            Self::RolledBack(_) => "rolled_back",
            Self::Failed(_) => "failed",
            Self::NeedsHuman(_) => "needs_human",
            Self::Blind => "blind",
            Self::Superseded => "superseded",
            Self::Interrupted(_) => "interrupted",
            Self::Built => "built",
            Self::Pushed => "pushed",
            Self::AlreadyPushed => "already_pushed",
            Self::Planned => "planned",
            Self::BeforeFailed => "before_failed",
            Self::TaskExited(_) => "exited",
            Self::TaskStarted => "started",
            Self::Ok => "ok",
            Self::Error(_) => "error",
        }
    }

    pub fn exit_code(self) -> ExitCode {
        match self {
            Self::Deployed
            | Self::Updated
            | Self::Unverified
            | Self::RolledBack(RollbackCause::Requested)
            | Self::Built
            | Self::Pushed
            | Self::AlreadyPushed
            | Self::Planned
            | Self::TaskStarted
            | Self::TaskExited(0)
            | Self::Ok => ExitCode::Success,
            Self::BeforeFailed => ExitCode::Failed,
            Self::TaskExited(code) => ExitCode::Task(code),
            Self::RolledBack(RollbackCause::DeployFailed) => ExitCode::Failed,
            Self::RolledBack(RollbackCause::Signal(code)) | Self::Interrupted(code) => code,
            Self::Failed(signal) | Self::NeedsHuman(signal) => {
                signal.unwrap_or(ExitCode::NeedsHuman)
            }
            Self::Blind => ExitCode::NeedsHuman,
            Self::Superseded => ExitCode::Superseded,
            Self::Error(code) => code,
        }
    }

    /// A verdict that means the release did not go out as asked.
    pub fn is_success(self) -> bool {
        self.exit_code() == ExitCode::Success
    }
}

impl Serialize for Conclusion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Orders conclusions from best to worst: the run's verdict (and exit code)
/// is its worst service's. Interrupted by a signal ranks above a clean
/// rollback (the signal's exit code wins), a service that needs a human
/// above everything.
pub fn severity(conclusion: Conclusion) -> u8 {
    match conclusion {
        Conclusion::Deployed
        | Conclusion::Updated
        | Conclusion::Unverified
        | Conclusion::Planned
        | Conclusion::Built
        | Conclusion::Pushed
        | Conclusion::AlreadyPushed
        | Conclusion::Ok
        | Conclusion::TaskStarted
        | Conclusion::RolledBack(RollbackCause::Requested) => 0,
        Conclusion::RolledBack(RollbackCause::DeployFailed)
        | Conclusion::BeforeFailed
        | Conclusion::TaskExited(_)
        | Conclusion::Error(ExitCode::Failed) => 1,
        Conclusion::Superseded => 2,
        Conclusion::RolledBack(RollbackCause::Signal(_)) | Conclusion::Interrupted(_) => 3,
        Conclusion::Failed(_)
        | Conclusion::NeedsHuman(_)
        | Conclusion::Blind
        | Conclusion::Error(_) => 4,
    }
}

/// The worst of several conclusions: of equals, the first (`Ok` for none).
pub fn worst(conclusions: impl IntoIterator<Item = Conclusion>) -> Conclusion {
    conclusions
        .into_iter()
        .reduce(|worst, c| {
            if severity(c) > severity(worst) {
                c
            } else {
                worst
            }
        })
        .unwrap_or(Conclusion::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_conclusion_is_the_one_a_human_must_look_at() {
        use Conclusion::*;
        let rolled = RolledBack(RollbackCause::DeployFailed);
        assert_eq!(worst([Deployed, Deployed]), Deployed);
        assert_eq!(worst([Deployed, rolled]), rolled);
        assert_eq!(worst([rolled, Superseded]), Superseded);
        assert_eq!(
            worst([Superseded, NeedsHuman(None), rolled]),
            NeedsHuman(None)
        );
        assert_eq!(worst([Deployed, Unverified]), Deployed);
        let requested = RolledBack(RollbackCause::Requested);
        assert_eq!(worst([requested, requested]), requested);
        assert_eq!(
            worst([
                rolled,
                RolledBack(RollbackCause::Signal(ExitCode::Interrupted))
            ])
            .exit_code(),
            ExitCode::Interrupted
        );
        assert_eq!(worst([]), Ok);
    }

    fn every() -> Vec<Conclusion> {
        use Conclusion::*;
        let signal = Some(ExitCode::Terminated);
        vec![
            Deployed,
            Updated,
            Unverified,
            RolledBack(RollbackCause::DeployFailed),
            RolledBack(RollbackCause::Signal(ExitCode::Interrupted)),
            RolledBack(RollbackCause::Requested),
            Failed(None),
            Failed(signal),
            NeedsHuman(None),
            NeedsHuman(signal),
            Blind,
            Superseded,
            Interrupted(ExitCode::Interrupted),
            Built,
            Pushed,
            AlreadyPushed,
            Planned,
            BeforeFailed,
            TaskExited(0),
            TaskStarted,
            Ok,
            Error(ExitCode::Usage),
        ]
    }

    #[test]
    fn every_conclusion_has_a_listed_name() {
        for c in every() {
            assert!(Conclusion::NAMES.contains(&c.name()), "{c:?}");
        }
        let mut names: Vec<&str> = every().into_iter().map(Conclusion::name).collect();
        names.dedup();
        assert_eq!(names.len(), Conclusion::NAMES.len(), "{names:?}");
    }

    #[test]
    fn exit_codes_follow_what_the_service_is_left_on() {
        use Conclusion::*;
        let cases = [
            (Deployed, 0),
            (Unverified, 0),
            (RolledBack(RollbackCause::DeployFailed), 1),
            (RolledBack(RollbackCause::Signal(ExitCode::Terminated)), 143),
            (RolledBack(RollbackCause::Requested), 0),
            (Failed(None), 3),
            (Failed(Some(ExitCode::Interrupted)), 130),
            (NeedsHuman(None), 3),
            (Blind, 3),
            (Superseded, 4),
            (Interrupted(ExitCode::Interrupted), 130),
            (Error(ExitCode::Usage), 2),
            (BeforeFailed, 1),
            (TaskExited(0), 0),
            (TaskExited(3), 3),
            (TaskExited(255), 255),
            (TaskStarted, 0),
        ];
        for (conclusion, code) in cases {
            assert_eq!(conclusion.exit_code().code(), code, "{conclusion:?}");
        }
    }

    /// The README's exit-code table and verdict list are the enum's.
    #[test]
    fn the_readme_documents_every_exit_code_and_verdict() {
        let readme = include_str!("../README.md");
        let table = readme
            .split("## Exit codes")
            .nth(1)
            .expect("README has an exit-code section");
        for code in ExitCode::ALL {
            let row = format!("| {} |", code.code());
            assert!(table.contains(&row), "README lacks exit code row {row}");
        }
        let rows = table
            .lines()
            .take_while(|l| !l.starts_with("## "))
            .filter(|l| l.starts_with("| ") && l[2..].starts_with(|c: char| c.is_ascii_digit()))
            .count();
        assert_eq!(rows, ExitCode::ALL.len(), "README rows vs ExitCode::ALL");
        let verdicts = readme
            .split("The possible `verdict` values are")
            .nth(1)
            .expect("README lists the verdict values");
        let verdicts = &verdicts[..verdicts.find("\n\n").unwrap_or(verdicts.len())];
        for name in Conclusion::NAMES {
            assert!(
                verdicts.contains(&format!("`{name}`")),
                "README's verdict list lacks `{name}`"
            );
        }
    }
}

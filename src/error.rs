//! The one error type the orchestration returns, and the one place that maps
//! outcomes to exit codes.
//!
//! Every error carries a message that names the thing, optional `Caused by`
//! lines, and a `hint:` with the next step. The kind decides the exit code.

use std::fmt;

/// Process exit codes, documented in the README; `conclusion::tests` checks
/// the README's table against [`ExitCode::ALL`]. Which verdict gives which
/// code is decided in one place, [`crate::conclusion::Conclusion::exit_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Deployed (or the command did what it was asked).
    Success,
    /// The deploy failed; the service is on a healthy revision (rolled back,
    /// or never changed).
    Failed,
    /// Bad input, configuration or usage: nothing was changed in AWS.
    Usage,
    /// The deploy failed and the rollback failed or is unhealthy: a human is needed.
    NeedsHuman,
    /// Another deployment took over the service; shipit changed nothing more.
    Superseded,
    /// Interrupted by SIGINT.
    Interrupted,
    /// Terminated by SIGTERM.
    Terminated,
    /// `shipit run`: the one-off task's container exit code, passed through.
    Task(u8),
}

impl ExitCode {
    pub const ALL: [ExitCode; 7] = [
        ExitCode::Success,
        ExitCode::Failed,
        ExitCode::Usage,
        ExitCode::NeedsHuman,
        ExitCode::Superseded,
        ExitCode::Interrupted,
        ExitCode::Terminated,
    ];

    /// The signal's name, for messages.
    pub fn signal_name(self) -> &'static str {
        match self {
            ExitCode::Terminated => "SIGTERM",
            _ => "SIGINT",
        }
    }

    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failed => 1,
            ExitCode::Usage => 2,
            ExitCode::NeedsHuman => 3,
            ExitCode::Superseded => 4,
            ExitCode::Interrupted => 130,
            ExitCode::Terminated => 143,
            ExitCode::Task(code) => i32::from(code),
        }
    }
}

/// What went wrong, in terms of what the user must do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong input or configuration; nothing changed in AWS.
    BadInput,
    /// Something failed while doing the work; the service is healthy/unchanged.
    Failed,
    /// The service may be left in a bad state.
    NeedsHuman,
    /// Interrupted by a signal.
    Interrupted(ExitCode),
}

/// Which kind of AWS failure an error came from (set by `aws_error::sdk_error`),
/// so a watch can tell "could not see" from "saw something wrong".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorClass {
    /// Throttled past the SDK's retries (`ThrottlingException`, `Throttling`, …).
    Throttled,
    /// Expired or unknown credentials (`ExpiredToken`, `UnrecognizedClientException`, …).
    Credentials,
    /// A missing permission (`AccessDeniedException`, `AccessDenied`, `UnauthorizedOperation`).
    AccessDenied,
    /// No answer: connection failure or timeout.
    NoAnswer,
    /// Any other error AWS answered with (5xx, validation, not found …).
    Service,
}

impl AwsErrorClass {
    /// Likely to pass on its own (a later poll may succeed).
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Throttled | Self::NoAnswer | Self::Service)
    }
}

#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    causes: Vec<String>,
    hint: Option<String>,
    /// The AWS error class and code, when the error came from an AWS call.
    aws: Option<(AwsErrorClass, Option<String>)>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadInput, message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    pub fn needs_human(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NeedsHuman, message)
    }

    pub fn interrupted(code: ExitCode, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Interrupted(code), message)
    }

    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hint: None,
            aws: None,
        }
    }

    /// Records the AWS error class and code this error came from.
    pub fn with_aws(mut self, class: AwsErrorClass, code: Option<String>) -> Self {
        self.aws = Some((class, code));
        self
    }

    pub fn aws_class(&self) -> Option<AwsErrorClass> {
        self.aws.as_ref().map(|(class, _)| *class)
    }

    /// The AWS error code (`ThrottlingException`, `AccessDeniedException`, …).
    pub fn aws_code(&self) -> Option<&str> {
        self.aws.as_ref().and_then(|(_, code)| code.as_deref())
    }

    /// The error says AWS could not be seen (throttled, credentials, access,
    /// no answer), not that something seen was wrong.
    pub fn is_blind(&self) -> bool {
        matches!(
            self.aws_class(),
            Some(
                AwsErrorClass::Throttled
                    | AwsErrorClass::Credentials
                    | AwsErrorClass::AccessDenied
                    | AwsErrorClass::NoAnswer
            )
        )
    }

    /// The next step a person should take.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a `Caused by:` line (and the whole source chain of `cause`).
    pub fn caused_by(mut self, cause: &(dyn std::error::Error + 'static)) -> Self {
        for line in chain(cause) {
            if self.message != line {
                self.causes.push(line);
            }
        }
        self
    }

    /// Adds a `Caused by:` line from plain text.
    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        self.causes.push(cause.into());
        self
    }

    /// Puts `context` in front of the message ("registering task definition …: <message>").
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Changes the kind, keeping message and hints (e.g. a failure after
    /// `UpdateService` needs a human when the rollback also failed).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn causes(&self) -> &[String] {
        &self.causes
    }

    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    pub fn exit_code(&self) -> ExitCode {
        match self.kind {
            ErrorKind::BadInput => ExitCode::Usage,
            ErrorKind::Failed => ExitCode::Failed,
            ErrorKind::NeedsHuman => ExitCode::NeedsHuman,
            ErrorKind::Interrupted(code) => code,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// An error's text and its sources' texts, in order, without empty lines or a
/// line repeating the one before.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(err) = next {
        let line = err.to_string();
        if !line.is_empty() && lines.last() != Some(&line) {
            lines.push(line);
        }
        next = err.source();
    }
    lines
}

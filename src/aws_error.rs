//! The one place AWS SDK errors become ours: the message names the
//! operation, the kind decides the exit code, and the class says whether the
//! caller could not see (throttled, credentials, access, no answer) or saw an
//! error AWS answered with.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{chain, AwsErrorClass, Error};

/// Codes AWS answers when a caller is throttled (the SDK retried them already).
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
];

/// Credentials that are expired, unknown or badly signed.
const CREDENTIALS: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "RequestExpired",
];

/// A permission the credentials lack.
const ACCESS_DENIED: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnauthorizedOperation",
];

/// The class of an AWS error from its code (and whether AWS answered at all).
pub fn classify(code: Option<&str>, answered: bool) -> AwsErrorClass {
    match code {
        Some(code) if THROTTLING.contains(&code) => AwsErrorClass::Throttled,
        Some(code) if CREDENTIALS.contains(&code) => AwsErrorClass::Credentials,
        Some(code) if ACCESS_DENIED.contains(&code) => AwsErrorClass::AccessDenied,
        _ if !answered => AwsErrorClass::NoAnswer,
        _ => AwsErrorClass::Service,
    }
}

/// Turns an SDK error into ours: credential/permission problems are bad
/// input, the rest failures, always naming the operation and carrying the
/// AWS class and code ([`Error::aws_class`], [`Error::is_blind`]).
pub fn sdk_error<E, R>(operation: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = err.code().map(str::to_string).filter(|c| !c.is_empty());
    let message = err.message().unwrap_or_default().to_string();
    let no_answer = matches!(
        err,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
    );
    let detail = match &code {
        Some(code) => format!("{code}: {message}"),
        None => match &err {
            // No answer from AWS: say so, with the transport's own words, not its Debug dump.
            SdkError::DispatchFailure(_) => {
                format!("no answer from AWS: {}", chain(&err).join(": "))
            }
            SdkError::TimeoutError(_) => format!("timed out: {}", chain(&err).join(": ")),
            _ => DisplayErrorContext(&err).to_string(),
        },
    };
    let class = classify(code.as_deref(), !no_answer);
    let error = match class {
        AwsErrorClass::Credentials | AwsErrorClass::AccessDenied => {
            Error::bad_input(format!("{operation} was refused: {detail}"))
                .hint("check the AWS credentials and their permissions for this account and region")
        }
        _ if matches!(err, SdkError::DispatchFailure(_)) && detail.contains("credentials") => {
            return Error::bad_input(format!("{operation}: no AWS credentials"))
                .cause(detail)
                .hint("configure credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or OIDC in CI)")
                .with_aws(AwsErrorClass::Credentials, None);
        }
        _ => Error::failed(format!("{operation} failed: {detail}")),
    };
    error.with_aws(class, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_error_codes_are_classified_by_what_the_caller_can_do_about_them() {
        let cases = [
            (Some("ThrottlingException"), true, AwsErrorClass::Throttled),
            (Some("Throttling"), true, AwsErrorClass::Throttled),
            (Some("ExpiredToken"), true, AwsErrorClass::Credentials),
            (
                Some("ExpiredTokenException"),
                true,
                AwsErrorClass::Credentials,
            ),
            (
                Some("UnrecognizedClientException"),
                true,
                AwsErrorClass::Credentials,
            ),
            (
                Some("InvalidClientTokenId"),
                true,
                AwsErrorClass::Credentials,
            ),
            (
                Some("AccessDeniedException"),
                true,
                AwsErrorClass::AccessDenied,
            ),
            (Some("AccessDenied"), true, AwsErrorClass::AccessDenied),
            (
                Some("UnauthorizedOperation"),
                true,
                AwsErrorClass::AccessDenied,
            ),
            (Some("ServerException"), true, AwsErrorClass::Service),
            (
                Some("ClusterNotFoundException"),
                true,
                AwsErrorClass::Service,
            ),
            (None, false, AwsErrorClass::NoAnswer),
            (None, true, AwsErrorClass::Service),
        ];
        for (code, answered, want) in cases {
            assert_eq!(classify(code, answered), want, "{code:?}");
        }
    }

    #[test]
    fn blind_errors_are_the_ones_that_say_nothing_about_the_service() {
        let blind = |class| Error::failed("x").with_aws(class, None).is_blind();
        assert!(blind(AwsErrorClass::Throttled));
        assert!(blind(AwsErrorClass::Credentials));
        assert!(blind(AwsErrorClass::AccessDenied));
        assert!(blind(AwsErrorClass::NoAnswer));
        assert!(!blind(AwsErrorClass::Service));
        assert!(!Error::failed("not from AWS").is_blind());
        let err = Error::failed("x").with_aws(
            AwsErrorClass::AccessDenied,
            Some("AccessDeniedException".into()),
        );
        assert_eq!(err.aws_code(), Some("AccessDeniedException"));
        assert!(!AwsErrorClass::AccessDenied.is_transient());
        assert!(AwsErrorClass::Throttled.is_transient());
    }
}

//! What an AWS call's failure means for cutover: an [`ErrorKind`] the
//! engine acts on, and a message naming the call, the router and what to
//! do. A missing permission names the IAM action to grant.
//!
//! Throttling and transient errors (5xx, a dropped connection, an attempt
//! past its timeout) have been retried by the SDK already (standard retry
//! mode, `max_attempts`, exponential backoff with jitter): what arrives
//! here is what retrying did not cure.

use aws_sdk_elasticloadbalancingv2::config::http::HttpResponse;
use aws_sdk_elasticloadbalancingv2::error::{ProvideErrorMetadata, SdkError};
use cutover_provider::ProviderError;

use crate::settings::Resolved;

/// What kind of refusal an AWS error code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// The credentials lack the IAM permission for the call.
    Permission,
    /// The credentials themselves are refused (unknown key, bad signature,
    /// expired token).
    Credentials,
    /// The listener, rule or target group does not exist.
    NotFound,
    /// Still throttled once every attempt was spent.
    Throttled,
    /// Any other refusal (a validation error, a priority in use, a limit).
    Other,
}

/// The class of an AWS error `code`.
pub(crate) fn class(code: Option<&str>) -> Class {
    match code.unwrap_or_default() {
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" => Class::Permission,
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "UnrecognizedClientException"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidAccessKeyId"
        | "AuthFailure"
        | "MissingAuthenticationToken" => Class::Credentials,
        "ListenerNotFound" | "RuleNotFound" | "TargetGroupNotFound" | "LoadBalancerNotFound" => {
            Class::NotFound
        }
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "SlowDown" => Class::Throttled,
        _ => Class::Other,
    }
}

/// The AWS error code of `err`: what the SDK parsed, or else the `<Code>`
/// of the reply's body. An ELB-compatible endpoint may wrap its error in
/// `<Errors>` (moto does for its IAM denials), which the SDK's parser does
/// not read.
pub(crate) fn code_of<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<String> {
    err.code()
        .map(str::to_string)
        .or_else(|| raw_element(err, "Code"))
}

/// The text of the first `<name>` element of a service error's body.
fn raw_element<E>(err: &SdkError<E, HttpResponse>, name: &str) -> Option<String> {
    let SdkError::ServiceError(e) = err else {
        return None;
    };
    let body = std::str::from_utf8(e.raw().body().bytes()?).ok()?;
    element(body, name)
}

/// `<name>text</name>` in `xml`: the text, unescaped of the five XML
/// entities.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let text = xml[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// Where the calls go, for messages.
pub(crate) fn endpoint(config: &Resolved) -> String {
    match &config.endpoint_url {
        Some(url) => format!("the Elastic Load Balancing API at {url}"),
        None => format!("the Elastic Load Balancing API of {}", config.region),
    }
}

/// `err`, from the call `action` (`DescribeRules`), made for `config`'s
/// router.
pub(crate) fn from_sdk<E>(
    action: &'static str,
    config: &Resolved,
    err: SdkError<E, HttpResponse>,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    noting(action, config, err, "")
}

/// [`from_sdk`], with `note` (what the failure left: "; traffic did not
/// move: ...") at the end of the message.
pub(crate) fn noting<E>(
    action: &'static str,
    config: &Resolved,
    err: SdkError<E, HttpResponse>,
    note: &str,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let at = endpoint(config);
    let router = &config.router;
    let attempts = config.max_attempts;
    let code = code_of(&err);
    let message = err
        .message()
        .map(str::to_string)
        .or_else(|| raw_element(&err, "Message"))
        .unwrap_or_default();
    match &err {
        // An HTML error page, an empty 404: the endpoint is no ELB API (a
        // wrong path in `endpoint_url`, a proxy in the way), not a refusal.
        SdkError::ServiceError(e) if code.is_none() && message.is_empty() => {
            ProviderError::failed(format!(
                "{at} answered {action} for router `{router}` with HTTP {}, which is not an AWS error reply: check `endpoint_url`{note}",
                e.raw().status().as_u16()
            ))
        }
        SdkError::ServiceError(_) => {
            let refused = service_error(action, config, code.as_deref(), &message);
            let text = format!("{}{note}", refused.message());
            rebuilt(&refused, text).with_source(err)
        }
        SdkError::TimeoutError(_) => ProviderError::timeout(
            format!("{action} for router `{router}` at {at} ({attempts} attempt(s), each within `timeout`, with backoff{note})"),
            config.timeout * attempts,
        ),
        SdkError::DispatchFailure(d) if d.is_timeout() => ProviderError::timeout(
            format!("{action} for router `{router}` at {at} ({attempts} attempt(s){note})"),
            config.timeout,
        ),
        SdkError::DispatchFailure(d) if d.is_io() => ProviderError::unreachable(
            format!("{at} ({action} for router `{router}`, {attempts} attempt(s){note})"),
            err,
        ),
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            let text = ProviderError::failed("").with_source(err).describe();
            let hint = if text.contains("credential") {
                "; cutover takes credentials from the AWS SDK's standard chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, web identity, ECS or EC2 instance roles"
            } else {
                ""
            };
            ProviderError::failed(format!(
                "{action} for router `{router}` could not be sent to {at}{text}{hint}{note}"
            ))
        }
        _ => ProviderError::failed(format!(
            "{at} answered {action} for router `{router}` with something that is not an AWS reply{note}"
        ))
        .with_source(err),
    }
}

/// `error`'s kind with another message (service errors are `refused` or
/// `failed`).
fn rebuilt(error: &ProviderError, message: String) -> ProviderError {
    match error.kind() {
        cutover_provider::ErrorKind::Refused => ProviderError::refused(message),
        _ => ProviderError::failed(message),
    }
}

fn service_error(
    action: &'static str,
    config: &Resolved,
    code: Option<&str>,
    message: &str,
) -> ProviderError {
    let router = &config.router;
    let said = format!("{} ({message})", code.unwrap_or("an error"));
    match class(code) {
        Class::Permission => ProviderError::refused(format!(
            "AWS refused {action} for router `{router}`: {said}; the credentials lack the IAM permission `elasticloadbalancing:{action}`: grant it (docs/alb.md lists every action cutover needs)"
        )),
        Class::Credentials => ProviderError::refused(format!(
            "AWS refused the credentials for {action} (router `{router}`): {said}; check the credentials the AWS SDK's standard chain finds (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws, instance role)"
        )),
        Class::NotFound => ProviderError::refused(format!(
            "{action} for router `{router}`: {said}; check the ARNs in its `aws_alb` block (and `region`)"
        )),
        Class::Throttled => ProviderError::failed(format!(
            "AWS still throttled {action} for router `{router}` after {} attempt(s) with backoff: {said}; raise `max_attempts`, or run fewer applies at once",
            config.max_attempts
        )),
        Class::Other => ProviderError::refused(format!(
            "AWS refused {action} for router `{router}`: {said}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_element_is_read_from_a_reply_the_sdk_cannot_parse() {
        let moto = "<?xml version=\"1.0\"?><ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>User: a &amp; b is not authorized</Message><Type>Sender</Type></Error></Errors></ErrorResponse>";
        assert_eq!(element(moto, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(
            element(moto, "Message").as_deref(),
            Some("User: a & b is not authorized")
        );
        assert_eq!(element(moto, "RequestId"), None);
        assert_eq!(element("<Code></Code>", "Code"), None);
    }

    #[test]
    fn codes_are_classed() {
        for (code, class_) in [
            (Some("AccessDenied"), Class::Permission),
            (Some("UnauthorizedOperation"), Class::Permission),
            (Some("InvalidClientTokenId"), Class::Credentials),
            (Some("SignatureDoesNotMatch"), Class::Credentials),
            (Some("TargetGroupNotFound"), Class::NotFound),
            (Some("ListenerNotFound"), Class::NotFound),
            (Some("RuleNotFound"), Class::NotFound),
            (Some("Throttling"), Class::Throttled),
            (Some("PriorityInUse"), Class::Other),
            (None, Class::Other),
        ] {
            assert_eq!(class(code), class_, "{code:?}");
        }
    }
}

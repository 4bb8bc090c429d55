//! Whether the ALB would serve a colour's target group now, from its own
//! health view (`DescribeTargetHealth`).
//!
//! - a registered target that is `healthy`: ready;
//! - none registered: refused (a switch would send every request to a 503);
//! - one still `initial` (registering, first checks running) or `unhealthy`
//!   while cutover's own gate passed: not ready, since the ALB's checks come
//!   round (`HealthyThresholdCount` x `HealthCheckIntervalSeconds`);
//! - all `unused`: the target group is attached to no rule of the load
//!   balancer, so the ALB does not check it; cutover refuses rather than
//!   switch to targets nobody checked (a `preview` keeps the idle colour
//!   attached, docs/alb.md);
//! - all `draining` or `unavailable`: refused, waiting will not help.
//!
//! moto reports every registered target `healthy`, so against moto only
//! the first two cases happen; the others are tested here.

use aws_sdk_elasticloadbalancingv2::types::{TargetHealthDescription, TargetHealthStateEnum};
use cutover_provider::ProviderError;

/// The verdict on a target group's targets, for a switch to `colour`.
pub(crate) fn verdict(
    router: &str,
    colour: &str,
    target_group: &str,
    targets: &[TargetHealthDescription],
) -> Result<(), ProviderError> {
    let state = |t: &TargetHealthDescription| {
        t.target_health()
            .and_then(|h| h.state())
            .cloned()
            .unwrap_or_else(|| TargetHealthStateEnum::from("unknown"))
    };
    if targets
        .iter()
        .any(|t| state(t) == TargetHealthStateEnum::Healthy)
    {
        return Ok(());
    }
    let subject = format!("target group {target_group} of colour `{colour}`");
    if targets.is_empty() {
        return Err(ProviderError::refused(format!(
            "{subject} has no registered targets: the ALB would answer 503 to every request, so router `{router}` was not switched and nothing was changed; register the colour's targets first"
        )));
    }
    let listed = targets.iter().map(describe).collect::<Vec<_>>().join(", ");
    let coming = |s: &TargetHealthStateEnum| {
        matches!(
            s,
            TargetHealthStateEnum::Initial | TargetHealthStateEnum::Unhealthy
        )
    };
    if targets.iter().any(|t| coming(&state(t))) {
        return Err(ProviderError::not_ready(format!(
            "the ALB's own health check does not see a target of {subject} healthy yet: {listed}"
        )));
    }
    if targets
        .iter()
        .all(|t| state(t) == TargetHealthStateEnum::Unused)
    {
        return Err(ProviderError::refused(format!(
            "the ALB does not health-check {subject}: {listed}; a target group no rule of the load balancer forwards to is not checked, so router `{router}` was not switched; give the router a `preview` (its rule keeps the idle colour attached and checked) or attach the target group by a rule of your own"
        )));
    }
    Err(ProviderError::refused(format!(
        "no target of {subject} can take traffic: {listed}; router `{router}` was not switched and nothing was changed"
    )))
}

/// `10.0.1.11:80 unhealthy (Target.ResponseCodeMismatch: Health checks
/// failed with these codes: [502])`.
fn describe(t: &TargetHealthDescription) -> String {
    let target = t.target().map_or("?".to_string(), |d| {
        let id = d.id().unwrap_or("?");
        d.port().map_or(id.to_string(), |p| format!("{id}:{p}"))
    });
    let health = t.target_health();
    let state = health
        .and_then(|h| h.state())
        .map_or("unknown", |s| s.as_str());
    let why = match (
        health.and_then(|h| h.reason()),
        health.and_then(|h| h.description()),
    ) {
        (Some(r), Some(d)) => format!(" ({}: {d})", r.as_str()),
        (Some(r), None) => format!(" ({})", r.as_str()),
        (None, Some(d)) => format!(" ({d})"),
        (None, None) => String::new(),
    };
    format!("{target} {state}{why}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::types::{
        TargetDescription, TargetHealth, TargetHealthReasonEnum,
    };
    use cutover_provider::ErrorKind;

    fn target(id: &str, state: &str, reason: Option<&str>) -> TargetHealthDescription {
        TargetHealthDescription::builder()
            .target(TargetDescription::builder().id(id).port(80).build())
            .target_health(
                TargetHealth::builder()
                    .state(TargetHealthStateEnum::from(state))
                    .set_reason(reason.map(TargetHealthReasonEnum::from))
                    .build(),
            )
            .build()
    }

    fn kind(targets: &[TargetHealthDescription]) -> Result<(), (ErrorKind, String)> {
        verdict("public", "green", "targetgroup/green/1", targets)
            .map_err(|e| (e.kind(), e.message().to_string()))
    }

    #[test]
    fn one_healthy_target_is_enough() {
        let targets = [
            target("10.0.1.1", "unhealthy", None),
            target("10.0.1.2", "healthy", None),
        ];
        assert_eq!(kind(&targets), Ok(()));
    }

    #[test]
    fn no_registered_target_is_refused() {
        let (k, m) = kind(&[]).unwrap_err();
        assert_eq!(k, ErrorKind::Refused);
        assert!(
            m.contains(
                "target group targetgroup/green/1 of colour `green` has no registered targets"
            ),
            "{m}"
        );
        assert!(m.contains("nothing was changed"), "{m}");
    }

    #[test]
    fn targets_the_alb_still_checks_are_not_ready() {
        for state in ["initial", "unhealthy"] {
            let targets = [
                target("10.0.1.1", state, Some("Elb.RegistrationInProgress")),
                target("10.0.1.2", "draining", None),
            ];
            let (k, m) = kind(&targets).unwrap_err();
            assert_eq!(k, ErrorKind::NotReady, "{state}");
            assert!(
                m.contains(&format!(
                    "10.0.1.1:80 {state} (Elb.RegistrationInProgress), 10.0.1.2:80 draining"
                )),
                "{m}"
            );
        }
    }

    #[test]
    fn an_unattached_target_group_is_refused_with_the_way_out() {
        let (k, m) = kind(&[target("i-1", "unused", Some("Target.NotInUse"))]).unwrap_err();
        assert_eq!(k, ErrorKind::Refused);
        assert!(m.contains("does not health-check"), "{m}");
        assert!(m.contains("give the router a `preview`"), "{m}");
    }

    #[test]
    fn draining_or_unavailable_targets_are_refused() {
        let targets = [
            target("i-1", "draining", Some("Target.DeregistrationInProgress")),
            target("i-2", "unavailable", Some("Target.HealthCheckDisabled")),
        ];
        let (k, m) = kind(&targets).unwrap_err();
        assert_eq!(k, ErrorKind::Refused);
        assert!(m.contains("no target of target group"), "{m}");
        assert!(
            m.contains("i-2:80 unavailable (Target.HealthCheckDisabled)"),
            "{m}"
        );
    }
}

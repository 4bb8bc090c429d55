//! The preview rule: a listener rule, made by cutover, whose `http-header`
//! condition (`preview_header: preview_header_value`, by default
//! `X-Cutover-Preview: ROUTER`) sends the requests that carry it to the
//! preview colour's target group, live traffic untouched.
//!
//! The rule is found again by that condition, never by a priority or a tag,
//! so it needs no state and no tagging permission. For a router that
//! switches a listener rule (`rule_arn`), the preview rule also carries
//! that rule's other conditions (its host or path), so that it previews
//! only what the router switches.

use aws_sdk_elasticloadbalancingv2::types::{HttpHeaderConditionConfig, Rule, RuleCondition};
use cutover_provider::ProviderError;

use crate::settings::Resolved;

/// The preview rule among `rules`: the one whose conditions include the
/// header condition of `config` (header names compare case-insensitively,
/// as HTTP and the ALB do).
pub(crate) fn find<'a>(rules: &'a [Rule], config: &Resolved) -> Option<&'a Rule> {
    rules.iter().find(|rule| {
        rule.is_default() != Some(true) && rule.conditions().iter().any(|c| is_ours(c, config))
    })
}

fn is_ours(condition: &RuleCondition, config: &Resolved) -> bool {
    let Some(header) = condition.http_header_config() else {
        return false;
    };
    condition.field() == Some("http-header")
        && header
            .http_header_name()
            .is_some_and(|n| n.eq_ignore_ascii_case(&config.preview_header))
        && header.values() == [config.preview_value.as_str()]
}

/// The conditions a new preview rule gets: the header condition, and, for
/// a router that switches a rule, that rule's own conditions.
pub(crate) fn conditions(switched: Option<&Rule>, config: &Resolved) -> Vec<RuleCondition> {
    let header = RuleCondition::builder()
        .field("http-header")
        .http_header_config(
            HttpHeaderConditionConfig::builder()
                .http_header_name(&config.preview_header)
                .values(&config.preview_value)
                .build(),
        )
        .build();
    let mut out: Vec<RuleCondition> = switched
        .filter(|r| r.is_default() != Some(true))
        .map(|r| r.conditions().iter().map(without_legacy_values).collect())
        .unwrap_or_default();
    out.push(header);
    out
}

/// AWS describes a host or path condition twice (`Values` and its config);
/// a create that gives both is refused, so only the config is sent.
fn without_legacy_values(condition: &RuleCondition) -> RuleCondition {
    let mut c = condition.clone();
    let has_config = c.host_header_config.is_some() || c.path_pattern_config.is_some();
    if has_config {
        c.values = None;
    }
    c
}

/// The priority of a new preview rule: `preview_priority`, or the lowest
/// free one — above every rule (listener mode), or above the switched rule
/// (rule mode), so that the preview is matched before what it previews.
pub(crate) fn priority(
    rules: &[Rule],
    switched: Option<&Rule>,
    config: &Resolved,
) -> Result<i32, ProviderError> {
    let taken: Vec<i32> = rules
        .iter()
        .filter_map(|r| r.priority()?.parse().ok())
        .collect();
    let below = switched
        .and_then(|r| r.priority()?.parse::<i32>().ok())
        .unwrap_or(50_001);
    if let Some(p) = config.preview_priority {
        let p = p as i32;
        if taken.contains(&p) {
            return Err(ProviderError::refused(format!(
                "`preview_priority` = {p}: another rule of listener {} has that priority; choose a free one, or remove `preview_priority` to let cutover choose",
                crate::arn::short(&config.listener_arn)
            )));
        }
        return Ok(p);
    }
    (1..below).find(|p| !taken.contains(p)).ok_or_else(|| {
        ProviderError::refused(format!(
            "no free priority before {} for router `{}`'s preview rule; set `preview_priority`",
            config.switched(),
            config.router
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::types::HostHeaderConditionConfig;
    use cutover_provider::RouterSpec;
    use serde_json::json;

    const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012";

    fn config(extra: serde_json::Value) -> Resolved {
        let mut body = json!({
            "listener_arn": format!("{ARN}:listener/app/web/5/f"),
            "target_groups": {"blue": format!("{ARN}:targetgroup/blue/1")},
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        crate::settings::resolve(&RouterSpec::new("public", Default::default(), body, "/")).unwrap()
    }

    fn header(name: &str, value: &str) -> RuleCondition {
        RuleCondition::builder()
            .field("http-header")
            .http_header_config(
                HttpHeaderConditionConfig::builder()
                    .http_header_name(name)
                    .values(value)
                    .build(),
            )
            .build()
    }

    fn host(name: &str) -> RuleCondition {
        RuleCondition::builder()
            .field("host-header")
            .values(name)
            .host_header_config(HostHeaderConditionConfig::builder().values(name).build())
            .build()
    }

    fn rule(priority: &str, conditions: Vec<RuleCondition>) -> Rule {
        Rule::builder()
            .rule_arn(format!("{ARN}:listener-rule/app/web/5/f/{priority}"))
            .priority(priority)
            .is_default(priority == "default")
            .set_conditions(Some(conditions))
            .build()
    }

    #[test]
    fn the_preview_rule_is_found_by_its_header_condition() {
        let c = config(json!({}));
        let rules = [
            rule("1", vec![header("X-Cutover-Preview", "api")]),
            rule(
                "2",
                vec![host("a.test"), header("x-cutover-preview", "public")],
            ),
            rule("default", vec![]),
        ];
        assert_eq!(find(&rules, &c).and_then(|r| r.priority()), Some("2"));
        let c = config(json!({"preview_header": "X-Other"}));
        assert!(find(&rules, &c).is_none());
    }

    #[test]
    fn a_new_preview_rule_previews_what_the_switched_rule_matches() {
        let c = config(json!({}));
        let conditions = conditions(Some(&rule("5", vec![host("a.test")])), &c);
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0].values, None, "host given once, by its config");
        assert_eq!(
            conditions[0]
                .host_header_config()
                .map(|h| h.values().to_vec()),
            Some(vec!["a.test".to_string()])
        );
        assert!(is_ours(&conditions[1], &c));
        assert_eq!(self::conditions(None, &c).len(), 1);
    }

    #[test]
    fn its_priority_is_the_lowest_free_one_before_the_switched_rule() {
        let c = config(json!({}));
        let rules = [
            rule("1", vec![]),
            rule("3", vec![]),
            rule("default", vec![]),
        ];
        assert_eq!(priority(&rules, None, &c).unwrap(), 2);
        assert_eq!(priority(&rules, Some(&rules[1]), &c).unwrap(), 2);
        let err = priority(&rules, Some(&rule("2", vec![])), &c).unwrap_err();
        assert!(err.message().contains("no free priority before"), "{err}");
        let c = config(json!({"preview_priority": 3}));
        let err = priority(&rules, None, &c).unwrap_err();
        assert!(err.message().contains("`preview_priority` = 3"), "{err}");
        let c = config(json!({"preview_priority": 9}));
        assert_eq!(priority(&rules, None, &c).unwrap(), 9);
    }
}

use super::*;
use aws_sdk_elasticloadbalancingv2::types::{
    AuthenticateOidcActionConfig, FixedResponseActionConfig, ForwardActionConfig, TargetGroupTuple,
};
use cutover_provider::RouterSpec;
use serde_json::json;

const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012";

fn tg(name: &str) -> String {
    format!("{ARN}:targetgroup/{name}/73e2d6bc24d8a067")
}

fn config() -> Resolved {
    let body = json!({
        "listener_arn": format!("{ARN}:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"),
        "target_groups": {"blue": tg("blue"), "green": tg("green")},
    });
    crate::settings::resolve(&RouterSpec::new("public", Default::default(), body, "/")).unwrap()
}

/// A forward as AWS describes a plain one: the ARN and a one-tuple config.
fn described_forward(arn: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(arn)
        .order(1)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(arn)
                        .weight(1)
                        .build(),
                )
                .build(),
        )
        .build()
}

fn weighted(pairs: &[(&str, i32)]) -> Action {
    let mut config = ForwardActionConfig::builder();
    for (name, weight) in pairs {
        config = config.target_groups(
            TargetGroupTuple::builder()
                .target_group_arn(tg(name))
                .weight(*weight)
                .build(),
        );
    }
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(config.build())
        .build()
}

fn oidc() -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::AuthenticateOidc)
        .order(1)
        .authenticate_oidc_config(
            AuthenticateOidcActionConfig::builder()
                .issuer("https://idp.example")
                .client_id("cutover")
                .build(),
        )
        .build()
}

#[test]
fn a_single_forward_is_its_colour() {
    let seen = seen(&forward_of(&[described_forward(&tg("green"))]), &config());
    assert_eq!(seen.live.as_deref(), Some("green"));
    assert_eq!(seen.raw, "targetgroup/green/73e2d6bc24d8a067");
    assert!(seen.drift.is_empty(), "{:?}", seen.drift);
    // The ARN alone, as cutover sends it, reads the same.
    let ours = forward_of(&[forward_to(&tg("green"), None)]);
    assert_eq!(
        ours,
        Forward::One {
            arn: tg("green"),
            weighted: vec![]
        }
    );
}

#[test]
fn a_forward_to_no_colour_is_drift_named_as_such() {
    let seen = seen(&forward_of(&[described_forward(&tg("canary"))]), &config());
    assert_eq!(seen.live, None);
    assert_eq!(seen.raw, "targetgroup/canary/73e2d6bc24d8a067");
    assert_eq!(seen.drift.len(), 1);
    assert_eq!(seen.drift[0].kind, RouterDriftKind::EditedOutside);
    assert!(
        seen.drift[0].message.contains(
            "forwards to target group targetgroup/canary/73e2d6bc24d8a067, which is no colour's target group (blue = targetgroup/blue/"
        ),
        "{}",
        seen.drift[0]
    );
}

#[test]
fn a_weighted_forward_is_drift_named_as_such() {
    let seen = seen(
        &forward_of(&[weighted(&[("blue", 90), ("green", 10)])]),
        &config(),
    );
    assert_eq!(seen.live, None);
    assert_eq!(seen.raw, "weighted forward: blue 90, green 10");
    assert!(
        seen.drift[0]
            .message
            .contains("is a weighted forward between target groups (blue 90, green 10)"),
        "{}",
        seen.drift[0]
    );
    // All the weight on one colour: that colour is live, the shape is drift.
    let seen = seen_of(&[weighted(&[("blue", 0), ("green", 5)])]);
    assert_eq!(seen.live.as_deref(), Some("green"));
    assert!(
        seen.drift[0]
            .message
            .contains("is a weighted forward (blue 0, green 5) rather than cutover's single forward; all traffic goes to green"),
        "{}",
        seen.drift[0]
    );
}

fn seen_of(actions: &[Action]) -> Seen {
    seen(&forward_of(actions), &config())
}

#[test]
fn no_forward_is_no_colour_and_no_drift() {
    let fixed = Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            FixedResponseActionConfig::builder()
                .status_code("503")
                .build(),
        )
        .build();
    let seen = seen_of(&[fixed]);
    assert_eq!((seen.live, seen.raw.as_str()), (None, "fixed-response 503"));
    assert!(seen.drift.is_empty());
    assert_eq!(seen_of(&[]).raw, "no action");
}

#[test]
fn a_switch_replaces_the_terminal_action_and_keeps_authentication() {
    let actions = vec![oidc(), {
        let mut f = weighted(&[("blue", 50), ("green", 50)]);
        f.order = Some(2);
        f
    }];
    let out = switched(&actions, &tg("green"));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].r#type(), Some(&ActionTypeEnum::AuthenticateOidc));
    let oidc = out[0].authenticate_oidc_config().unwrap();
    assert_eq!(
        oidc.use_existing_client_secret,
        Some(true),
        "AWS keeps the secret only when told"
    );
    assert_eq!(out[1], forward_to(&tg("green"), Some(2)));
    assert!(forwards_only_to(&out, &tg("green")));
    assert!(!forwards_only_to(&actions, &tg("green")));
    assert!(!forwards_only_to(&out, &tg("blue")));
    // A plain forward becomes a plain forward, its order kept.
    let out = switched(&[described_forward(&tg("blue"))], &tg("green"));
    assert_eq!(out, vec![forward_to(&tg("green"), Some(1))]);
    // Nothing at all becomes a forward.
    assert_eq!(
        switched(&[], &tg("green")),
        vec![forward_to(&tg("green"), None)]
    );
}

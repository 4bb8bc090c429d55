use super::*;
use cutover_provider::ErrorKind;
use serde_json::json;

const ARN: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012";

fn listener() -> String {
    format!("{ARN}:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2")
}

fn tg(name: &str) -> String {
    format!("{ARN}:targetgroup/{name}/73e2d6bc24d8a067")
}

fn body() -> Value {
    json!({
        "listener_arn": listener(),
        "target_groups": {"blue": tg("blue"), "green": tg("green")},
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut b = body();
    b[field] = value;
    b
}

fn spec(settings: Value) -> RouterSpec {
    RouterSpec::new("public", Default::default(), settings, "/etc/cutover")
}

#[test]
fn an_instance_takes_target_groups_by_block_for_its_own_key() {
    let colours = [r#"blue["api"]"#, r#"green["api"]"#, r#"blue["web"]"#]
        .iter()
        .map(|n| cutover_provider::Colour {
            name: n.to_string(),
            endpoints: vec![],
        })
        .collect();
    let s = RouterSpec::new(r#"svc["api"]"#, colours, body(), "/etc/cutover");
    let r = resolve(&s).unwrap();
    assert_eq!(r.preview_value, "svc.api");
    // body() names target groups `blue` and `green`: the blocks.
    assert_eq!(
        r.colour_of(&tg("green")).as_deref(),
        Some(r#"green["api"]"#)
    );
    let blue = cutover_provider::Colour {
        name: r#"blue["api"]"#.into(),
        endpoints: vec![],
    };
    assert_eq!(r.target_group(&blue).unwrap(), tg("blue"));
}

#[test]
fn defaults() {
    let r = resolve(&spec(body())).unwrap();
    assert_eq!(r.region, "us-east-1");
    assert_eq!(r.rule_arn, None);
    assert_eq!(r.endpoint_url, None);
    assert_eq!(
        (r.preview_header.as_str(), r.preview_value.as_str()),
        ("X-Cutover-Preview", "public")
    );
    assert_eq!(r.preview_priority, None);
    assert_eq!((r.timeout, r.max_attempts), (Duration::from_secs(10), 4));
    assert_eq!(r.colour_of(&tg("green")).as_deref(), Some("green"));
    assert_eq!(r.colour_of(&tg("other")), None);
    assert_eq!(
        r.switched(),
        "the default action of listener listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
    );
}

#[test]
fn every_setting() {
    let mut b = body();
    let rule = format!("{ARN}:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d0");
    b["rule_arn"] = json!(rule);
    b["region"] = json!("us-east-1");
    b["endpoint_url"] = json!("http://127.0.0.1:5000");
    b["preview_header"] = json!("X-Preview");
    b["preview_header_value"] = json!("yes please");
    b["preview_priority"] = json!(7);
    b["timeout"] = json!("2s");
    b["max_attempts"] = json!(2);
    let r = resolve(&spec(b)).unwrap();
    assert_eq!(r.rule_arn.as_deref(), Some(rule.as_str()));
    assert_eq!(r.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(
        (r.preview_header.as_str(), r.preview_value.as_str()),
        ("X-Preview", "yes please")
    );
    assert_eq!(r.preview_priority, Some(7));
    assert_eq!((r.timeout, r.max_attempts), (Duration::from_secs(2), 2));
    assert!(r
        .switched()
        .starts_with("listener rule listener-rule/app/web/"));
}

#[test]
fn errors_name_the_field() {
    let other_listener = format!("{ARN}:listener-rule/app/web/50dc6c495c0c9188/0000000000000000/1");
    let cases = [
        (json!({"target_groups": {}}), "listener_arn"),
        (json!({"listener_arn": listener()}), "target_groups"),
        (with("listenr", json!(1)), "listenr"),
        (
            with(
                "listener_arn",
                json!("arn:aws:elasticloadbalancing:r:1:listener/net/n/1/2"),
            ),
            "listener_arn",
        ),
        (with("listener_arn", json!(5)), "listener_arn"),
        (with("rule_arn", json!(listener())), "rule_arn"),
        (with("rule_arn", json!(other_listener)), "rule_arn"),
        (with("target_groups", json!({})), "target_groups"),
        (
            with("target_groups", json!({"blue": "blue-tg"})),
            "target_groups.blue",
        ),
        (
            with("target_groups", json!({"blue": 5})),
            "target_groups.blue",
        ),
        (
            with("target_groups", json!({"blue": tg("x"), "green": tg("x")})),
            "target_groups.green",
        ),
        (
            with(
                "target_groups",
                json!({"blue": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/b/1"}),
            ),
            "target_groups.blue",
        ),
        (with("region", json!("eu-west-1")), "region"),
        (
            with("endpoint_url", json!("127.0.0.1:5000")),
            "endpoint_url",
        ),
        (with("endpoint_url", json!("http://")), "endpoint_url"),
        (with("preview_header", json!("X Preview")), "preview_header"),
        (with("preview_header", json!("")), "preview_header"),
        (
            with("preview_header_value", json!("")),
            "preview_header_value",
        ),
        (with("preview_priority", json!(0)), "preview_priority"),
        (with("preview_priority", json!(50_001)), "preview_priority"),
        (with("preview_priority", json!(-1)), "preview_priority"),
        (with("timeout", json!("soon")), "timeout"),
        (with("timeout", json!("0s")), "timeout"),
        (with("max_attempts", json!(0)), "max_attempts"),
        (with("max_attempts", json!(11)), "max_attempts"),
    ];
    for (body, field) in cases {
        let err = parse(&body).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Settings, "{body}: {err}");
        assert_eq!(err.field(), Some(field), "{body}: {}", err.describe());
        assert!(err.message().starts_with("in `aws_alb` block: "), "{err}");
    }
}

#[test]
fn a_colour_without_a_target_group_is_named() {
    let r = resolve(&spec(body())).unwrap();
    let red = Colour {
        name: "red".into(),
        endpoints: vec![],
    };
    let err = r.target_group(&red).unwrap_err();
    assert_eq!(err.field(), Some("target_groups"));
    assert!(
        err.message()
            .contains("no target group for colour `red` (`target_groups` names blue, green)"),
        "{err}"
    );
}

//! The ARNs an `aws_alb` block names, checked without asking AWS: a typo
//! in an ARN, an NLB listener, a rule of another listener or a target group
//! of another region are settings errors pointing at the attribute, found
//! by `cutover validate` before anything live is read.

/// The parts of an `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    /// `listener/app/NAME/LB-ID/LISTENER-ID`, `targetgroup/NAME/ID`, ...
    pub resource: &'a str,
}

/// What an ARN of Elastic Load Balancing names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Listener,
    Rule,
    TargetGroup,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Listener => "an Application Load Balancer listener",
            Kind::Rule => "a listener rule of an Application Load Balancer",
            Kind::TargetGroup => "a target group",
        }
    }

    fn example(self) -> &'static str {
        match self {
            Kind::Listener => "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
            Kind::Rule => "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee",
            Kind::TargetGroup => "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/73e2d6bc24d8a067",
        }
    }

    /// The resource's prefix and how many `/`-separated ids follow it.
    fn shape(self) -> (&'static str, usize) {
        match self {
            Kind::Listener => ("listener/app/", 3),
            Kind::Rule => ("listener-rule/app/", 4),
            Kind::TargetGroup => ("targetgroup/", 2),
        }
    }
}

/// Parse `text` as an ARN of `kind`; the error completes "`field` ...".
pub(crate) fn parse(text: &str, kind: Kind) -> Result<Arn<'_>, String> {
    let wrong = |why: &str| {
        format!(
            "= {text:?} is not {}: {why}; it looks like {:?}",
            kind.noun(),
            kind.example()
        )
    };
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = parts[..] else {
        return Err(wrong("an ARN has six `:`-separated parts"));
    };
    if scheme != "arn" || partition.is_empty() {
        return Err(wrong("an ARN starts with `arn:aws:`"));
    }
    if service != "elasticloadbalancing" {
        return Err(wrong(&format!(
            "its service is `{service}`, not `elasticloadbalancing`"
        )));
    }
    if region.is_empty() || account.is_empty() {
        return Err(wrong("it names no region or no account"));
    }
    let (prefix, ids) = kind.shape();
    if kind == Kind::Listener && resource.starts_with("listener/net/") {
        return Err(format!(
            "= {text:?} is a Network Load Balancer's listener: `aws_alb` drives Application Load Balancers (an NLB has no listener rules to switch)"
        ));
    }
    let rest = resource
        .strip_prefix(prefix)
        .ok_or_else(|| wrong(&format!("its resource does not start with `{prefix}`")))?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() != ids || segments.iter().any(|s| s.is_empty()) {
        return Err(wrong(&format!(
            "`{prefix}` is followed by {ids} `/`-separated names and ids"
        )));
    }
    Ok(Arn {
        partition,
        region,
        account,
        resource,
    })
}

impl Arn<'_> {
    /// `app/NAME/LB-ID/LISTENER-ID` of a listener or of a rule's listener.
    pub fn listener_path(&self) -> Option<&str> {
        if let Some(rest) = self.resource.strip_prefix("listener/") {
            return Some(rest);
        }
        let rest = self.resource.strip_prefix("listener-rule/")?;
        rest.rsplit_once('/').map(|(listener, _rule)| listener)
    }
}

/// How a target group is named in messages: `targetgroup/green/73e2d6bc…`
/// (the part after the account), or the text itself when it is no ARN.
pub(crate) fn short(arn: &str) -> &str {
    arn.splitn(6, ':').nth(5).unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTENER: &str =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";

    #[test]
    fn listener_rule_and_target_group_arns_are_parsed() {
        let listener = parse(LISTENER, Kind::Listener).unwrap();
        assert_eq!(
            (listener.partition, listener.region, listener.account),
            ("aws", "us-east-1", "123456789012")
        );
        assert_eq!(
            listener.listener_path(),
            Some("app/web/50dc6c495c0c9188/f2f7dc8efc522ab2")
        );
        let rule = parse(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee",
            Kind::Rule,
        )
        .unwrap();
        assert_eq!(rule.listener_path(), listener.listener_path());
        let tg = parse(
            "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:targetgroup/green/73e2d6bc24d8a067",
            Kind::TargetGroup,
        )
        .unwrap();
        assert_eq!((tg.partition, tg.region), ("aws-cn", "cn-north-1"));
        assert_eq!(tg.listener_path(), None);
    }

    #[test]
    fn what_is_no_such_arn_is_said() {
        let cases = [
            ("", Kind::Listener, "six `:`-separated parts"),
            ("listener/app/web/1/2", Kind::Listener, "six"),
            (
                "arx:aws:elasticloadbalancing:r:1:listener/app/w/1/2",
                Kind::Listener,
                "starts with `arn:aws:`",
            ),
            (
                "arn:aws:ec2:r:1:listener/app/w/1/2",
                Kind::Listener,
                "service is `ec2`",
            ),
            (
                "arn:aws:elasticloadbalancing::1:listener/app/w/1/2",
                Kind::Listener,
                "no region",
            ),
            (
                "arn:aws:elasticloadbalancing:r:1:listener/net/w/1/2",
                Kind::Listener,
                "Network Load Balancer",
            ),
            (
                "arn:aws:elasticloadbalancing:r:1:listener/app/w/1",
                Kind::Listener,
                "3 `/`-separated",
            ),
            (
                "arn:aws:elasticloadbalancing:r:1:listener/app/w/1/2/",
                Kind::Listener,
                "3 `/`-separated",
            ),
            (
                "arn:aws:elasticloadbalancing:r:1:targetgroup/g/1",
                Kind::Listener,
                "does not start with `listener/app/`",
            ),
            (
                LISTENER,
                Kind::TargetGroup,
                "does not start with `targetgroup/`",
            ),
            (
                LISTENER,
                Kind::Rule,
                "does not start with `listener-rule/app/`",
            ),
        ];
        for (text, kind, says) in cases {
            let error = parse(text, kind).unwrap_err();
            assert!(error.contains(says), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_target_group_is_named_by_its_resource() {
        assert_eq!(
            short("arn:aws:elasticloadbalancing:r:1:targetgroup/green/73e2"),
            "targetgroup/green/73e2"
        );
        assert_eq!(short("not-an-arn"), "not-an-arn");
    }
}

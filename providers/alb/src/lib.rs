//! cutover's AWS Application Load Balancer router: the `aws_alb { ... }`
//! block.
//!
//! The router is one listener's default action, or one of its rules
//! (`rule_arn`), and each colour is a target group (`target_groups`). It is
//! driven through the Elastic Load Balancing API with the AWS SDK for Rust
//! (src/client.rs: credentials from the SDK's standard chain, rustls,
//! bounded retries):
//!
//! - `read`: one `DescribeRules` of the listener (shared by the routers of
//!   one listener that read at once) gives the switched action and the
//!   preview rule; the live colour is the target group the terminal action
//!   forwards to (src/forward.rs says what else it may be, and the drift);
//! - `preflight`: the target's target group exists (`DescribeTargetGroups`:
//!   moto, unlike AWS, accepts a forward to one that does not) and the
//!   ALB's own health check sees one of its targets healthy
//!   (`DescribeTargetHealth`, src/health.rs);
//! - `switch`: the same checks, then ONE `ModifyListener` (or `ModifyRule`)
//!   whose terminal action forwards to the target's target group alone,
//!   confirmed by reading the rules back; nothing is sent when it already
//!   does;
//! - `set_preview`: the preview rule (src/preview.rs) created, repointed or
//!   deleted, confirmed the same way;
//! - `drain_floor`: the served colour's target group's deregistration delay
//!   (`DescribeTargetGroupAttributes`), which a drain of it then lasts at
//!   least: the ALB cannot count a target group's requests in flight
//!   (`open_sessions` cannot tell), and that delay is the time AWS itself
//!   gives them.
//!
//! The ALB keeps what the API changed: nothing is lost on its side, so
//! there is no file to rewrite and no reload to survive.
#![deny(missing_docs)]

mod alb;
mod arn;
mod client;
mod error;
mod forward;
mod health;
mod preview;
mod rules;
mod settings;

use cutover_provider::{Colour, DrainFloor, LiveRouter, ProviderError, RouterProvider, RouterSpec};
use serde_json::Value;

use crate::alb::Alb;
use crate::forward::Forward;

/// The `aws_alb` router provider.
#[derive(Debug, Default, Clone)]
pub struct AwsAlb;

#[async_trait::async_trait]
impl RouterProvider for AwsAlb {
    fn validate(&self, settings: &Value) -> Result<(), ProviderError> {
        settings::parse(settings).map(|_| ())
    }

    async fn read(&self, spec: &RouterSpec) -> Result<LiveRouter, ProviderError> {
        let alb = Alb::new(spec).await?;
        let rules = rules::shared(&alb.client, &alb.config).await?;
        let switched = alb.switched_rule(&rules)?;
        let seen = forward::seen(&forward::forward_of(switched.actions()), &alb.config);
        let known = |c: Option<String>| c.filter(|name| spec.colour(name).is_some());
        let preview =
            preview::find(&rules, &alb.config).and_then(|rule| {
                match forward::forward_of(rule.actions()) {
                    Forward::One { arn, .. } => alb.config.colour_of(&arn).map(|c| c.into_owned()),
                    _ => None,
                }
            });
        Ok(LiveRouter {
            live: known(seen.live),
            raw: Some(seen.raw),
            preview: known(preview),
            drift: seen.drift,
            ..LiveRouter::default()
        })
    }

    async fn preflight(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let alb = Alb::new(spec).await?;
        let target_group = alb.config.target_group(target)?.to_string();
        alb.check_target(target, &target_group, true).await?;
        let rules = rules::fresh(&alb.client, &alb.config).await?;
        alb.switched_rule(&rules).map(|_| ())
    }

    async fn switch(&self, spec: &RouterSpec, target: &Colour) -> Result<(), ProviderError> {
        let alb = Alb::new(spec).await?;
        let target_group = alb.config.target_group(target)?.to_string();
        alb.check_target(target, &target_group, true).await?;
        let rules = rules::fresh(&alb.client, &alb.config).await?;
        let switched = alb.switched_rule(&rules)?;
        if forward::forwards_only_to(switched.actions(), &target_group) {
            return Ok(());
        }
        let actions = forward::switched(switched.actions(), &target_group);
        alb.modify(actions).await?;
        alb.confirm_switch(&target.name, &target_group).await
    }

    fn has_preview(&self) -> bool {
        true
    }

    async fn drain_floor(
        &self,
        spec: &RouterSpec,
        colour: &Colour,
    ) -> Result<Option<DrainFloor>, ProviderError> {
        Alb::new(spec).await?.deregistration_delay(colour).await
    }

    async fn set_preview(
        &self,
        spec: &RouterSpec,
        target: Option<&Colour>,
    ) -> Result<(), ProviderError> {
        let alb = Alb::new(spec).await?;
        let target_group = match target {
            Some(colour) => {
                let tg = alb.config.target_group(colour)?.to_string();
                // The preview rule is what attaches an idle target group,
                // so its targets need only be registered: the ALB checks
                // them once the rule is there.
                alb.check_target(colour, &tg, false).await?;
                Some(tg)
            }
            None => None,
        };
        let _turn = rules::turn(&alb.config.listener_arn).lock_owned().await;
        let rules = rules::fresh(&alb.client, &alb.config).await?;
        let existing = preview::find(&rules, &alb.config).cloned();
        match (&target_group, existing) {
            (None, None) => return Ok(()),
            (None, Some(rule)) => alb.delete_rule(&rule).await?,
            (Some(tg), Some(rule)) if forward::forwards_only_to(rule.actions(), tg) => {}
            (Some(tg), Some(rule)) => alb.repoint_rule(&rule, tg).await?,
            (Some(tg), None) => alb.create_preview(&rules, tg).await?,
        }
        alb.confirm_preview(target_group.as_deref()).await
    }
}

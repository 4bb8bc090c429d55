//! One router's conversation with the Elastic Load Balancing API: the
//! checks before a switch, the one call that switches, the preview rule's
//! calls, and the reads back that confirm each.

use aws_sdk_elasticloadbalancingv2::types::{Action, Rule};
use aws_sdk_elasticloadbalancingv2::Client;
use cutover_provider::{Colour, DrainFloor, ProviderError, RouterSpec};

use crate::arn::short;
use crate::error::{self, from_sdk, noting};
use crate::forward::{self, Forward};
use crate::settings::{self, Resolved};
use crate::{health, preview, rules};

/// The end of the message of a check's failure: the checks come first.
const UNCHANGED: &str = "; nothing was changed";

/// One router's settings and the client it calls AWS with.
pub(crate) struct Alb {
    pub config: Resolved,
    pub client: Client,
}

impl Alb {
    pub async fn new(spec: &RouterSpec) -> Result<Alb, ProviderError> {
        let config = settings::resolve(spec)?;
        let client = crate::client::client(&config).await;
        Ok(Alb { config, client })
    }

    /// The rule whose actions the router switches: the listener's default
    /// rule, or the rule of `rule_arn`.
    pub fn switched_rule<'a>(&self, rules: &'a [Rule]) -> Result<&'a Rule, ProviderError> {
        let found = match &self.config.rule_arn {
            Some(arn) => rules.iter().find(|r| r.rule_arn() == Some(arn.as_str())),
            None => rules.iter().find(|r| r.is_default() == Some(true)),
        };
        found.ok_or_else(|| {
            let missing = match &self.config.rule_arn {
                Some(arn) => format!("rule {}", short(arn)),
                None => "default rule".to_string(),
            };
            ProviderError::refused(format!(
                "listener {} has no {missing} (router `{}`); check `listener_arn` and `rule_arn`",
                short(&self.config.listener_arn),
                self.config.router
            ))
        })
    }

    /// That `target_group` (of `colour`) exists and, when `healthy`, that
    /// the ALB sees one of its targets healthy; otherwise that it has
    /// registered targets at all. moto accepts a forward to a target group
    /// that does not exist and calls every target healthy, so both are
    /// checked here, whatever the API would accept.
    pub async fn check_target(
        &self,
        colour: &Colour,
        target_group: &str,
        healthy: bool,
    ) -> Result<(), ProviderError> {
        let router = &self.config.router;
        let described = self
            .client
            .describe_target_groups()
            .target_group_arns(target_group)
            .send()
            .await;
        match described {
            Err(e) if error::class(error::code_of(&e).as_deref()) == error::Class::NotFound => {
                return Err(ProviderError::refused(format!(
                    "target group {} of colour `{}` does not exist (DescribeTargetGroups: TargetGroupNotFound), so router `{router}` was not switched and nothing was changed; fix `target_groups.{}`",
                    short(target_group), colour.name, colour.name
                )));
            }
            // The checks come before any change: say so, whatever broke.
            Err(e) => return Err(noting("DescribeTargetGroups", &self.config, e, UNCHANGED)),
            Ok(_) => {}
        }
        let described = self
            .client
            .describe_target_health()
            .target_group_arn(target_group)
            .send()
            .await
            .map_err(|e| noting("DescribeTargetHealth", &self.config, e, UNCHANGED))?;
        let targets = described.target_health_descriptions();
        if healthy || targets.is_empty() {
            return health::verdict(router, &colour.name, short(target_group), targets);
        }
        Ok(())
    }

    /// The deregistration delay of `colour`'s target group, as the floor of
    /// a drain of it; `None` for a colour without one, or a target group
    /// that is gone (nothing to wait for there).
    pub async fn deregistration_delay(
        &self,
        colour: &Colour,
    ) -> Result<Option<DrainFloor>, ProviderError> {
        let Some(target_group) =
            cutover_provider::name::lookup(&self.config.target_groups, &colour.name)
        else {
            return Ok(None);
        };
        let described = self
            .client
            .describe_target_group_attributes()
            .target_group_arn(target_group)
            .send()
            .await;
        let attributes = match described {
            Ok(a) => a,
            Err(e) if error::class(error::code_of(&e).as_deref()) == error::Class::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(from_sdk("DescribeTargetGroupAttributes", &self.config, e)),
        };
        let seconds = attributes
            .attributes()
            .iter()
            .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
            .and_then(|a| a.value()?.parse::<u64>().ok());
        Ok(seconds.filter(|s| *s > 0).map(|s| DrainFloor {
            at_least_ms: s.saturating_mul(1000),
            why: format!(
                "the deregistration delay of target group {}",
                short(target_group)
            ),
        }))
    }

    /// Send the switched rule's new actions: one `ModifyListener` (the
    /// default action) or one `ModifyRule`. On a failure, the rules are read
    /// again to say whether traffic moved.
    pub async fn modify(&self, actions: Vec<Action>) -> Result<(), ProviderError> {
        let config = &self.config;
        match &config.rule_arn {
            Some(rule) => {
                let sent = self
                    .client
                    .modify_rule()
                    .rule_arn(rule)
                    .set_actions(Some(actions))
                    .send()
                    .await;
                match sent {
                    Ok(_) => Ok(()),
                    Err(e) => Err(noting("ModifyRule", config, e, &self.traffic_now().await)),
                }
            }
            None => {
                let sent = self
                    .client
                    .modify_listener()
                    .listener_arn(&config.listener_arn)
                    .set_default_actions(Some(actions))
                    .send()
                    .await;
                match sent {
                    Ok(_) => Ok(()),
                    Err(e) => Err(noting(
                        "ModifyListener",
                        config,
                        e,
                        &self.traffic_now().await,
                    )),
                }
            }
        }
    }

    /// Where the switched rule sends traffic now, as a note for an error.
    async fn traffic_now(&self) -> String {
        let read = rules::fresh(&self.client, &self.config).await;
        let what = self.config.switched();
        match read.and_then(|rules| self.switched_rule(&rules).map(|r| r.actions().to_vec())) {
            Ok(actions) => {
                let seen = forward::seen(&forward::forward_of(&actions), &self.config);
                let now = seen.live.unwrap_or(seen.raw);
                format!("; read back: {what} forwards to {now}")
            }
            Err(e) => format!(
                "; {what} could not be read back ({}), so whether traffic moved is not known: run `cutover plan`",
                e.describe()
            ),
        }
    }

    /// Read the rules back: the switched rule forwards to `target_group`
    /// (of `colour`) alone.
    pub async fn confirm_switch(
        &self,
        colour: &str,
        target_group: &str,
    ) -> Result<(), ProviderError> {
        let rules = rules::fresh(&self.client, &self.config).await?;
        let actions = self.switched_rule(&rules)?.actions();
        if forward::forwards_only_to(actions, target_group) {
            return Ok(());
        }
        let seen = forward::seen(&forward::forward_of(actions), &self.config);
        Err(ProviderError::failed(format!(
            "after the change, {} of router `{}` forwards to {}, not to colour `{colour}` ({}); run `cutover plan` to see where traffic goes",
            self.config.switched(),
            self.config.router,
            seen.live.unwrap_or(seen.raw),
            short(target_group)
        )))
    }

    /// Create the preview rule forwarding to `target_group`, its priority
    /// and conditions chosen from `rules` (src/preview.rs).
    pub async fn create_preview(
        &self,
        rules: &[Rule],
        target_group: &str,
    ) -> Result<(), ProviderError> {
        let switched = match &self.config.rule_arn {
            Some(_) => Some(self.switched_rule(rules)?),
            None => None,
        };
        let priority = preview::priority(rules, switched, &self.config)?;
        self.client
            .create_rule()
            .listener_arn(&self.config.listener_arn)
            .priority(priority)
            .set_conditions(Some(preview::conditions(switched, &self.config)))
            .actions(forward::forward_to(target_group, None))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                noting(
                    "CreateRule",
                    &self.config,
                    e,
                    "; live traffic was not touched",
                )
            })
    }

    /// Point the preview rule at `target_group` (one `ModifyRule`).
    pub async fn repoint_rule(&self, rule: &Rule, target_group: &str) -> Result<(), ProviderError> {
        let actions = forward::switched(rule.actions(), target_group);
        self.client
            .modify_rule()
            .set_rule_arn(rule.rule_arn().map(str::to_string))
            .set_actions(Some(actions))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                noting(
                    "ModifyRule",
                    &self.config,
                    e,
                    "; live traffic was not touched",
                )
            })
    }

    /// Delete the preview rule.
    pub async fn delete_rule(&self, rule: &Rule) -> Result<(), ProviderError> {
        let deleted = self
            .client
            .delete_rule()
            .set_rule_arn(rule.rule_arn().map(str::to_string))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // Gone meanwhile: what was asked for.
            Err(e) if error::class(error::code_of(&e).as_deref()) == error::Class::NotFound => {
                Ok(())
            }
            Err(e) => Err(noting(
                "DeleteRule",
                &self.config,
                e,
                "; live traffic was not touched",
            )),
        }
    }

    /// Read the rules back: the preview rule forwards to `target_group`
    /// alone, or is gone (`None`).
    pub async fn confirm_preview(&self, target_group: Option<&str>) -> Result<(), ProviderError> {
        let rules = rules::fresh(&self.client, &self.config).await?;
        let found = preview::find(&rules, &self.config);
        let ok = match (found, target_group) {
            (None, None) => true,
            (Some(rule), Some(tg)) => forward::forwards_only_to(rule.actions(), tg),
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let now = match found.map(|r| forward::forward_of(r.actions())) {
            None => "is not there".to_string(),
            Some(Forward::One { arn, .. }) => format!("forwards to {}", short(&arn)),
            Some(other) => format!("does {other:?}"),
        };
        Err(ProviderError::failed(format!(
            "after the change, the preview rule of router `{}` ({}: {}) {now}, not {}",
            self.config.router,
            self.config.preview_header,
            self.config.preview_value,
            target_group.map_or("removed".to_string(), |tg| format!(
                "forwarding to {}",
                short(tg)
            ))
        )))
    }
}

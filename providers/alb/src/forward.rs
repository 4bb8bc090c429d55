//! What a listener's default action (or a listener rule) forwards to, read
//! as a colour; and the actions that send it all to one target group.
//!
//! cutover's switch is ONE forward action to ONE target group. What else a
//! listener may say is told apart here, so that `read` names it: a forward
//! to a target group that is no colour's, a weighted forward between
//! colours (a canary someone set up by hand), a fixed response or a
//! redirect. Actions that run before the terminal one (authentication, JWT
//! validation) are kept as they are by a switch.

use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum};
use cutover_provider::{RouterDrift, RouterDriftKind};

use crate::arn::short;
use crate::settings::Resolved;

/// What the terminal action of a listener or rule sends traffic to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Forward {
    /// One target group gets everything (a forward to one, or a weighted
    /// forward where only one has a weight above 0).
    One {
        arn: String,
        weighted: Vec<(String, i32)>,
    },
    /// Several target groups have a weight above 0.
    Weighted(Vec<(String, i32)>),
    /// No forward: a fixed response, a redirect, or no action at all.
    Other(String),
}

/// What the actions forward to.
pub(crate) fn forward_of(actions: &[Action]) -> Forward {
    let Some(terminal) = actions.iter().rfind(|a| is_terminal(a)) else {
        return Forward::Other("no action".into());
    };
    if terminal.r#type() != Some(&ActionTypeEnum::Forward) {
        let kind = terminal.r#type().map_or("unknown", |t| t.as_str());
        let detail = terminal
            .fixed_response_config()
            .map(|f| format!(" {}", f.status_code().unwrap_or("?")))
            .unwrap_or_default();
        return Forward::Other(format!("{kind}{detail}"));
    }
    let tuples: Vec<(String, i32)> = terminal
        .forward_config()
        .map(|f| {
            f.target_groups()
                .iter()
                .filter_map(|t| Some((t.target_group_arn()?.to_string(), t.weight().unwrap_or(1))))
                .collect()
        })
        .unwrap_or_default();
    if tuples.len() <= 1 {
        let arn = terminal
            .target_group_arn()
            .map(str::to_string)
            .or_else(|| tuples.first().map(|(arn, _)| arn.clone()));
        return match arn {
            Some(arn) => Forward::One {
                arn,
                weighted: vec![],
            },
            None => Forward::Other("forward to no target group".into()),
        };
    }
    let mut receiving = tuples.iter().filter(|(_, w)| *w > 0);
    match (receiving.next(), receiving.next()) {
        (Some((arn, _)), None) => Forward::One {
            arn: arn.clone(),
            weighted: tuples.clone(),
        },
        _ => Forward::Weighted(tuples),
    }
}

/// How `read` reports what the listener forwards to: the live colour, what
/// the router says, and the drift that a switch to the live colour repairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub live: Option<String>,
    pub raw: String,
    pub drift: Vec<RouterDrift>,
}

/// Read `forward` as a colour of `config`.
pub(crate) fn seen(forward: &Forward, config: &Resolved) -> Seen {
    let what = config.switched();
    match forward {
        Forward::One { arn, weighted } => {
            let colour = config.colour_of(arn).map(|c| c.into_owned());
            let mut drift = Vec::new();
            if colour.is_none() {
                drift.push(RouterDrift::new(
                    RouterDriftKind::EditedOutside,
                    format!(
                        "{what} forwards to target group {}, which is no colour's target group ({}); a switch replaces it",
                        short(arn),
                        colours(config)
                    ),
                ));
            } else if !weighted.is_empty() {
                drift.push(RouterDrift::new(
                    RouterDriftKind::EditedOutside,
                    format!(
                        "{what} is a weighted forward ({}) rather than cutover's single forward; all traffic goes to {}, and a switch makes it a single forward",
                        weights(weighted, config),
                        colour.as_deref().unwrap_or("?")
                    ),
                ));
            }
            Seen {
                live: colour,
                raw: short(arn).to_string(),
                drift,
            }
        }
        Forward::Weighted(tuples) => Seen {
            live: None,
            raw: format!("weighted forward: {}", weights(tuples, config)),
            drift: vec![RouterDrift::new(
                RouterDriftKind::EditedOutside,
                format!(
                    "{what} is a weighted forward between target groups ({}), not cutover's single forward to one colour; a switch sends everything to one",
                    weights(tuples, config)
                ),
            )],
        },
        Forward::Other(kind) => Seen {
            live: None,
            raw: kind.clone(),
            drift: vec![],
        },
    }
}

/// The actions that forward everything to `target_group`: `actions` with
/// their terminal action replaced by a forward to it alone (keeping its
/// `Order`), the actions before it (authentication) kept.
pub(crate) fn switched(actions: &[Action], target_group: &str) -> Vec<Action> {
    let terminal = actions.iter().rposition(is_terminal);
    let order = terminal.and_then(|i| actions[i].order());
    let mut out: Vec<Action> = actions
        .iter()
        .enumerate()
        .filter(|(i, a)| Some(*i) != terminal && !is_terminal(a))
        .map(|(_, a)| resendable(a))
        .collect();
    out.push(forward_to(
        target_group,
        order.or_else(|| (!out.is_empty()).then_some(50_000)),
    ));
    out
}

/// A single forward to `target_group`.
pub(crate) fn forward_to(target_group: &str, order: Option<i32>) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(target_group)
        .set_order(order)
        .build()
}

/// Whether `actions` are what [`switched`] makes for `target_group`: its
/// terminal action a forward to it alone.
pub(crate) fn forwards_only_to(actions: &[Action], target_group: &str) -> bool {
    matches!(forward_of(actions), Forward::One { arn, weighted } if arn == target_group && weighted.is_empty())
}

/// An action as described, made fit to be sent back: AWS never returns an
/// OIDC client secret, and keeps the one it has only when told so.
fn resendable(action: &Action) -> Action {
    let mut action = action.clone();
    if let Some(oidc) = action.authenticate_oidc_config.as_mut() {
        if oidc.client_secret.is_none() {
            oidc.use_existing_client_secret = Some(true);
        }
    }
    action
}

fn is_terminal(action: &Action) -> bool {
    matches!(
        action.r#type(),
        Some(ActionTypeEnum::Forward | ActionTypeEnum::FixedResponse | ActionTypeEnum::Redirect)
    )
}

fn weights(tuples: &[(String, i32)], config: &Resolved) -> String {
    tuples
        .iter()
        .map(|(arn, w)| {
            let name = config
                .colour_of(arn)
                .map_or_else(|| short(arn).to_owned(), |c| c.into_owned());
            format!("{name} {w}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn colours(config: &Resolved) -> String {
    config
        .target_groups
        .iter()
        .map(|(colour, arn)| format!("{colour} = {}", short(arn)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;

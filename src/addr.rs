//! Addresses and step ids: the typed names of everything the configuration,
//! the plan and the apply walk talk about.
//!
//! The bottom layer (OpenTofu's `addrs`): it depends on nothing else in the
//! crate, so every layer above can use it. Ids are never built with
//! `format!` above this module; their text form exists for people and for
//! the JSON documents, where it is parsed back and refused when it names no
//! known kind of step.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The address of a block that takes part in the configuration's graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Address {
    /// `var.NAME`
    Variable(String),
    /// `local.NAME`
    Local(String),
    /// `environment.NAME`
    Environment(String),
    /// `router.NAME`
    Router(String),
    /// `output.NAME`
    Output(String),
}

impl Address {
    /// `environment.NAME`.
    pub fn environment(name: &str) -> Self {
        Address::Environment(name.to_owned())
    }

    /// `router.NAME`.
    pub fn router(name: &str) -> Self {
        Address::Router(name.to_owned())
    }

    /// The same kind of address, of another name (an instance of a block:
    /// `environment.green` -> `environment.green["api"]`).
    pub fn with_name(&self, name: String) -> Self {
        match self {
            Address::Variable(_) => Address::Variable(name),
            Address::Local(_) => Address::Local(name),
            Address::Environment(_) => Address::Environment(name),
            Address::Router(_) => Address::Router(name),
            Address::Output(_) => Address::Output(name),
        }
    }

    /// `environment.NAME` or `router.NAME` read back from its text.
    pub fn parse_resource(text: &str) -> Option<Self> {
        match text.split_once('.')? {
            ("environment", n) if !n.is_empty() => Some(Address::Environment(n.to_owned())),
            ("router", n) if !n.is_empty() => Some(Address::Router(n.to_owned())),
            _ => None,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Variable(n) => write!(f, "var.{n}"),
            Address::Local(n) => write!(f, "local.{n}"),
            Address::Environment(n) => write!(f, "environment.{n}"),
            Address::Router(n) => write!(f, "router.{n}"),
            Address::Output(n) => write!(f, "output.{n}"),
        }
    }
}

/// A name given on the command line as the configuration names it: a shell
/// takes the quotes of `router.svc["api"]` away unless it is quoted, so
/// `svc[api]` is read as `svc["api"]` (a bare number stays a `count`
/// index: `canary[0]`).
pub fn name_arg(arg: &str) -> String {
    if let Some((block, rest)) = arg.split_once('[') {
        if let Some(key) = rest.strip_suffix(']') {
            let bare = !key.starts_with('"') && !key.bytes().all(|b| b.is_ascii_digit());
            if bare && !key.is_empty() {
                return format!("{block}[\"{key}\"]");
            }
        }
    }
    arg.to_owned()
}

/// `text` as one word of a shell command to copy: quoted when it holds
/// anything a shell would take apart (`'router.svc["api"]'`).
pub fn shell_word(text: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=@+,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.into();
    }
    format!("'{}'", text.replace('\'', r"'\''")).into()
}

/// The id of one step of a plan: what kind of step, and of which
/// environment or router (and, for a router's `test` and `analysis`
/// blocks, which one).
///
/// Ids order as their text does (`analysis.a.x` < `approve.a` <
/// `cutover.a` < `drain.a` < `environment.a` < `forget.router.a` <
/// `health.a` < `preview.a` < `settle.a` < `test.a.x`): plans list independent steps in
/// that stable order. (Compared part by part, without formatting: a plan of
/// thousands of steps sorts its ids many times.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StepId {
    /// `analysis.ROUTER.NAME`: the router's `analysis "NAME"` block, checked
    /// before its switch or after it.
    Analysis(String, String),
    /// `approve.ROUTER`: the apply waits until someone approves the
    /// router's switch (`cutover approve`).
    Approval(String),
    /// `cutover.ROUTER`: the router switches its live traffic.
    Cutover(String),
    /// `drain.ROUTER`: the wait after the router's cut-over.
    Drain(String),
    /// `environment.NAME`: a change to an environment.
    Environment(String),
    /// `forget.router.ROUTER`: the router leaves the state.
    ForgetRouter(String),
    /// `health.NAME`: the environment's health gate.
    Health(String),
    /// `preview.ROUTER`: the router's preview is repointed.
    Preview(String),
    /// `settle.NAME`: the wait, before the environment's change, until no
    /// router that counts sessions holds streams to it.
    Settle(String),
    /// `test.ROUTER.NAME`: the router's `test "NAME"` hook, run against the
    /// colour about to go live, before the switch.
    Test(String, String),
}

impl StepId {
    /// The environment or router the step is about.
    pub fn name(&self) -> &str {
        match self {
            StepId::Analysis(n, _)
            | StepId::Approval(n)
            | StepId::Cutover(n)
            | StepId::Drain(n)
            | StepId::Environment(n)
            | StepId::ForgetRouter(n)
            | StepId::Health(n)
            | StepId::Preview(n)
            | StepId::Settle(n)
            | StepId::Test(n, _) => n,
        }
    }

    /// The name of the router's block a `test` or `analysis` step runs.
    pub fn check(&self) -> Option<&str> {
        match self {
            StepId::Analysis(_, c) | StepId::Test(_, c) => Some(c),
            _ => None,
        }
    }

    /// The text prefix of this kind of id, before the name.
    fn prefix(&self) -> &'static str {
        match self {
            StepId::Analysis(..) => "analysis.",
            StepId::Approval(_) => "approve.",
            StepId::Cutover(_) => "cutover.",
            StepId::Drain(_) => "drain.",
            StepId::Environment(_) => "environment.",
            StepId::ForgetRouter(_) => "forget.router.",
            StepId::Health(_) => "health.",
            StepId::Preview(_) => "preview.",
            StepId::Settle(_) => "settle.",
            StepId::Test(..) => "test.",
        }
    }

    /// The bytes of the id's text, without building it.
    fn text_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        let check = self.check().map(|c| (".", c));
        let (dot, check) = check.unwrap_or(("", ""));
        [self.prefix(), self.name(), dot, check]
            .into_iter()
            .flat_map(str::bytes)
    }
}

impl Ord for StepId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text_bytes().cmp(other.text_bytes())
    }
}

impl PartialOrd for StepId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.prefix(), self.name())?;
        match self.check() {
            Some(check) => write!(f, ".{check}"),
            None => Ok(()),
        }
    }
}

/// A step id whose text names no known kind of step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a step id: a step id is `environment.NAME`, `health.NAME`, `cutover.ROUTER`, `preview.ROUTER`, `drain.ROUTER`, `settle.NAME`, `approve.ROUTER`, `test.ROUTER.NAME`, `analysis.ROUTER.NAME` or `forget.router.ROUTER`")]
pub struct UnknownStepId(pub String);

impl FromStr for StepId {
    type Err = UnknownStepId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        type Make = fn(String) -> StepId;
        type MakeCheck = fn(String, String) -> StepId;
        let unknown = || UnknownStepId(text.to_owned());
        // A check's name is an identifier (no dot): the router's name is
        // everything before the last dot.
        let checks: [(&str, MakeCheck); 2] =
            [("analysis.", StepId::Analysis), ("test.", StepId::Test)];
        for (prefix, make) in checks {
            if let Some(rest) = text.strip_prefix(prefix) {
                let (router, check) = rest.rsplit_once('.').ok_or_else(unknown)?;
                // (A dot inside an instance's key, `test.svc["a.b"]`, is
                // not the one before the check.)
                let in_key = check.contains(['"', '[', ']']);
                if router.is_empty() || check.is_empty() || in_key {
                    return Err(unknown());
                }
                return Ok(make(router.to_owned(), check.to_owned()));
            }
        }
        let kinds: [(&str, Make); 8] = [
            ("forget.router.", StepId::ForgetRouter),
            ("approve.", StepId::Approval),
            ("cutover.", StepId::Cutover),
            ("drain.", StepId::Drain),
            ("environment.", StepId::Environment),
            ("health.", StepId::Health),
            ("preview.", StepId::Preview),
            ("settle.", StepId::Settle),
        ];
        for (prefix, make) in kinds {
            if let Some(name) = text.strip_prefix(prefix) {
                if !name.is_empty() {
                    return Ok(make(name.to_owned()));
                }
            }
        }
        Err(unknown())
    }
}

impl Serialize for StepId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(name: &str) -> Vec<StepId> {
        vec![
            StepId::Cutover(name.into()),
            StepId::Drain(name.into()),
            StepId::Environment(name.into()),
            StepId::ForgetRouter(name.into()),
            StepId::Health(name.into()),
            StepId::Preview(name.into()),
            StepId::Settle(name.into()),
            StepId::Approval(name.into()),
            StepId::Test(name.into(), "smoke".into()),
            StepId::Analysis(name.into(), "errors".into()),
            StepId::Test(name.into(), "a".into()),
        ]
    }

    #[test]
    fn ids_round_trip_through_text_and_json() {
        for id in all("public") {
            let text = id.to_string();
            assert_eq!(text.parse::<StepId>(), Ok(id.clone()));
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<StepId>(&json).unwrap(), id);
        }
        assert_eq!(
            "forget.router.old".parse(),
            Ok(StepId::ForgetRouter("old".into()))
        );
        // Instances: `svc["a.b"]` holds a dot of its own.
        for id in all(r#"svc["a.b"]"#).into_iter().chain(all("canary[0]")) {
            let text = id.to_string();
            assert_eq!(text.parse::<StepId>(), Ok(id.clone()), "{text}");
        }
    }

    #[test]
    fn names_on_the_command_line() {
        assert_eq!(name_arg(r#"svc["api"]"#), r#"svc["api"]"#);
        assert_eq!(name_arg("svc[api]"), r#"svc["api"]"#);
        assert_eq!(name_arg("canary[0]"), "canary[0]");
        assert_eq!(name_arg("public"), "public");
        assert_eq!(shell_word("router.public"), "router.public");
        assert_eq!(shell_word(r#"router.svc["api"]"#), r#"'router.svc["api"]'"#);
        assert_eq!(
            shell_word("router.svc[\"it's\"]"),
            r#"'router.svc["it'\''s"]'"#
        );
    }

    #[test]
    fn unknown_kinds_and_empty_names_are_refused() {
        for bad in [
            "switch.public",
            "health.",
            "cutover",
            "",
            "Health.green",
            "test.public",
            "test.public.",
            "analysis..errors",
            r#"test.svc["a.b"]"#,
        ] {
            assert_eq!(
                bad.parse::<StepId>(),
                Err(UnknownStepId(bad.into())),
                "{bad}"
            );
        }
        let err = serde_json::from_str::<StepId>("\"deploy.green\"").unwrap_err();
        assert!(
            err.to_string().contains("`deploy.green` is not a step id"),
            "{err}"
        );
    }

    #[test]
    fn the_order_of_ids_is_the_order_of_their_text() {
        let mut ids: Vec<StepId> = ["b", "a", "a-b", "ab"].into_iter().flat_map(all).collect();
        let mut texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
        ids.sort();
        texts.sort();
        assert_eq!(
            ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            texts
        );
    }
}

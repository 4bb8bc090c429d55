//! `plan --gates`: each cut-over's checks run read-only at plan time, the
//! results put in the plan document (`readiness`), never in place of the
//! checks apply runs. Which checks run is the planner's reading of the
//! document (`plan::readiness`); this module runs them: the target's gate
//! first, then its tests and analyses together (a colour whose gate failed
//! is not tested: each says so). Nothing here switches, deploys or writes
//! the state: the checks are the plan's own read-only steps, run against a
//! [`Silent`] observer.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::join_all;

use super::health::{GateError, ProbeFailure};
use super::observer::{Event, Observer, Silent};
use super::Engine;
use crate::addr::Address;
use crate::plan::document::{CheckOutcome, CheckResult, Outcome, Readiness, Step, StepKind};
use crate::plan::readiness::{Check, CutoverChecks};
use crate::plan::saved::Planned;

/// Where the checks say what they do, line by line (the CLI: stderr).
pub type Progress<'a> = dyn Fn(String) + Send + Sync + 'a;

/// The longest a check's step may take, for people: `2s`, `about 1m`.
fn bound(step: &Step) -> String {
    use crate::config::checks::duration;
    match &step.kind {
        StepKind::HealthGate { health, .. } => duration(health.timeout),
        StepKind::Test { spec, .. } => duration(spec.timeout),
        StepKind::Analysis { spec, .. } => {
            let rounds = spec.interval.saturating_mul(spec.count.max(1) - 1);
            let most = spec.initial_delay + rounds + spec.timeout;
            format!(
                "about {}",
                duration(Duration::from_secs(most.as_secs().max(1)))
            )
        }
        _ => "?".to_owned(),
    }
}

/// The last measurement an analysis reported, as its progress said it.
#[derive(Default)]
struct LastRound(Mutex<Option<(Option<f64>, String)>>);

impl Observer for LastRound {
    fn event(&self, event: &Event) {
        if let Event::AnalysisRound { detail, value, .. } = event {
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((*value, detail.clone()));
        }
    }
}

impl LastRound {
    /// The last measurement against its bounds (`0.002 <= 0.01`); when it
    /// read no number, `cause` (`no_data`, `refused`: the whole reason is
    /// in the check's `reason`).
    fn value(&self, cause: Option<&str>) -> Option<String> {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some((Some(_), detail)) => Some(detail),
            Some((None, detail)) => Some(cause.map_or(detail, |c| c.replace('_', " "))),
            None => cause.map(|c| c.replace('_', " ")),
        }
    }
}

/// What a check that ran found.
struct Ran {
    passed: bool,
    value: Option<String>,
    reason: Option<String>,
}

impl Engine {
    /// Run every cut-over's checks read-only and put what they found in
    /// `planned`'s document (values as shown: sensitive ones as markers);
    /// a failure makes the plan's outcome `not_ready`.
    pub async fn check_readiness(&self, planned: &mut Planned, progress: &Progress<'_>) {
        // Run with the real values; what is kept is masked.
        let execution = planned
            .execution
            .clone()
            .unwrap_or_else(|| planned.document.clone());
        let checked_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let cutovers = crate::plan::readiness::checks(&execution);
        let slots = tokio::sync::Semaphore::new(self.parallelism.max(1));
        let found = join_all(cutovers.into_iter().map(|c| async {
            let _slot = slots.acquire().await;
            self.cutover_readiness(c, &checked_at, progress).await
        }))
        .await;
        let not_ready = found
            .iter()
            .any(|r| r.verdict == crate::plan::document::Verdict::NotReady);
        for doc in std::iter::once(&mut planned.document).chain(planned.execution.as_mut()) {
            doc.readiness = found.clone();
            if not_ready {
                doc.summary.outcome = Outcome::NotReady;
            }
        }
    }

    async fn cutover_readiness(
        &self,
        c: CutoverChecks<'_>,
        checked_at: &str,
        progress: &Progress<'_>,
    ) -> Readiness {
        let CutoverChecks {
            router,
            target,
            mut checks,
        } = c;
        // The gate first: a colour that fails it is not tested.
        let gate_failed = match checks.iter_mut().find(|k| is_gate(k) && k.run.is_some()) {
            Some(gate) => {
                self.run_check(gate, progress).await;
                gate.result.outcome == CheckOutcome::Failed
            }
            None => false,
        };
        let rest = checks.iter_mut().filter(|k| !is_gate(k) && k.run.is_some());
        if gate_failed {
            for k in rest {
                k.run = None;
                k.result.reason = Some(format!("not run: {target} did not pass its health gate"));
            }
        } else {
            join_all(rest.map(|k| self.run_check(k, progress))).await;
        }
        let checks: Vec<CheckResult> = checks.into_iter().map(|k| k.result).collect();
        Readiness {
            router: router.to_owned(),
            target: target.to_owned(),
            checked_at: checked_at.to_owned(),
            verdict: Readiness::verdict_of(&checks),
            checks,
        }
    }

    /// Run one check's step read-only and record what it found.
    async fn run_check(&self, check: &mut Check<'_>, progress: &Progress<'_>) {
        let Some(step) = check.run else { return };
        progress(format!("{}: checking, at most {}", step.id, bound(step)));
        let started = Instant::now();
        let ran = self.ran(step).await;
        let r = &mut check.result;
        r.outcome = if ran.passed {
            CheckOutcome::Passed
        } else {
            CheckOutcome::Failed
        };
        r.duration_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        r.value = ran.value.map(|v| self.secrets.mask(&v));
        r.reason = ran.reason.map(|v| self.secrets.mask(&v));
        progress(format!(
            "{}: {} ({}, {})",
            step.id,
            if ran.passed { "passed" } else { "FAILED" },
            r.value.as_deref().unwrap_or("no value"),
            took(r.duration_ms.unwrap_or_default())
        ));
    }

    async fn ran(&self, step: &Step) -> Ran {
        match &step.kind {
            StepKind::HealthGate {
                environment,
                endpoints,
                health,
                release,
            } => {
                let shown = (
                    self.secrets.endpoints(environment, endpoints),
                    self.secrets.health(environment, health),
                );
                let subject = Address::environment(environment);
                let gate = self.health.gate_shown(
                    &subject,
                    (endpoints, health),
                    (&shown.0, &shown.1),
                    release.as_deref(),
                    &Silent,
                );
                match gate.await {
                    Ok(()) => Ran {
                        passed: true,
                        value: Some(format!("{0}/{0}", health.successes.max(1))),
                        reason: None,
                    },
                    Err(e) => Ran {
                        passed: false,
                        value: Some(gate_value(&e)),
                        reason: Some(e.to_string()),
                    },
                }
            }
            StepKind::Test { .. } => {
                match super::test_hook::run_step(step, true)
                    .await
                    .unwrap_or(Ok(()))
                {
                    Ok(()) => Ran {
                        passed: true,
                        value: Some("exit 0".to_owned()),
                        reason: None,
                    },
                    Err((e, exit)) => Ran {
                        passed: false,
                        value: Some(exit.to_string()),
                        reason: Some(e.message),
                    },
                }
            }
            StepKind::Analysis { spec, .. } => {
                let client = match self.health.http_client() {
                    Ok(client) => client,
                    Err(e) => {
                        return Ran {
                            passed: false,
                            value: None,
                            reason: Some(e.to_string()),
                        }
                    }
                };
                let last = LastRound::default();
                match super::analysis::run(&step.id, spec, &client, &last).await {
                    Ok(_) => Ran {
                        passed: true,
                        value: last.value(None),
                        reason: None,
                    },
                    Err(e) => Ran {
                        passed: false,
                        value: last.value(e.cause),
                        reason: Some(e.message),
                    },
                }
            }
            // `plan::readiness` gives only the kinds above.
            other => Ran {
                passed: false,
                value: None,
                reason: Some(format!("{} is no check", other.id())),
            },
        }
    }
}

fn is_gate(check: &Check<'_>) -> bool {
    check.result.kind == crate::plan::document::CheckKind::Health
}

/// A failed gate's last value: the status it answered, the release it
/// reported, or the kind of its failure.
fn gate_value(e: &GateError) -> String {
    match e.last_failure() {
        Some(ProbeFailure::Status { got, .. }) => format!("status {got}"),
        Some(ProbeFailure::Release { got, .. }) => {
            format!("release {}", got.as_deref().unwrap_or("(none)"))
        }
        Some(f) => f.kind().to_owned(),
        None => e.kind().to_owned(),
    }
}

/// How long a check took, for people: `0.4s`, `12s`, `2m5s`.
pub fn took(ms: u64) -> String {
    let d = Duration::from_millis(ms);
    if d < Duration::from_secs(10) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        crate::config::checks::duration(Duration::from_secs(d.as_secs()))
    }
}

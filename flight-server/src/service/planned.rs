//! Plans made by GetFlightInfo, kept for the DoGet of their ticket. A client asks for a
//! FlightInfo and then, almost always on the same connection and within milliseconds,
//! fetches its ticket: that DoGet takes the plan instead of planning the statement again
//! (an ID-number lookup took 2.2 ms to plan here). A ticket fetched from another process,
//! later than [`KEEP_FOR`], twice, or after its plan was pushed out is planned again, as
//! before: the ticket carries its statement, so keeping a plan is never needed.
//!
//! A plan is taken only by a DoGet whose ticket the signer accepted for the same principal
//! and configuration version, and it is taken out: each plan runs at most once. What the
//! kept plans may hold together is bounded by their number and their weight (statement
//! text and operators), so a client asking for FlightInfos it never fetches pushes out
//! plans, never grows the memory.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bund_planner::PlannedQuery;

/// How long a plan waits for its DoGet.
const KEEP_FOR: Duration = Duration::from_secs(30);
/// At most this many plans are kept; the oldest goes first.
const MAX_PLANS: usize = 256;
/// What a kept plan is taken to hold per operator, besides its statement's text.
pub(super) const BYTES_PER_OPERATOR: usize = 8 << 10;
/// At most this much weight among the kept plans (statement text and bound parameters,
/// and [`BYTES_PER_OPERATOR`] for each operator of the plan): 256 lookups of five
/// operators fit; a plan of thousands of operators (views expanded, up to
/// `max_plan_nodes`) is not kept, so waiting plans never hold much memory.
const MAX_WEIGHT: usize = 32 << 20;

struct Kept<P> {
    qid: String,
    principal: String,
    version: String,
    weight: usize,
    made: Instant,
    planned: P,
}

/// The plans waiting for their DoGet.
pub(super) struct Planned<P = PlannedQuery> {
    kept: Mutex<VecDeque<Kept<P>>>,
}

impl<P> Default for Planned<P> {
    fn default() -> Self {
        Self {
            kept: Mutex::default(),
        }
    }
}

/// Whose plan it is: the ticket's query id, principal and configuration version.
pub(super) struct Owner<'a> {
    pub(super) qid: &'a str,
    pub(super) principal: &'a str,
    pub(super) version: &'a str,
}

impl<P> Planned<P> {
    /// Keeps a plan for its ticket's DoGet. Returns the plans pushed out (too old, or past
    /// the limits), for the caller to drop where plans are dropped (see
    /// `statements::plan`).
    pub(super) fn keep(&self, owner: &Owner<'_>, weight: usize, planned: P) -> Vec<P> {
        let mut out = Vec::new();
        if weight > MAX_WEIGHT {
            out.push(planned);
            return out;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.push_back(Kept {
            qid: owner.qid.to_string(),
            principal: owner.principal.to_string(),
            version: owner.version.to_string(),
            weight,
            made: Instant::now(),
            planned,
        });
        let mut bytes: usize = kept.iter().map(|k| k.weight).sum();
        while let Some(oldest) = kept.front() {
            if kept.len() <= MAX_PLANS && bytes <= MAX_WEIGHT && oldest.made.elapsed() < KEEP_FOR {
                break;
            }
            if let Some(k) = kept.pop_front() {
                bytes -= k.weight;
                out.push(k.planned);
            }
        }
        out
    }

    /// The plan kept for this ticket, taken out; none when there is none (or it is too old).
    pub(super) fn take(&self, owner: &Owner<'_>) -> Option<P> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let at = kept.iter().position(|k| k.qid == owner.qid)?;
        let k = &kept[at];
        if k.principal != owner.principal
            || k.version != owner.version
            || k.made.elapsed() >= KEEP_FOR
        {
            return None;
        }
        kept.remove(at).map(|k| k.planned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner<'a>(qid: &'a str, principal: &'a str) -> Owner<'a> {
        Owner {
            qid,
            principal,
            version: "v1",
        }
    }

    #[test]
    fn a_plan_is_taken_once_by_its_ticket_principal_and_version() {
        let planned = Planned::<u32>::default();
        assert!(planned.keep(&owner("q1", "alice"), 10, 1).is_empty());
        assert_eq!(planned.take(&owner("q2", "alice")), None, "another ticket");
        assert_eq!(planned.take(&owner("q1", "bob")), None, "another principal");
        let other_version = Owner {
            version: "v2",
            ..owner("q1", "alice")
        };
        assert_eq!(planned.take(&other_version), None, "another configuration");
        assert_eq!(planned.take(&owner("q1", "alice")), Some(1));
        assert_eq!(planned.take(&owner("q1", "alice")), None, "planned again");
    }

    #[test]
    fn the_oldest_plans_are_pushed_out_past_the_limits() {
        let planned = Planned::<usize>::default();
        let ids: Vec<String> = (0..=MAX_PLANS).map(|i| format!("q{i}")).collect();
        for (i, qid) in ids.iter().enumerate().take(MAX_PLANS) {
            assert!(planned.keep(&owner(qid, "alice"), 1, i).is_empty());
        }
        assert_eq!(
            planned.keep(&owner(&ids[MAX_PLANS], "alice"), 1, MAX_PLANS),
            [0]
        );
        assert_eq!(planned.take(&owner("q0", "alice")), None);
        assert_eq!(planned.take(&owner("q1", "alice")), Some(1));
        // weight: one past the budget is not kept; a heavy one pushes out others
        assert_eq!(planned.keep(&owner("big", "alice"), MAX_WEIGHT + 1, 7), [7]);
        // 255 plans of 1 byte are kept; 245 of them must go for MAX_WEIGHT - 10 more
        let pushed = planned.keep(&owner("half", "alice"), MAX_WEIGHT - 10, 8);
        assert_eq!(pushed, (2..247).collect::<Vec<_>>());
        assert_eq!(planned.take(&owner("half", "alice")), Some(8));
    }
}

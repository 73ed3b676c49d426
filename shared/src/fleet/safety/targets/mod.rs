//! Target selection: which resources a fault acts on, decided by one pure function before
//! anything acts, so the blast radius is bounded, visible in the journal, and replayable.
//!
//! `select` takes the candidates a describe call returned (instances with their tags and
//! attributes), a `Selector` (tag patterns, attribute filters, a mode) and the `Limits` of the
//! deployment (max targets, max percent, the opt-in tag), and returns the chosen ids with what
//! is needed to replay the choice (the seed), or the first rule that refuses it, naming the
//! target and the rule. The modes are AWS FIS's and the seed library's:
//! `ALL`, `COUNT(n)`, `PERCENT(n)`, `RANDOM` (one), and explicit ids (`NAMED_LIST`).
//!
//! Patterns use `*` (any run of characters) and `?` (one character), as EC2 tag filters do.
//! `PERCENT(n)` takes ⌈n% of the matches⌉, so a non-zero percentage of a non-empty set is never
//! zero targets. Random choices come from a seeded generator (SplitMix64): the same candidates,
//! selector and seed always choose the same targets.

mod mode;
mod pattern;
mod sample;

pub use mode::ModeError;
pub use pattern::matches;

use pattern::matches_selector;
use sample::sample;
use std::collections::BTreeMap;

/// A resource that may be targeted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub tags: BTreeMap<String, String>,
    /// `state`, `availability-zone`, `instance-type`, ...
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    All,
    Count(u32),
    Percent(u32),
    /// One target, chosen at random.
    Random,
    /// Exactly these ids (each must match the selector).
    Ids(Vec<String>),
}

/// Which candidates match, and how many of them to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Tag key → value pattern; every one must match.
    pub tags: Vec<(String, String)>,
    /// Attribute → accepted value patterns (any one); every attribute must match.
    pub filters: Vec<(String, Vec<String>)>,
    pub mode: Mode,
    /// When not empty, only these ids (exactly, no patterns) are candidates, and the mode
    /// chooses among them; one that is not a matching candidate refuses the selection, as a
    /// `Mode::Ids` id does.
    pub within: Vec<String>,
    /// An empty selection succeeds (nothing is acted on) instead of failing.
    pub allow_empty: bool,
}

/// The deployment's guard rails, applied after the selector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Limits {
    pub max_targets: Option<u32>,
    /// At most this percentage of the matching candidates.
    pub max_percent: Option<u32>,
    /// Every chosen target must carry this tag with this value.
    pub opt_in: Option<(String, String)>,
}

/// The choice, as it goes into the journal before any action acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Chosen ids, in candidate order.
    pub chosen: Vec<String>,
    /// How many candidates matched the selector.
    pub matched: usize,
    /// The seed of the random choice (replay with the same seed).
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "no target matches the selection (tags {tags:?}, filters {filters:?}); set the selection to allow an empty result to skip instead"
    )]
    Empty {
        tags: Vec<(String, String)>,
        filters: Vec<(String, Vec<String>)>,
    },
    #[error("named target {id} does not exist or does not match the selection")]
    Unknown { id: String },
    #[error("{chosen} targets chosen, more than the limit of {limit} (max targets)")]
    TooMany { chosen: usize, limit: u32 },
    #[error(
        "{chosen} of {matched} matching targets chosen, more than the limit of {limit}% (max percent)"
    )]
    TooLarge {
        chosen: usize,
        matched: usize,
        limit: u32,
    },
    #[error("target {id} does not carry the opt-in tag {key}={value}")]
    NotOptedIn {
        id: String,
        key: String,
        value: String,
    },
}

impl Refusal {
    /// The rule that refused, as `broker.refused[].rule` names it.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::Empty { .. } => "empty_selection",
            Refusal::Unknown { .. } => "unknown_target",
            Refusal::TooMany { .. } => "max_targets",
            Refusal::TooLarge { .. } => "max_percent",
            Refusal::NotOptedIn { .. } => "opt_in",
        }
    }

    /// The target the refusal names, if it names one.
    pub fn target(&self) -> Option<&str> {
        match self {
            Refusal::Unknown { id } | Refusal::NotOptedIn { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// Decide the targets. Pure: the same inputs give the same answer.
pub fn select(
    candidates: &[Candidate],
    selector: &Selector,
    limits: &Limits,
    seed: u64,
) -> Result<Selection, Refusal> {
    let mut matching: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| matches_selector(c, selector))
        .collect();
    if !selector.within.is_empty() {
        if let Some(id) = selector
            .within
            .iter()
            .find(|id| !matching.iter().any(|c| &c.id == *id))
        {
            return Err(Refusal::Unknown { id: id.clone() });
        }
        matching.retain(|c| selector.within.contains(&c.id));
    }
    let matched = matching.len();
    let chosen: Vec<&Candidate> = match &selector.mode {
        Mode::All => matching.clone(),
        Mode::Ids(ids) => {
            let mut out = Vec::new();
            for id in ids {
                match matching.iter().find(|c| &c.id == id) {
                    Some(c) if !out.iter().any(|o: &&Candidate| o.id == c.id) => out.push(*c),
                    Some(_) => {}
                    None => return Err(Refusal::Unknown { id: id.clone() }),
                }
            }
            out
        }
        mode => {
            let k = match mode {
                Mode::Count(n) => (*n as usize).min(matched),
                Mode::Percent(p) => (matched * (*p as usize)).div_ceil(100),
                _ => 1.min(matched),
            };
            sample(matched, k, seed)
                .into_iter()
                .map(|i| matching[i])
                .collect()
        }
    };
    if chosen.is_empty() {
        if selector.allow_empty {
            return Ok(Selection {
                chosen: Vec::new(),
                matched,
                seed,
            });
        }
        return Err(Refusal::Empty {
            tags: selector.tags.clone(),
            filters: selector.filters.clone(),
        });
    }
    if let Some(limit) = limits.max_targets
        && chosen.len() > limit as usize
    {
        return Err(Refusal::TooMany {
            chosen: chosen.len(),
            limit,
        });
    }
    if let Some(limit) = limits.max_percent
        && chosen.len() * 100 > matched * limit as usize
    {
        return Err(Refusal::TooLarge {
            chosen: chosen.len(),
            matched,
            limit,
        });
    }
    if let Some((key, value)) = &limits.opt_in
        && let Some(c) = chosen.iter().find(|c| c.tags.get(key) != Some(value))
    {
        return Err(Refusal::NotOptedIn {
            id: c.id.clone(),
            key: key.clone(),
            value: value.clone(),
        });
    }
    Ok(Selection {
        chosen: chosen.iter().map(|c| c.id.clone()).collect(),
        matched,
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, name: &str, state: &str, az: &str, opted_in: bool) -> Candidate {
        let mut tags = BTreeMap::from([("Name".to_string(), name.to_string())]);
        if opted_in {
            tags.insert("experiment-broker:opt-in".into(), "true".into());
        }
        Candidate {
            id: id.into(),
            tags,
            attributes: BTreeMap::from([
                ("state".to_string(), state.to_string()),
                ("availability-zone".to_string(), az.to_string()),
            ]),
        }
    }

    fn fleet() -> Vec<Candidate> {
        vec![
            instance("i-1", "web-1", "running", "eu-west-1a", true),
            instance("i-2", "web-2", "running", "eu-west-1b", true),
            instance("i-3", "web-3", "stopped", "eu-west-1a", true),
            instance("i-4", "db-1", "running", "eu-west-1a", true),
            instance("i-5", "web-5", "running", "eu-west-1c", false),
        ]
    }

    fn selector(mode: Mode) -> Selector {
        Selector {
            tags: vec![("Name".into(), "web-*".into())],
            filters: vec![("state".into(), vec!["running".into()])],
            mode,
            within: Vec::new(),
            allow_empty: false,
        }
    }

    #[test]
    fn tags_and_filters_narrow_the_candidates() {
        let s = select(&fleet(), &selector(Mode::All), &Limits::default(), 1).unwrap();
        assert_eq!(s.chosen, ["i-1", "i-2", "i-5"], "running web-* instances");
        assert_eq!(s.matched, 3);
        let mut by_az = selector(Mode::All);
        by_az.filters.push((
            "availability-zone".into(),
            vec!["eu-west-1a".into(), "*-1c".into()],
        ));
        let s = select(&fleet(), &by_az, &Limits::default(), 1).unwrap();
        assert_eq!(s.chosen, ["i-1", "i-5"]);
    }

    #[test]
    fn count_percent_and_random_take_what_they_say() {
        let limits = Limits::default();
        for (mode, expected) in [
            (Mode::Count(0), 0),
            (Mode::Count(2), 2),
            (Mode::Count(9), 3),
            (Mode::Percent(1), 1),
            (Mode::Percent(34), 2),
            (Mode::Percent(66), 2),
            (Mode::Percent(67), 3),
            (Mode::Percent(100), 3),
            (Mode::Random, 1),
        ] {
            let mut s = selector(mode.clone());
            s.allow_empty = true;
            let got = select(&fleet(), &s, &limits, 7).unwrap();
            assert_eq!(got.chosen.len(), expected, "{mode:?}");
        }
    }

    #[test]
    fn every_size_and_mode_keeps_the_selection_invariants() {
        for n in 0..9usize {
            let cands: Vec<Candidate> = (0..n)
                .map(|i| instance(&format!("i-{i}"), &format!("web-{i}"), "running", "a", true))
                .collect();
            let mut modes: Vec<Mode> = (0..10).map(Mode::Count).collect();
            modes.extend((0..=100).step_by(5).map(Mode::Percent));
            modes.extend([Mode::All, Mode::Random]);
            for mode in modes {
                for seed in 0..20u64 {
                    let mut s = selector(mode.clone());
                    s.allow_empty = true;
                    let got = select(&cands, &s, &Limits::default(), seed).unwrap();
                    let expected = match mode {
                        Mode::All => n,
                        Mode::Count(k) => (k as usize).min(n),
                        Mode::Percent(p) => (n * p as usize).div_ceil(100),
                        _ => n.min(1),
                    };
                    assert_eq!(got.chosen.len(), expected, "{mode:?} of {n}");
                    let positions: Vec<usize> = got
                        .chosen
                        .iter()
                        .map(|id| cands.iter().position(|c| &c.id == id).expect("a candidate"))
                        .collect();
                    assert!(
                        positions.windows(2).all(|w| w[0] < w[1]),
                        "distinct, in candidate order"
                    );
                    assert_eq!(
                        select(&cands, &s, &Limits::default(), seed).unwrap(),
                        got,
                        "replayable"
                    );
                }
            }
        }
    }

    #[test]
    fn random_choices_depend_on_the_seed_and_reach_every_candidate() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let s = select(&fleet(), &selector(Mode::Random), &Limits::default(), seed).unwrap();
            seen.extend(s.chosen);
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["i-1", "i-2", "i-5"]);
    }

    #[test]
    fn named_targets_must_exist_and_match() {
        let ids = |v: &[&str]| Mode::Ids(v.iter().map(|s| s.to_string()).collect());
        let s = select(
            &fleet(),
            &selector(ids(&["i-5", "i-1", "i-1"])),
            &Limits::default(),
            0,
        )
        .unwrap();
        assert_eq!(s.chosen, ["i-5", "i-1"], "as named, once each");
        for (named, missing) in [
            (&["i-1", "i-9"][..], "i-9"),
            (&["i-3"][..], "i-3"),
            (&["i-4"][..], "i-4"),
        ] {
            assert_eq!(
                select(&fleet(), &selector(ids(named)), &Limits::default(), 0),
                Err(Refusal::Unknown { id: missing.into() }),
                "{named:?}"
            );
        }
    }

    #[test]
    fn an_empty_selection_fails_unless_allowed() {
        let mut s = selector(Mode::All);
        s.tags = vec![("Name".into(), "cache-*".into())];
        let err = select(&fleet(), &s, &Limits::default(), 0).unwrap_err();
        assert!(matches!(err, Refusal::Empty { .. }));
        assert!(err.to_string().contains("cache-*"), "{err}");
        s.allow_empty = true;
        assert!(
            select(&fleet(), &s, &Limits::default(), 0)
                .unwrap()
                .chosen
                .is_empty()
        );
    }

    #[test]
    fn limits_and_the_opt_in_tag_refuse_before_anything_acts() {
        let opt_in = Some(("experiment-broker:opt-in".to_string(), "true".to_string()));
        let limits = |max_targets, max_percent, opt_in: &Option<(String, String)>| Limits {
            max_targets,
            max_percent,
            opt_in: opt_in.clone(),
        };
        assert_eq!(
            select(
                &fleet(),
                &selector(Mode::All),
                &limits(Some(2), None, &None),
                0
            ),
            Err(Refusal::TooMany {
                chosen: 3,
                limit: 2
            })
        );
        assert_eq!(
            select(
                &fleet(),
                &selector(Mode::Count(2)),
                &limits(None, Some(50), &None),
                0
            ),
            Err(Refusal::TooLarge {
                chosen: 2,
                matched: 3,
                limit: 50
            })
        );
        assert!(
            select(
                &fleet(),
                &selector(Mode::Count(2)),
                &limits(Some(2), Some(67), &None),
                0
            )
            .is_ok()
        );
        let err = select(
            &fleet(),
            &selector(Mode::All),
            &limits(None, None, &opt_in),
            0,
        )
        .unwrap_err();
        assert_eq!(
            err,
            Refusal::NotOptedIn {
                id: "i-5".into(),
                key: "experiment-broker:opt-in".into(),
                value: "true".into()
            }
        );
        assert!(
            err.to_string().contains("i-5")
                && err.to_string().contains("experiment-broker:opt-in=true")
        );
        let named = Mode::Ids(vec!["i-1".into(), "i-2".into()]);
        assert!(select(&fleet(), &selector(named), &limits(None, None, &opt_in), 0).is_ok());
    }
}

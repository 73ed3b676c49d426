//! Where each node of a document sits in its text, stored so that memory stays linear.
//!
//! A node is recorded once, as its parent and its own step (a key or an index) with its
//! (line, column); the dotted path of a field (`method[0].provider.path`) is only walked when a
//! problem asks where that field is. Storing the whole path per node, as before, cost memory
//! quadratic in the nesting depth (a 40 KB file of nested sequences took over 1 GB).

use std::collections::HashMap;

/// One step from a node to a child.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Step {
    Key(Box<str>),
    Index(u32),
}

/// Node id → position, and (parent, step) → child. Node 0, when present, is the document root.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    at: Vec<(u32, u32)>,
    children: HashMap<(u32, Step), u32>,
    /// Keys written more than once in one mapping: (the earlier node, the later one).
    repeated: Vec<(u32, u32)>,
}

/// A key written twice in one mapping: where it is (the path of the value kept) and both
/// (line, column)s, the earlier first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated {
    pub field: String,
    pub first: (usize, usize),
    pub last: (usize, usize),
}

impl Spans {
    /// Record a node under `parent` (`None`: the root) and return its id.
    pub(super) fn add(&mut self, parent: Option<(u32, Step)>, at: (u32, u32)) -> u32 {
        let id = u32::try_from(self.at.len()).unwrap_or(u32::MAX);
        self.at.push(at);
        if let Some(edge) = parent {
            // a repeated key: the last one is the value kept, so it is the one located
            if let Some(earlier) = self.children.insert(edge, id) {
                self.repeated.push((earlier, id));
            }
        }
        id
    }

    /// Move a node (a mapping located by its first key, or at its end when it is empty).
    pub(super) fn set(&mut self, id: u32, at: (u32, u32)) {
        if let Some(slot) = self.at.get_mut(id as usize) {
            *slot = at;
        }
    }

    /// Every key written twice in one mapping, in reading order of the later one.
    pub fn repeated(&self) -> Vec<Repeated> {
        let mut out: Vec<Repeated> = self
            .repeated
            .iter()
            .filter_map(|&(earlier, later)| {
                Some(Repeated {
                    field: self.path_of(later)?,
                    first: self.position(earlier)?,
                    last: self.position(later)?,
                })
            })
            .collect();
        out.sort_by_key(|r| r.last);
        out
    }

    /// The dotted path of a node kept in the document (a search: only asked for repeated keys).
    fn path_of(&self, mut id: u32) -> Option<String> {
        let mut steps = Vec::new();
        while id != 0 {
            let ((parent, step), _) = self.children.iter().find(|(_, child)| **child == id)?;
            steps.push(step.clone());
            id = *parent;
        }
        let mut path = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Key(k) if path.is_empty() => path.push_str(k),
                Step::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                Step::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        Some(path)
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// The (line, column) of exactly this field path, if it is in the document.
    pub fn get(&self, path: &str) -> Option<(usize, usize)> {
        match self.walk(path) {
            (id, "") => self.position(id),
            _ => None,
        }
    }

    /// Where a field is, or else where its nearest present parent is.
    pub fn locate(&self, path: &str) -> Option<(usize, usize)> {
        self.position(self.walk(path).0)
    }

    fn position(&self, id: u32) -> Option<(usize, usize)> {
        self.at
            .get(id as usize)
            .map(|&(l, c)| (l as usize, c as usize))
    }

    /// Follow `path` from the root as far as the document goes: the last node reached and
    /// the part of the path left over. A key may itself hold `.` or `[`, so every cut is tried.
    fn walk<'p>(&self, path: &'p str) -> (u32, &'p str) {
        let mut id = 0;
        let mut rest = path;
        while !rest.is_empty() {
            let Some((child, after)) = self.step(id, rest) else {
                break;
            };
            id = child;
            rest = after.strip_prefix('.').unwrap_or(after);
        }
        (id, rest)
    }

    /// One step of `rest` from node `id`: `[n]`, or a key running to a `.`, a `[` or the end.
    fn step<'p>(&self, id: u32, rest: &'p str) -> Option<(u32, &'p str)> {
        if let Some(inner) = rest.strip_prefix('[')
            && let Some(close) = inner.find(']')
            && let Ok(n) = inner[..close].parse::<u32>()
            && let Some(&child) = self.children.get(&(id, Step::Index(n)))
        {
            return Some((child, &inner[close + 1..]));
        }
        let cuts = rest
            .match_indices(['.', '['])
            .map(|(i, _)| i)
            .chain([rest.len()]);
        for cut in cuts.filter(|&c| c > 0) {
            let key = Step::Key(rest[..cut].into());
            if let Some(&child) = self.children.get(&(id, key)) {
                return Some((child, &rest[cut..]));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Step {
        Step::Key(k.into())
    }

    /// root{a: [ {b: _} ], "x.y": _}
    fn sample() -> Spans {
        let mut s = Spans::default();
        let root = s.add(None, (1, 1));
        let a = s.add(Some((root, key("a"))), (2, 1));
        let item = s.add(Some((a, Step::Index(0))), (3, 5));
        s.add(Some((item, key("b"))), (3, 7));
        s.add(Some((root, key("x.y"))), (4, 1));
        s
    }

    #[test]
    fn exact_paths_and_nearest_parents() {
        let s = sample();
        type At = Option<(usize, usize)>;
        let cases: [(&str, At, At); 7] = [
            ("", Some((1, 1)), Some((1, 1))),
            ("a", Some((2, 1)), Some((2, 1))),
            ("a[0]", Some((3, 5)), Some((3, 5))),
            ("a[0].b", Some((3, 7)), Some((3, 7))),
            ("a[0].c", None, Some((3, 5))),
            ("a[7].b", None, Some((2, 1))),
            ("x.y", Some((4, 1)), Some((4, 1))),
        ];
        for (path, exact, nearest) in cases {
            assert_eq!(s.get(path), exact, "get {path}");
            assert_eq!(s.locate(path), nearest, "locate {path}");
        }
        assert_eq!(s.locate("missing.deeper"), Some((1, 1)));
        assert_eq!(Spans::default().locate("a"), None);
    }

    #[test]
    fn a_repeated_key_names_both_places_and_the_later_is_located() {
        let mut s = sample();
        let a = s.get("a").map(|_| 1).unwrap();
        let item = s.children[&(a, Step::Index(0))];
        s.add(Some((item, key("b"))), (5, 7));
        assert_eq!(
            s.repeated(),
            [Repeated {
                field: "a[0].b".into(),
                first: (3, 7),
                last: (5, 7)
            }]
        );
        assert_eq!(s.get("a[0].b"), Some((5, 7)));
    }
}

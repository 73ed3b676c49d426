//! YAML event stream → JSON value and spans, within the document limits.
//!
//! The events are pulled one at a time from `yaml-rust2`'s parser (its own `load` recurses once
//! per nesting level, which a hostile file turns into a stack overflow) and folded with an
//! explicit stack. The limits are checked on each event, before anything is built: a collection
//! opening past the depth cap, or a node or alias expansion past the node cap, stops the walk
//! with a located problem. An alias's expansion is bounded in depth too, so no value built here
//! is deeper than the cap — dropping or cloning a `serde_json::Value` recurses once per level.

use super::scalars::resolve_scalar;
use super::spans::{Spans, Step};
use super::{Limits, Problem};
use serde_json::{Map, Value};
use std::collections::HashMap;
use yaml_rust2::Event;
use yaml_rust2::parser::Parser;
use yaml_rust2::scanner::Marker;

/// What the walk produced: the first document's value and spans, and how many documents the
/// stream holds (more than one is refused by the caller).
pub(super) struct Walked {
    pub value: Value,
    pub spans: Spans,
    pub documents: usize,
}

/// Walk `text`. `spans_only`: the value is not wanted (a JSON document already parsed).
pub(super) fn walk(text: &str, spans_only: bool, limits: &Limits) -> Result<Walked, Problem> {
    let mut b = Builder {
        spans_only,
        limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        spans: Spans::default(),
        value: None,
        documents: 0,
        nodes: 0,
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            let m = e.marker();
            let p = if e.info() == "recursion limit exceeded" {
                // the scanner's own flow-nesting limit (255), met while it looks ahead
                too_deep(limits)
            } else {
                Problem::new("", format!("invalid YAML: {}", e.info()))
            };
            p.at(m.line(), m.col() + 1)
        })?;
        if event == Event::StreamEnd {
            break;
        }
        b.on_event(event, mark)?;
    }
    Ok(Walked {
        value: b.value.unwrap_or(Value::Null),
        spans: b.spans,
        documents: b.documents,
    })
}

/// A node being built: what it holds so far, and what is needed when it closes.
struct Frame {
    kind: Kind,
    /// Its id in the spans; `None` inside a complex mapping key (not addressable by a path).
    node: Option<u32>,
    anchor: usize,
    /// `self.nodes` when it opened, to size it when it closes.
    nodes_before: usize,
    /// The deepest nesting below it so far (0: only scalars).
    height: usize,
}

enum Kind {
    Seq(Vec<Value>, u32),
    /// The key waiting for its value, with where the key is. `located`: whether the mapping's
    /// own position is known; a block mapping is placed at its first key (its start event
    /// comes late), an empty one at its end.
    Map {
        map: Map<String, Value>,
        key: Option<(String, (u32, u32))>,
        located: bool,
    },
}

/// An anchored value: kept for its aliases, with its size and depth to bound their expansion.
struct Anchored {
    value: Value,
    size: usize,
    height: usize,
}

struct Builder<'l> {
    spans_only: bool,
    limits: &'l Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    spans: Spans,
    value: Option<Value>,
    documents: usize,
    /// Values built so far in the first document; an alias counts its whole expansion.
    nodes: usize,
}

/// Where the next node goes, as the spans need it.
enum Slot {
    /// The document itself.
    Root,
    /// A child of a located node; `at`: the position to use instead of the node's own (a
    /// mapping value is where its key is).
    Child(u32, Step, Option<(u32, u32)>),
    /// A mapping key, or anything inside a complex key: not located.
    Unlocated,
}

/// The problem for a list or mapping opening past the depth cap (located by the caller).
pub(super) fn too_deep(limits: &Limits) -> Problem {
    Problem::new(
        "",
        format!("the document nests deeper than {} levels", limits.max_depth),
    )
    .expected(format!(
        "at most {} nested lists and mappings",
        limits.max_depth
    ))
}

fn position(mark: &Marker) -> (u32, u32) {
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    (clamp(mark.line()), clamp(mark.col() + 1))
}

impl Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) -> Result<(), Problem> {
        if let Event::DocumentStart = event {
            self.documents += 1;
        }
        if self.documents > 1 {
            // later documents are only counted (and must still parse)
            return Ok(());
        }
        let here = position(&mark);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, &mark)?;
                let slot = self.slot();
                self.locate_key_owner(&slot, here);
                let is_key = matches!(
                    self.stack.last(),
                    Some(Frame {
                        kind: Kind::Map { key: None, .. },
                        ..
                    })
                );
                self.place(slot, here);
                let value = if is_key {
                    // a key's own line is where its field is
                    if let Some(Frame {
                        kind: Kind::Map { key, .. },
                        ..
                    }) = self.stack.last_mut()
                    {
                        if anchor > 0 {
                            self.anchors.insert(
                                anchor,
                                Anchored {
                                    value: Value::String(text.clone()),
                                    size: 1,
                                    height: 0,
                                },
                            );
                        }
                        *key = Some((text, here));
                    }
                    return Ok(());
                } else if self.spans_only {
                    Value::Null
                } else {
                    resolve_scalar(text, style, tag.as_ref().map(|t| t.suffix.as_str()))
                };
                self.note_anchor(anchor, value.clone_if(anchor > 0), 1, 0);
                self.attach(value, 0, here);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= self.limits.max_depth {
                    return Err(too_deep(self.limits).at(here.0 as usize, here.1 as usize));
                }
                self.count(1, &mark)?;
                let slot = self.slot();
                self.locate_key_owner(&slot, here);
                let is_seq = matches!(event, Event::SequenceStart(..));
                // a mapping in a list or at the top is placed at its first key
                let placed_late = !is_seq && !matches!(slot, Slot::Child(_, _, Some(_)));
                let node = self.place(slot, here);
                let kind = if is_seq {
                    Kind::Seq(Vec::new(), 0)
                } else {
                    Kind::Map {
                        map: Map::new(),
                        key: None,
                        located: !placed_late,
                    }
                };
                self.stack.push(Frame {
                    kind,
                    node,
                    anchor,
                    nodes_before: self.nodes,
                    height: 0,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Ok(());
                };
                let value = match frame.kind {
                    Kind::Seq(items, _) => Value::Array(items),
                    Kind::Map { map, located, .. } => {
                        if !located && let Some(id) = frame.node {
                            self.spans.set(id, here);
                        }
                        Value::Object(map)
                    }
                };
                let size = self.nodes - frame.nodes_before + 1;
                let height = frame.height + 1;
                self.note_anchor(frame.anchor, value.clone_if(frame.anchor > 0), size, height);
                self.attach(value, height, here);
            }
            Event::Alias(id) => {
                let (size, height) = self.anchors.get(&id).map_or((1, 0), |a| (a.size, a.height));
                if self.stack.len() + height > self.limits.max_depth {
                    return Err(Problem::new(
                        "",
                        format!(
                            "this alias nests the document deeper than {} levels",
                            self.limits.max_depth
                        ),
                    )
                    .at(here.0 as usize, here.1 as usize)
                    .expected(format!(
                        "at most {} nested lists and mappings, aliases expanded",
                        self.limits.max_depth
                    )));
                }
                self.count(size, &mark)?;
                let slot = self.slot();
                self.locate_key_owner(&slot, here);
                self.place(slot, here);
                let value = match self.anchors.get(&id) {
                    Some(a) if !self.spans_only => a.value.clone(),
                    _ => Value::Null,
                };
                self.attach(value, height, here);
            }
            _ => {}
        }
        Ok(())
    }

    /// Count `n` more values, refusing past the cap (aliases count their whole expansion,
    /// which is what makes a "billion laughs" file stop here).
    fn count(&mut self, n: usize, mark: &Marker) -> Result<(), Problem> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes <= self.limits.max_nodes {
            return Ok(());
        }
        let (line, col) = position(mark);
        Err(Problem::new(
            "",
            format!(
                "the document holds more than {} values (aliases count every value they repeat)",
                self.limits.max_nodes
            ),
        )
        .at(line as usize, col as usize)
        .expected(format!("at most {} values", self.limits.max_nodes)))
    }

    fn note_anchor(&mut self, anchor: usize, value: Value, size: usize, height: usize) {
        if anchor > 0 {
            self.anchors.insert(
                anchor,
                Anchored {
                    value,
                    size,
                    height,
                },
            );
        }
    }

    /// Where the next node goes.
    fn slot(&self) -> Slot {
        let Some(top) = self.stack.last() else {
            return Slot::Root;
        };
        let Some(parent) = top.node else {
            return Slot::Unlocated;
        };
        match &top.kind {
            Kind::Seq(_, len) => Slot::Child(parent, Step::Index(*len), None),
            Kind::Map { key: None, .. } => Slot::Unlocated,
            Kind::Map {
                key: Some((k, at)), ..
            } => Slot::Child(parent, Step::Key(k.as_str().into()), Some(*at)),
        }
    }

    /// A mapping placed late takes the position of its first key.
    fn locate_key_owner(&mut self, slot: &Slot, here: (u32, u32)) {
        if !matches!(slot, Slot::Unlocated) {
            return;
        }
        if let Some(Frame {
            kind: Kind::Map {
                key: None, located, ..
            },
            node: Some(id),
            ..
        }) = self.stack.last_mut()
            && !*located
        {
            *located = true;
            self.spans.set(*id, here);
        }
    }

    /// Record the next node's position; its id, if it is addressable.
    fn place(&mut self, slot: Slot, here: (u32, u32)) -> Option<u32> {
        match slot {
            Slot::Root => Some(self.spans.add(None, here)),
            Slot::Child(parent, step, at) => {
                Some(self.spans.add(Some((parent, step)), at.unwrap_or(here)))
            }
            Slot::Unlocated => None,
        }
    }

    /// Attach a finished node (of nesting `height`, ending `here`) to its parent, or make it
    /// the document.
    fn attach(&mut self, value: Value, height: usize, here: (u32, u32)) {
        let Some(top) = self.stack.last_mut() else {
            self.value = Some(value);
            return;
        };
        top.height = top.height.max(height);
        match &mut top.kind {
            Kind::Seq(items, len) => {
                *len = len.saturating_add(1);
                if !self.spans_only {
                    items.push(value);
                }
            }
            Kind::Map { map, key, .. } => match key.take() {
                // a complex key (a list or mapping): its text, as PyYAML would show it
                None => *key = Some((key_text(&value), here)),
                Some((k, _)) if self.spans_only => drop(k),
                Some((k, _)) if k == "<<" => merge_into(map, value),
                Some((k, _)) => {
                    map.insert(k, value);
                }
            },
        }
    }
}

trait CloneIf {
    fn clone_if(&self, wanted: bool) -> Self;
}

impl CloneIf for Value {
    /// A copy for an anchor, or a cheap placeholder when there is none.
    fn clone_if(&self, wanted: bool) -> Value {
        if wanted { self.clone() } else { Value::Null }
    }
}

fn key_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => crate::pyvalue::py_str(other),
    }
}

/// YAML merge keys (`<<: *defaults`): keys already present win.
fn merge_into(map: &mut Map<String, Value>, value: Value) {
    let sources = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    for source in sources {
        if let Value::Object(src) = source {
            for (k, v) in src {
                map.entry(k).or_insert(v);
            }
        }
    }
}

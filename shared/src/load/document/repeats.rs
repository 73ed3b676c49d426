//! Whether a JSON document repeats a key in one object, found without building it: the
//! spans (which name both places) are only computed for a JSON document when it does; and
//! the warning for each repeated key. The reference's PyYAML and `json` keep the last value,
//! as the parsers here do.

use super::Problem;
use super::spans::Repeated;

/// One warning per repeated key, at the later one, naming both places.
pub(super) fn warnings(repeated: Vec<Repeated>) -> Vec<Problem> {
    repeated
        .into_iter()
        .map(|r| {
            let key = r
                .field
                .rsplit(['.', ']'])
                .next()
                .unwrap_or(&r.field)
                .to_string();
            Problem::new(
                r.field,
                format!(
                    "key `{key}` is written twice in this mapping (line {}, column {} and \
                     line {}, column {}): the later value is used and the earlier one is \
                     ignored, as the Chaos Toolkit does",
                    r.first.0, r.first.1, r.last.0, r.last.1
                ),
            )
            .expected("each key once per mapping")
            .at(r.last.0, r.last.1)
        })
        .collect()
}

/// Whether JSON text repeats a key in one object: one pass with `serde`, building nothing but
/// each object's set of keys.
pub(super) fn json_repeats_a_key(text: &str) -> bool {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    struct Repeats;
    impl<'de> DeserializeSeed<'de> for Repeats {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Repeats {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut repeats = false;
            while let Some(r) = seq.next_element_seed(Repeats)? {
                repeats |= r;
            }
            Ok(repeats)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut keys = std::collections::HashSet::new();
            let mut repeats = false;
            while let Some(key) = map.next_key::<String>()? {
                repeats |= !keys.insert(key);
                repeats |= map.next_value_seed(Repeats)?;
            }
            Ok(repeats)
        }
    }
    let mut d = serde_json::Deserializer::from_str(text);
    Repeats.deserialize(&mut d).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_repeated_key_is_found_at_any_depth_and_only_within_one_object() {
        for (text, repeats) in [
            (r#"{"a": 1, "b": 2}"#, false),
            (r#"{"a": 1, "a": 2}"#, true),
            (r#"{"a": {"x": 1}, "b": {"x": 1}}"#, false),
            (r#"{"m": [{"n": 1, "t": "a", "n": 2}]}"#, true),
            (r#"{"a\u0062": 1, "ab": 2}"#, true),
            ("[1, 2, 3]", false),
        ] {
            assert_eq!(super::json_repeats_a_key(text), repeats, "{text}");
        }
    }
}

//! The serde shapes of a features document, as loose as Flipt's decoder where Flipt is loose
//! (scalars decode into text fields, `segment` is a key or an object, constraint values are
//! text or lists) and closed where Flipt's schema is closed (unknown fields are errors).
//! Conversion into the model, with its checks, is in `convert.rs`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Text that may be written as any scalar (`name: 2024` is the text `2024`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Text(pub(crate) String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(format_f64(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Formats a float read from a document as YAML wrote it (`1.0` stays `1.0`).
pub(crate) fn format_f64(v: f64) -> String {
    let s = format!("{v:?}");
    s.replace("inf", ".inf").replace("NaN", ".nan")
}

/// A number that may also be written as an integer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Number(pub(crate) f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDocument {
    #[serde(default)]
    pub(crate) version: Option<Text>,
    #[serde(default)]
    pub(crate) namespace: Option<RawNamespace>,
    #[serde(default)]
    pub(crate) flags: Option<Vec<Option<RawFlag>>>,
    #[serde(default)]
    pub(crate) segments: Option<Vec<Option<RawSegment>>>,
}

/// `namespace: key` or `namespace: {key, name, description}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawNamespace {
    Key(String),
    Details {
        key: Option<String>,
        name: Option<String>,
        description: Option<String>,
    },
}

impl<'de> Deserialize<'de> for RawNamespace {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNamespace;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a namespace key or {key, name, description}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNamespace, E> {
                Ok(RawNamespace::Key(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawNamespace, E> {
                Ok(RawNamespace::Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawNamespace, E> {
                Ok(RawNamespace::Key(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNamespace, A::Error> {
                let (mut key, mut name, mut description) = (None, None, None);
                while let Some(k) = map.next_key::<String>()? {
                    let slot = match k.as_str() {
                        "key" => &mut key,
                        "name" => &mut name,
                        "description" => &mut description,
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["key", "name", "description"],
                            ));
                        }
                    };
                    *slot = map.next_value::<Option<Text>>()?.map(|t| t.0);
                }
                Ok(RawNamespace::Details {
                    key,
                    name,
                    description,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFlag {
    #[serde(default)]
    pub(crate) key: Option<Text>,
    #[serde(default)]
    pub(crate) name: Option<Text>,
    #[serde(default, rename = "type")]
    pub(crate) r#type: Option<Text>,
    #[serde(default)]
    pub(crate) description: Option<Text>,
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub(crate) variants: Option<Vec<Option<RawVariant>>>,
    #[serde(default)]
    pub(crate) rules: Option<Vec<Option<RawRule>>>,
    #[serde(default)]
    pub(crate) rollouts: Option<Vec<Option<RawRollout>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariant {
    #[serde(default)]
    pub(crate) key: Option<Text>,
    #[serde(default)]
    pub(crate) name: Option<Text>,
    #[serde(default)]
    pub(crate) description: Option<Text>,
    #[serde(default)]
    pub(crate) attachment: Option<Value>,
    #[serde(default)]
    pub(crate) default: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    #[serde(default)]
    pub(crate) segment: Option<RawSegmentRef>,
    /// Ignored: the order of rules is their rank.
    #[serde(default)]
    #[expect(dead_code, reason = "accepted and ignored, as Flipt does")]
    pub(crate) rank: Option<Number>,
    #[serde(default)]
    pub(crate) distributions: Option<Vec<Option<RawDistribution>>>,
}

/// A rule's `segment`: a key, a list of keys, or `{key | keys, operator}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RawSegmentRef {
    pub(crate) key: Option<String>,
    pub(crate) keys: Option<Vec<String>>,
    pub(crate) operator: Option<String>,
    /// Whether it was written as an object (or list) rather than a plain key.
    pub(crate) object: bool,
}

impl<'de> Deserialize<'de> for RawSegmentRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSegmentRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a segment key or {keys, operator}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSegmentRef, E> {
                Ok(RawSegmentRef {
                    key: Some(v.to_owned()),
                    ..RawSegmentRef::default()
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawSegmentRef, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawSegmentRef, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawSegmentRef, A::Error> {
                let mut keys = Vec::new();
                while let Some(Text(k)) = seq.next_element()? {
                    keys.push(k);
                }
                Ok(RawSegmentRef {
                    keys: Some(keys),
                    object: true,
                    ..RawSegmentRef::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawSegmentRef, A::Error> {
                let mut out = RawSegmentRef {
                    object: true,
                    ..RawSegmentRef::default()
                };
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "key" => out.key = map.next_value::<Option<Text>>()?.map(|t| t.0),
                        "keys" => {
                            out.keys = map
                                .next_value::<Option<Vec<Text>>>()?
                                .map(|v| v.into_iter().map(|t| t.0).collect())
                        }
                        "operator" => out.operator = map.next_value::<Option<Text>>()?.map(|t| t.0),
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["key", "keys", "operator"],
                            ));
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDistribution {
    #[serde(default)]
    pub(crate) variant: Option<Text>,
    #[serde(default)]
    pub(crate) rollout: Option<Number>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollout {
    #[serde(default)]
    pub(crate) description: Option<Text>,
    #[serde(default)]
    pub(crate) segment: Option<RawRolloutSegment>,
    #[serde(default)]
    pub(crate) threshold: Option<RawThreshold>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRolloutSegment {
    #[serde(default)]
    pub(crate) key: Option<Text>,
    #[serde(default)]
    pub(crate) keys: Option<Vec<Text>>,
    #[serde(default)]
    pub(crate) operator: Option<Text>,
    #[serde(default)]
    pub(crate) value: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThreshold {
    #[serde(default)]
    pub(crate) percentage: Option<Number>,
    #[serde(default)]
    pub(crate) value: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSegment {
    #[serde(default)]
    pub(crate) key: Option<Text>,
    #[serde(default)]
    pub(crate) name: Option<Text>,
    #[serde(default)]
    pub(crate) description: Option<Text>,
    #[serde(default)]
    pub(crate) match_type: Option<Text>,
    #[serde(default)]
    pub(crate) constraints: Option<Vec<Option<RawConstraint>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConstraint {
    #[serde(default, rename = "type")]
    pub(crate) r#type: Option<Text>,
    #[serde(default)]
    pub(crate) property: Option<Text>,
    #[serde(default)]
    pub(crate) operator: Option<Text>,
    #[serde(default)]
    pub(crate) value: Option<ConstraintValue>,
    #[serde(default)]
    pub(crate) description: Option<Text>,
}

/// A constraint's `value`: text, or (1.6) a list, kept as compact JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConstraintValue {
    Text(String),
    List(Vec<Value>),
}

impl<'de> Deserialize<'de> for ConstraintValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ConstraintValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConstraintValue, E> {
                Ok(ConstraintValue::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<ConstraintValue, E> {
                Ok(ConstraintValue::Text(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ConstraintValue, E> {
                Ok(ConstraintValue::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConstraintValue, E> {
                Ok(ConstraintValue::Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConstraintValue, E> {
                Ok(ConstraintValue::Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ConstraintValue, E> {
                Ok(ConstraintValue::Text(format_f64(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ConstraintValue, E> {
                Ok(ConstraintValue::Text(String::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ConstraintValue, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    items.push(v);
                }
                Ok(ConstraintValue::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

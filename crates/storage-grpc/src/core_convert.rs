//! Conversions between the resource-model types ([`resource_model`]) and Flipt's `flipt.core`
//! and `environments` protobuf messages, for the environments API.
//!
//! Conversions to protobuf cannot fail. Conversions from protobuf return an error string that
//! says what is invalid (an unknown enum number, a rollout without a rule, a non-finite
//! number in metadata or an attachment, an undecodable [`prost_types::Any`] payload...).
//! References between resources (segments, variants) are not checked here: that is the
//! resource model's validation.
//!
//! Numbers in `google.protobuf.Value` are `f64`: a JSON integer becomes a float, and a float
//! that holds an integer exactly comes back as a JSON integer (so `1.0` reads back as `1`).
//!
//! ```
//! use storage_grpc::core_convert::{Decoded, flag_to_any, resource_from_any};
//!
//! let flag = resource_model::Flag::new("checkout", "Checkout");
//! let any = flag_to_any(&flag);
//! assert_eq!(any.type_url, "flipt.core.Flag");
//! assert_eq!(resource_from_any(&any), Ok(Decoded::Flag(flag)));
//! ```

use prost::Message;
use prost_types::value::Kind;
use resource_model as rm;
use serde_json::{Map, Number, Value};
use storage_proto::environments;
use storage_proto::flipt::core as pb;

use crate::error::shown;

/// The `Any` type URL of a flag, as Flipt returns it (no `type.googleapis.com/` prefix).
pub const FLAG_TYPE_URL: &str = "flipt.core.Flag";

/// The `Any` type URL of a segment, as Flipt returns it (no `type.googleapis.com/` prefix).
pub const SEGMENT_TYPE_URL: &str = "flipt.core.Segment";

/// The prefix a type URL may carry (`type.googleapis.com/flipt.core.Flag`).
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// The kinds of resource the environments API stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// `flipt.core.Flag`.
    Flag,
    /// `flipt.core.Segment`.
    Segment,
}

impl ResourceType {
    /// The type URL, without the `type.googleapis.com/` prefix.
    pub fn type_url(self) -> &'static str {
        match self {
            ResourceType::Flag => FLAG_TYPE_URL,
            ResourceType::Segment => SEGMENT_TYPE_URL,
        }
    }
}

/// A resource decoded from a [`prost_types::Any`] ([`resource_from_any`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A flag.
    Flag(rm::Flag),
    /// A segment.
    Segment(rm::Segment),
}

/// The resource type a type URL names, with or without the `type.googleapis.com/` prefix;
/// `None` for any other type.
///
/// ```
/// use storage_grpc::core_convert::{ResourceType, parse_type_url};
///
/// assert_eq!(parse_type_url("type.googleapis.com/flipt.core.Segment"), Some(ResourceType::Segment));
/// assert_eq!(parse_type_url("flipt.core.Flag"), Some(ResourceType::Flag));
/// assert_eq!(parse_type_url("flipt.core.Rule"), None);
/// ```
pub fn parse_type_url(type_url: &str) -> Option<ResourceType> {
    match type_url.strip_prefix(TYPE_URL_PREFIX).unwrap_or(type_url) {
        FLAG_TYPE_URL => Some(ResourceType::Flag),
        SEGMENT_TYPE_URL => Some(ResourceType::Segment),
        _ => None,
    }
}

/// A flag as an `Any` holding a `flipt.core.Flag` (type URL [`FLAG_TYPE_URL`]).
pub fn flag_to_any(flag: &rm::Flag) -> prost_types::Any {
    prost_types::Any {
        type_url: FLAG_TYPE_URL.into(),
        value: flag_to_proto(flag).encode_to_vec(),
    }
}

/// A segment as an `Any` holding a `flipt.core.Segment` (type URL [`SEGMENT_TYPE_URL`]).
pub fn segment_to_any(segment: &rm::Segment) -> prost_types::Any {
    prost_types::Any {
        type_url: SEGMENT_TYPE_URL.into(),
        value: segment_to_proto(segment).encode_to_vec(),
    }
}

/// Decodes a flag or segment from an `Any`: the type URL picks the message
/// ([`parse_type_url`]); an unknown type, an undecodable payload or an invalid message is an
/// error.
pub fn resource_from_any(any: &prost_types::Any) -> Result<Decoded, String> {
    match parse_type_url(&any.type_url) {
        Some(ResourceType::Flag) => {
            let msg = pb::Flag::decode(any.value.as_slice())
                .map_err(|e| format!("invalid {FLAG_TYPE_URL} payload: {e}"))?;
            flag_from_proto(msg).map(Decoded::Flag)
        }
        Some(ResourceType::Segment) => {
            let msg = pb::Segment::decode(any.value.as_slice())
                .map_err(|e| format!("invalid {SEGMENT_TYPE_URL} payload: {e}"))?;
            segment_from_proto(msg).map(Decoded::Segment)
        }
        None => Err(format!(
            "unsupported resource type URL \"{}\" (expected {FLAG_TYPE_URL} or {SEGMENT_TYPE_URL})",
            shown(&any.type_url)
        )),
    }
}

/// A namespace as an `environments.Namespace`: the description is left out when empty, and
/// `protected` is set for the `default` namespace only.
pub fn namespace_to_proto(ns: &rm::Namespace) -> environments::Namespace {
    environments::Namespace {
        key: ns.key.clone(),
        name: ns.name.clone(),
        description: (!ns.description.is_empty()).then(|| ns.description.clone()),
        protected: Some(ns.key == rm::DEFAULT_NAMESPACE),
    }
}

/// The namespace an `UpdateNamespaceRequest` describes. The request's `protected` is ignored:
/// only the `default` namespace is protected.
pub fn namespace_from_request(req: &environments::UpdateNamespaceRequest) -> rm::Namespace {
    rm::Namespace {
        key: req.key.clone(),
        name: req.name.clone(),
        description: req.description.clone().unwrap_or_default(),
        protected: req.key == rm::DEFAULT_NAMESPACE,
    }
}

/// A flag as a `flipt.core.Flag`. Empty metadata is left out.
pub fn flag_to_proto(flag: &rm::Flag) -> pb::Flag {
    pb::Flag {
        key: flag.key.clone(),
        r#type: flag.r#type.as_i32(),
        name: flag.name.clone(),
        description: flag.description.clone(),
        enabled: flag.enabled,
        variants: flag
            .variants
            .iter()
            .map(|v| pb::Variant {
                key: v.key.clone(),
                name: v.name.clone(),
                description: v.description.clone(),
                attachment: v.attachment.as_ref().map(|a| json_to_value(&a.value())),
            })
            .collect(),
        rules: flag
            .rules
            .iter()
            .map(|r| pb::Rule {
                segment_operator: r.segment_operator.as_i32(),
                segments: r.segments.clone(),
                distributions: r
                    .distributions
                    .iter()
                    .map(|d| pb::Distribution {
                        variant: d.variant.clone(),
                        rollout: d.rollout,
                    })
                    .collect(),
            })
            .collect(),
        rollouts: flag.rollouts.iter().map(rollout_to_proto).collect(),
        default_variant: flag.default_variant.clone(),
        metadata: (!flag.metadata.is_empty()).then(|| map_to_struct(&flag.metadata)),
    }
}

fn rollout_to_proto(r: &rm::Rollout) -> pb::Rollout {
    let rule = match &r.rule {
        rm::RolloutRule::Segment(s) => pb::rollout::Rule::Segment(pb::RolloutSegment {
            value: s.value,
            segments: s.segments.clone(),
            segment_operator: s.segment_operator.as_i32(),
        }),
        rm::RolloutRule::Threshold(t) => pb::rollout::Rule::Threshold(pb::RolloutThreshold {
            percentage: t.percentage,
            value: t.value,
        }),
    };
    pb::Rollout {
        r#type: r.rule.type_i32(),
        description: r.description.clone(),
        rule: Some(rule),
    }
}

/// A flag from a `flipt.core.Flag`. An empty `default_variant` means none. Errors name what is
/// invalid: an unknown enum number, a rollout without a rule or whose type disagrees with its
/// rule, a non-finite number in metadata or an attachment.
pub fn flag_from_proto(msg: pb::Flag) -> Result<rm::Flag, String> {
    let key = msg.key;
    let r#type = rm::FlagType::from_i32(msg.r#type)
        .ok_or_else(|| format!("flag \"{}\": unknown flag type {}", shown(&key), msg.r#type))?;
    let variants = msg
        .variants
        .into_iter()
        .map(|v| {
            let attachment = v
                .attachment
                .map(|a| value_to_json(a).map(|j| rm::Attachment::new(&j)))
                .transpose()
                .map_err(|e| {
                    format!(
                        "flag \"{}\" variant \"{}\": attachment: {e}",
                        shown(&key),
                        shown(&v.key)
                    )
                })?;
            Ok(rm::Variant {
                key: v.key,
                name: v.name,
                description: v.description,
                attachment,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let rules = msg
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let segment_operator = segment_operator(r.segment_operator)
                .map_err(|e| format!("flag \"{}\" rule {}: {e}", shown(&key), i + 1))?;
            Ok(rm::Rule {
                segment_operator,
                segments: r.segments,
                distributions: r
                    .distributions
                    .into_iter()
                    .map(|d| rm::Distribution {
                        variant: d.variant,
                        rollout: d.rollout,
                    })
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let rollouts = msg
        .rollouts
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            rollout_from_proto(r)
                .map_err(|e| format!("flag \"{}\" rollout {}: {e}", shown(&key), i + 1))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let metadata = msg
        .metadata
        .map(struct_to_map)
        .transpose()
        .map_err(|e| format!("flag \"{}\": metadata: {e}", shown(&key)))?
        .unwrap_or_default();
    Ok(rm::Flag {
        key,
        r#type,
        name: msg.name,
        description: msg.description,
        enabled: msg.enabled,
        variants,
        rules,
        rollouts,
        default_variant: msg.default_variant.filter(|d| !d.is_empty()),
        metadata,
    })
}

fn segment_operator(n: i32) -> Result<rm::SegmentOperator, String> {
    rm::SegmentOperator::from_i32(n).ok_or_else(|| format!("unknown segment operator {n}"))
}

fn rollout_from_proto(r: pb::Rollout) -> Result<rm::Rollout, String> {
    let rule = match r.rule {
        None => return Err("the rollout has no segment or threshold rule".into()),
        Some(pb::rollout::Rule::Segment(s)) => rm::RolloutRule::Segment(rm::RolloutSegment {
            value: s.value,
            segments: s.segments,
            segment_operator: segment_operator(s.segment_operator)?,
        }),
        Some(pb::rollout::Rule::Threshold(t)) => rm::RolloutRule::Threshold(rm::RolloutThreshold {
            percentage: t.percentage,
            value: t.value,
        }),
    };
    // The type follows from the rule; an unset type is accepted, a contradicting one is not.
    let unknown = pb::RolloutType::UnknownRolloutType as i32;
    if r.r#type != unknown && r.r#type != rule.type_i32() {
        return Err(match pb::RolloutType::try_from(r.r#type) {
            Ok(t) => format!(
                "rollout type {} does not match its {} rule",
                t.as_str_name(),
                match rule {
                    rm::RolloutRule::Segment(_) => "segment",
                    rm::RolloutRule::Threshold(_) => "threshold",
                }
            ),
            Err(_) => format!("unknown rollout type {}", r.r#type),
        });
    }
    Ok(rm::Rollout {
        description: r.description,
        rule,
    })
}

/// A segment as a `flipt.core.Segment`.
pub fn segment_to_proto(segment: &rm::Segment) -> pb::Segment {
    pb::Segment {
        key: segment.key.clone(),
        match_type: segment.match_type.as_i32(),
        name: segment.name.clone(),
        description: segment.description.clone(),
        constraints: segment
            .constraints
            .iter()
            .map(|c| pb::Constraint {
                r#type: c.r#type.as_i32(),
                property: c.property.clone(),
                operator: c.operator.clone(),
                value: c.value.clone(),
                description: c.description.clone(),
            })
            .collect(),
    }
}

/// A segment from a `flipt.core.Segment`; an unknown match type or comparison type is an
/// error.
pub fn segment_from_proto(msg: pb::Segment) -> Result<rm::Segment, String> {
    let key = msg.key;
    let match_type = rm::MatchType::from_i32(msg.match_type).ok_or_else(|| {
        format!(
            "segment \"{}\": unknown match type {}",
            shown(&key),
            msg.match_type
        )
    })?;
    let constraints = msg
        .constraints
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let r#type = rm::ComparisonType::from_i32(c.r#type).ok_or_else(|| {
                format!(
                    "segment \"{}\" constraint {}: unknown comparison type {}",
                    shown(&key),
                    i + 1,
                    c.r#type
                )
            })?;
            Ok(rm::Constraint {
                r#type,
                property: c.property,
                operator: c.operator,
                value: c.value,
                description: c.description,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(rm::Segment {
        key,
        match_type,
        name: msg.name,
        description: msg.description,
        constraints,
    })
}

fn map_to_struct(map: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    }
}

fn json_to_value(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(prost_types::NullValue::NullValue as i32),
        Value::Bool(b) => Kind::BoolValue(*b),
        // Every JSON number has an f64 approximation (exact for integers up to 2^53).
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_value).collect(),
        }),
        Value::Object(o) => Kind::StructValue(map_to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn struct_to_map(s: prost_types::Struct) -> Result<Map<String, Value>, String> {
    s.fields
        .into_iter()
        .map(|(k, v)| {
            let v = value_to_json(v).map_err(|e| format!("field \"{}\": {e}", shown(&k)))?;
            Ok((k, v))
        })
        .collect()
}

/// A `google.protobuf.Value` as JSON. An unset kind reads as `null` (as Go's `structpb` does).
fn value_to_json(v: prost_types::Value) -> Result<Value, String> {
    Ok(match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::NumberValue(n)) => Value::Number(number(n)?),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(l)) => Value::Array(
            l.values
                .into_iter()
                .enumerate()
                .map(|(i, v)| value_to_json(v).map_err(|e| format!("item {i}: {e}")))
                .collect::<Result<_, _>>()?,
        ),
        Some(Kind::StructValue(s)) => Value::Object(struct_to_map(s)?),
    })
}

/// The largest magnitude below which every integer is exactly an f64 (2^53).
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// A JSON number from an f64: an integer when it holds one exactly, else a float.
fn number(n: f64) -> Result<Number, String> {
    if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INT {
        // Exact: |n| <= 2^53 fits in an i64, and the cast drops nothing (-0.0 becomes 0).
        return Ok(Number::from(n as i64));
    }
    Number::from_f64(n).ok_or_else(|| format!("number {n} is not finite"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rich_boolean_flag() -> rm::Flag {
        let mut metadata = Map::new();
        metadata.insert("owner".into(), json!("team-a"));
        metadata.insert("tags".into(), json!(["x", 1, 2.5, null, {"deep": true}]));
        rm::Flag {
            key: "dark-mode".into(),
            r#type: rm::FlagType::Boolean,
            name: "Dark mode".into(),
            description: "Dark theme".into(),
            enabled: true,
            rollouts: vec![
                rm::Rollout {
                    description: "internal users".into(),
                    rule: rm::RolloutRule::Segment(rm::RolloutSegment {
                        value: true,
                        segments: vec!["internal".into(), "beta".into()],
                        segment_operator: rm::SegmentOperator::And,
                    }),
                },
                rm::Rollout {
                    description: String::new(),
                    rule: rm::RolloutRule::Threshold(rm::RolloutThreshold {
                        percentage: 42.5,
                        value: false,
                    }),
                },
            ],
            metadata,
            ..rm::Flag::default()
        }
    }

    fn rich_variant_flag() -> rm::Flag {
        rm::Flag {
            key: "checkout".into(),
            r#type: rm::FlagType::Variant,
            name: "Checkout".into(),
            description: String::new(),
            enabled: false,
            variants: vec![
                rm::Variant {
                    key: "blue".into(),
                    name: "Blue".into(),
                    description: "the blue one".into(),
                    attachment: Some(rm::Attachment::new(&json!({
                        "int": 7,
                        "neg": -3,
                        "big": 9_007_199_254_740_992_i64,
                        "float": 0.25,
                        "text": "hi",
                        "list": [1, "two", 3.5, null, [false]],
                        "nested": {"none": null, "n": {"x": 1}},
                    }))),
                },
                rm::Variant {
                    key: "green".into(),
                    name: String::new(),
                    description: String::new(),
                    attachment: None,
                },
                rm::Variant {
                    key: "scalar".into(),
                    attachment: Some(rm::Attachment::new(&json!("just a string"))),
                    ..rm::Variant::default()
                },
            ],
            rules: vec![
                rm::Rule {
                    segment_operator: rm::SegmentOperator::And,
                    segments: vec!["a".into(), "b".into()],
                    distributions: vec![
                        rm::Distribution {
                            variant: "blue".into(),
                            rollout: 33.3,
                        },
                        rm::Distribution {
                            variant: "green".into(),
                            rollout: 66.7,
                        },
                    ],
                },
                rm::Rule {
                    segment_operator: rm::SegmentOperator::Or,
                    segments: vec!["c".into()],
                    distributions: vec![],
                },
            ],
            default_variant: Some("green".into()),
            ..rm::Flag::default()
        }
    }

    fn rich_segment() -> rm::Segment {
        rm::Segment {
            key: "internal".into(),
            match_type: rm::MatchType::Any,
            name: "Internal".into(),
            description: "staff".into(),
            constraints: vec![
                rm::Constraint {
                    r#type: rm::ComparisonType::String,
                    property: "email".into(),
                    operator: "suffix".into(),
                    value: "@example.com".into(),
                    description: "work mail".into(),
                },
                rm::Constraint {
                    r#type: rm::ComparisonType::Number,
                    property: "age".into(),
                    operator: "isoneof".into(),
                    value: "[1,2]".into(),
                    description: String::new(),
                },
                rm::Constraint {
                    r#type: rm::ComparisonType::EntityId,
                    property: "id".into(),
                    operator: "eq".into(),
                    value: "u1".into(),
                    description: String::new(),
                },
            ],
        }
    }

    #[test]
    fn flags_round_trip() {
        for flag in [
            rich_boolean_flag(),
            rich_variant_flag(),
            rm::Flag::default(),
        ] {
            let msg = flag_to_proto(&flag);
            assert_eq!(flag_from_proto(msg).unwrap(), flag);
        }
    }

    #[test]
    fn flag_proto_fields() {
        let msg = flag_to_proto(&rich_variant_flag());
        assert_eq!(msg.default_variant.as_deref(), Some("green"));
        assert_eq!(msg.r#type, pb::FlagType::VariantFlagType as i32);
        assert_eq!(
            msg.rules[0].segment_operator,
            pb::SegmentOperator::AndSegmentOperator as i32
        );
        assert!(msg.metadata.is_none());
        let attachment = msg.variants[0].attachment.as_ref().unwrap();
        let Some(Kind::StructValue(s)) = &attachment.kind else {
            panic!("attachment is not a struct: {attachment:?}");
        };
        assert_eq!(s.fields["int"].kind, Some(Kind::NumberValue(7.0)));

        let msg = flag_to_proto(&rich_boolean_flag());
        assert_eq!(msg.r#type, pb::FlagType::BooleanFlagType as i32);
        assert_eq!(
            msg.rollouts[0].r#type,
            pb::RolloutType::SegmentRolloutType as i32
        );
        assert_eq!(
            msg.rollouts[1].r#type,
            pb::RolloutType::ThresholdRolloutType as i32
        );
        assert_eq!(msg.metadata.unwrap().fields.len(), 2);
    }

    #[test]
    fn numbers_come_back_as_integers_when_exact() {
        let back = |n: f64| {
            value_to_json(prost_types::Value {
                kind: Some(Kind::NumberValue(n)),
            })
        };
        assert_eq!(back(3.0).unwrap(), json!(3));
        assert!(back(3.0).unwrap().is_i64());
        assert_eq!(back(-0.0).unwrap(), json!(0));
        assert_eq!(back(0.5).unwrap(), json!(0.5));
        assert!(back(1e300).unwrap().is_f64());
        assert!(back(f64::NAN).unwrap_err().contains("not finite"));
        assert_eq!(
            value_to_json(prost_types::Value { kind: None }).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn empty_default_variant_is_none() {
        let msg = pb::Flag {
            key: "f".into(),
            default_variant: Some(String::new()),
            ..pb::Flag::default()
        };
        assert_eq!(flag_from_proto(msg).unwrap().default_variant, None);
    }

    #[test]
    fn segments_round_trip() {
        for segment in [rich_segment(), rm::Segment::default()] {
            let msg = segment_to_proto(&segment);
            assert_eq!(segment_from_proto(msg).unwrap(), segment);
        }
    }

    #[test]
    fn any_round_trip() {
        let flag = rich_variant_flag();
        let any = flag_to_any(&flag);
        assert_eq!(any.type_url, FLAG_TYPE_URL);
        assert_eq!(resource_from_any(&any).unwrap(), Decoded::Flag(flag));

        let segment = rich_segment();
        let mut any = segment_to_any(&segment);
        assert_eq!(any.type_url, SEGMENT_TYPE_URL);
        any.type_url = format!("type.googleapis.com/{SEGMENT_TYPE_URL}");
        assert_eq!(resource_from_any(&any).unwrap(), Decoded::Segment(segment));
    }

    #[test]
    fn type_urls() {
        assert_eq!(parse_type_url("flipt.core.Flag"), Some(ResourceType::Flag));
        assert_eq!(
            parse_type_url("type.googleapis.com/flipt.core.Flag"),
            Some(ResourceType::Flag)
        );
        assert_eq!(
            parse_type_url("flipt.core.Segment"),
            Some(ResourceType::Segment)
        );
        assert_eq!(
            parse_type_url("type.googleapis.com/flipt.core.Segment"),
            Some(ResourceType::Segment)
        );
        assert_eq!(parse_type_url("flipt.core.Rule"), None);
        assert_eq!(parse_type_url("example.com/flipt.core.Flag"), None);
        assert_eq!(parse_type_url(""), None);
        assert_eq!(ResourceType::Flag.type_url(), FLAG_TYPE_URL);
        assert_eq!(ResourceType::Segment.type_url(), SEGMENT_TYPE_URL);
    }

    #[test]
    fn malformed_any_is_an_error() {
        for bad in [vec![0xff], vec![0x0a, 0x05, b'a'], vec![0x52, 0x80]] {
            for type_url in [FLAG_TYPE_URL, SEGMENT_TYPE_URL] {
                let any = prost_types::Any {
                    type_url: type_url.into(),
                    value: bad.clone(),
                };
                let err = resource_from_any(&any).unwrap_err();
                assert!(err.contains("payload"), "{err}");
            }
        }
        let any = prost_types::Any {
            type_url: "flipt.core.Rule".into(),
            value: vec![],
        };
        assert!(
            resource_from_any(&any)
                .unwrap_err()
                .contains("flipt.core.Rule")
        );
    }

    #[test]
    fn unknown_enum_numbers_are_errors() {
        let flag = |f: fn(&mut pb::Flag)| {
            let mut msg = flag_to_proto(&rich_boolean_flag());
            msg.rules.push(pb::Rule::default());
            f(&mut msg);
            flag_from_proto(msg).unwrap_err()
        };
        assert!(flag(|m| m.r#type = 7).contains("unknown flag type 7"));
        assert!(flag(|m| m.rules[0].segment_operator = 9).contains("unknown segment operator 9"));
        assert!(flag(|m| m.rollouts[1].r#type = 5).contains("unknown rollout type 5"));
        assert!(flag(|m| m.rollouts[1].r#type = 1).contains("does not match"));
        assert!(flag(|m| m.rollouts[0].rule = None).contains("rollout 1"));
        assert!(
            flag(|m| {
                if let Some(pb::rollout::Rule::Segment(s)) = &mut m.rollouts[0].rule {
                    s.segment_operator = -1;
                }
            })
            .contains("unknown segment operator -1")
        );

        let mut msg = segment_to_proto(&rich_segment());
        msg.match_type = 3;
        assert!(
            segment_from_proto(msg)
                .unwrap_err()
                .contains("unknown match type 3")
        );
        let mut msg = segment_to_proto(&rich_segment());
        msg.constraints[1].r#type = 6;
        let err = segment_from_proto(msg).unwrap_err();
        assert!(
            err.contains("constraint 2: unknown comparison type 6"),
            "{err}"
        );
    }

    #[test]
    fn rollout_with_unset_type_is_accepted() {
        let mut msg = flag_to_proto(&rich_boolean_flag());
        for r in &mut msg.rollouts {
            r.r#type = 0;
        }
        assert_eq!(flag_from_proto(msg).unwrap(), rich_boolean_flag());
    }

    #[test]
    fn non_finite_metadata_is_an_error() {
        let mut msg = flag_to_proto(&rich_boolean_flag());
        msg.metadata.as_mut().unwrap().fields.insert(
            "bad".into(),
            prost_types::Value {
                kind: Some(Kind::NumberValue(f64::INFINITY)),
            },
        );
        let err = flag_from_proto(msg).unwrap_err();
        assert!(err.contains("metadata: field \"bad\""), "{err}");
    }

    #[test]
    fn namespaces() {
        let ns = rm::Namespace {
            key: "team".into(),
            name: "Team".into(),
            description: String::new(),
            protected: false,
        };
        let msg = namespace_to_proto(&ns);
        assert_eq!(msg.description, None);
        assert_eq!(msg.protected, Some(false));
        let msg = namespace_to_proto(&rm::Namespace::synthesised_default());
        assert_eq!(msg.protected, Some(true));
        assert_eq!(msg.description.as_deref(), Some("The default namespace"));

        let req = environments::UpdateNamespaceRequest {
            environment_key: "env".into(),
            key: "team".into(),
            name: "Team".into(),
            description: Some("d".into()),
            protected: Some(true),
            revision: String::new(),
        };
        let ns = namespace_from_request(&req);
        assert_eq!(ns.description, "d");
        assert!(!ns.protected);
        let req = environments::UpdateNamespaceRequest {
            key: "default".into(),
            description: None,
            ..req
        };
        let ns = namespace_from_request(&req);
        assert!(ns.protected);
        assert_eq!(ns.description, "");
    }
}

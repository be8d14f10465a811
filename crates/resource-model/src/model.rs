//! The resources: plain types close to Flipt's `flipt.core` messages (core.proto), with public
//! fields, so that converting to and from the protobuf messages is a field-by-field copy.
//! Enums carry their protobuf names ([`FlagType::as_str`]) and numbers
//! ([`FlagType::as_i32`]).

use serde_json::{Map, Value};

/// The key of the namespace that always exists and cannot be deleted.
pub const DEFAULT_NAMESPACE: &str = "default";

macro_rules! proto_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $num:literal, $text:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// The protobuf enum value name, as written in features files.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// The protobuf enum number.
            pub fn as_i32(self) -> i32 {
                match self { $($name::$variant => $num,)* }
            }

            /// From the protobuf enum number.
            pub fn from_i32(n: i32) -> Option<Self> {
                match n { $($num => Some($name::$variant),)* _ => None }
            }

            /// From the protobuf enum value name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

proto_enum! {
    /// `flipt.core.FlagType`.
    FlagType {
        /// A flag with variants, rules and distributions.
        #[default]
        Variant = 0, "VARIANT_FLAG_TYPE";
        /// An on/off flag with rollouts.
        Boolean = 1, "BOOLEAN_FLAG_TYPE";
    }
}

proto_enum! {
    /// `flipt.core.SegmentOperator`: how several segments of a rule or rollout combine.
    SegmentOperator {
        /// Any of the segments matches.
        #[default]
        Or = 0, "OR_SEGMENT_OPERATOR";
        /// All of the segments match.
        And = 1, "AND_SEGMENT_OPERATOR";
    }
}

proto_enum! {
    /// `flipt.core.MatchType`: how the constraints of a segment combine.
    MatchType {
        /// All constraints match.
        #[default]
        All = 0, "ALL_MATCH_TYPE";
        /// Any constraint matches.
        Any = 1, "ANY_MATCH_TYPE";
    }
}

proto_enum! {
    /// `flipt.core.ComparisonType`: the type of a constraint's property.
    ComparisonType {
        /// Not set (invalid in a document).
        #[default]
        Unknown = 0, "UNKNOWN_COMPARISON_TYPE";
        /// Strings.
        String = 1, "STRING_COMPARISON_TYPE";
        /// Numbers.
        Number = 2, "NUMBER_COMPARISON_TYPE";
        /// Booleans.
        Boolean = 3, "BOOLEAN_COMPARISON_TYPE";
        /// RFC 3339 date-times.
        DateTime = 4, "DATETIME_COMPARISON_TYPE";
        /// The entity id.
        EntityId = 5, "ENTITY_ID_COMPARISON_TYPE";
    }
}

impl ComparisonType {
    /// The operators Flipt accepts for this type.
    pub fn operators(self) -> &'static [&'static str] {
        match self {
            ComparisonType::Unknown => &[],
            ComparisonType::String => &[
                "eq",
                "neq",
                "empty",
                "notempty",
                "prefix",
                "suffix",
                "contains",
                "notcontains",
                "isoneof",
                "isnotoneof",
            ],
            ComparisonType::Number => &[
                "eq",
                "neq",
                "present",
                "notpresent",
                "le",
                "lte",
                "gt",
                "gte",
                "isoneof",
                "isnotoneof",
            ],
            ComparisonType::Boolean => &["true", "false", "present", "notpresent"],
            ComparisonType::DateTime => &[
                "eq",
                "neq",
                "present",
                "notpresent",
                "le",
                "lte",
                "gt",
                "gte",
            ],
            ComparisonType::EntityId => &[
                "eq",
                "neq",
                "empty",
                "notempty",
                "prefix",
                "suffix",
                "contains",
                "notcontains",
                "isoneof",
                "isnotoneof",
            ],
        }
    }
}

/// A namespace (`environments.Namespace`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace {
    /// The key; also the name of the namespace's folder.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Description (empty: none).
    pub description: String,
    /// Whether it cannot be deleted (true for `default` only; ignored on writes).
    pub protected: bool,
}

impl Namespace {
    /// A namespace with a key and a name.
    pub fn new(key: impl Into<String>, name: impl Into<String>) -> Self {
        let key = key.into();
        Namespace {
            protected: key == DEFAULT_NAMESPACE,
            key,
            name: name.into(),
            description: String::new(),
        }
    }

    /// The `default` namespace as it is shown when no document describes it.
    pub fn synthesised_default() -> Self {
        Namespace {
            key: DEFAULT_NAMESPACE.into(),
            name: "Default".into(),
            description: "The default namespace".into(),
            protected: true,
        }
    }
}

/// A flag (`flipt.core.Flag`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flag {
    /// The key, unique in its namespace.
    pub key: String,
    /// Variant or boolean.
    pub r#type: FlagType,
    /// Display name (required).
    pub name: String,
    /// Description (empty: none).
    pub description: String,
    /// Whether the flag is on.
    pub enabled: bool,
    /// Variants (variant flags).
    pub variants: Vec<Variant>,
    /// Rules, in evaluation order (rank = position + 1).
    pub rules: Vec<Rule>,
    /// Rollouts, in evaluation order (boolean flags).
    pub rollouts: Vec<Rollout>,
    /// The key of the default variant (stored as `default: true` on that variant).
    pub default_variant: Option<String>,
    /// Arbitrary metadata (`google.protobuf.Struct`); empty: none.
    pub metadata: Map<String, Value>,
}

impl Flag {
    /// A variant flag with a key and a name.
    pub fn new(key: impl Into<String>, name: impl Into<String>) -> Self {
        Flag {
            key: key.into(),
            name: name.into(),
            ..Flag::default()
        }
    }

    /// The variant with this key.
    pub fn variant(&self, key: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.key == key)
    }

    /// Every segment key its rules and rollouts reference.
    pub fn segment_keys(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .flat_map(|r| r.segments.iter())
            .chain(self.rollouts.iter().flat_map(|r| match &r.rule {
                RolloutRule::Segment(s) => s.segments.iter(),
                RolloutRule::Threshold(_) => [].iter(),
            }))
            .map(String::as_str)
    }
}

/// A variant of a flag (`flipt.core.Variant`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Variant {
    /// The key, unique in its flag.
    pub key: String,
    /// Display name (empty: none).
    pub name: String,
    /// Description (empty: none).
    pub description: String,
    /// Arbitrary JSON attached to the variant (`google.protobuf.Value`).
    pub attachment: Option<Attachment>,
}

/// A variant's attachment: arbitrary JSON, kept as its compact text. A parsed JSON value
/// costs far more than its text (an object of two fields: about 0.7 KB as a
/// `serde_json::Value`, 25 bytes as text; measured on the 10,000-flag data set, where the
/// attachments were a third of a snapshot's memory), and it is only read when a flag is
/// converted for an answer or written back to a file.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment(Box<str>);

impl Attachment {
    /// The attachment holding `value`. Object keys come out sorted, so two attachments are
    /// equal exactly when their values are.
    pub fn new(value: &Value) -> Self {
        Attachment(value.to_string().into_boxed_str())
    }

    /// The JSON value.
    pub fn value(&self) -> Value {
        // The text was written by `new` from a `Value`, so it reads back as one.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The compact JSON text.
    pub fn json(&self) -> &str {
        &self.0
    }
}

impl From<Value> for Attachment {
    fn from(value: Value) -> Self {
        Attachment::new(&value)
    }
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attachment({})", self.0)
    }
}

/// A rule of a variant flag (`flipt.core.Rule`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rule {
    /// How the segments combine.
    pub segment_operator: SegmentOperator,
    /// The segments (at least one).
    pub segments: Vec<String>,
    /// How matching entities are spread over variants.
    pub distributions: Vec<Distribution>,
}

/// A distribution of a rule (`flipt.core.Distribution`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Distribution {
    /// The variant key.
    pub variant: String,
    /// Percentage, 0 to 100.
    pub rollout: f32,
}

/// A rollout of a boolean flag (`flipt.core.Rollout`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Description (empty: none).
    pub description: String,
    /// What it matches.
    pub rule: RolloutRule,
}

/// The two kinds of rollout (`Rollout.rule` oneof; its `type` follows from the variant).
#[derive(Debug, Clone, PartialEq)]
pub enum RolloutRule {
    /// Entities in segments (`SEGMENT_ROLLOUT_TYPE`).
    Segment(RolloutSegment),
    /// A percentage of entities (`THRESHOLD_ROLLOUT_TYPE`).
    Threshold(RolloutThreshold),
}

impl RolloutRule {
    /// The `flipt.core.RolloutType` number (1 segment, 2 threshold).
    pub fn type_i32(&self) -> i32 {
        match self {
            RolloutRule::Segment(_) => 1,
            RolloutRule::Threshold(_) => 2,
        }
    }
}

/// `flipt.core.RolloutSegment`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RolloutSegment {
    /// The value the flag takes for matching entities.
    pub value: bool,
    /// The segments (at least one).
    pub segments: Vec<String>,
    /// How the segments combine.
    pub segment_operator: SegmentOperator,
}

/// `flipt.core.RolloutThreshold`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RolloutThreshold {
    /// Percentage, 0 to 100.
    pub percentage: f32,
    /// The value the flag takes for entities within the percentage.
    pub value: bool,
}

/// A segment (`flipt.core.Segment`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Segment {
    /// The key, unique in its namespace.
    pub key: String,
    /// How the constraints combine.
    pub match_type: MatchType,
    /// Display name (required).
    pub name: String,
    /// Description (empty: none).
    pub description: String,
    /// Constraints.
    pub constraints: Vec<Constraint>,
}

impl Segment {
    /// A segment with a key and a name.
    pub fn new(key: impl Into<String>, name: impl Into<String>) -> Self {
        Segment {
            key: key.into(),
            name: name.into(),
            ..Segment::default()
        }
    }
}

/// A constraint of a segment (`flipt.core.Constraint`).
///
/// `value` is a string, as in the protobuf message. For `isoneof`/`isnotoneof` it holds a
/// compact JSON list (`["a","b"]`, `[1,2]`): a 1.6 document's YAML list and an older
/// document's JSON string both read as that, and writing gives each version its own form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Constraint {
    /// The property's type.
    pub r#type: ComparisonType,
    /// The context property compared.
    pub property: String,
    /// The operator (`eq`, `isoneof`, ...).
    pub operator: String,
    /// The value compared with (empty: none).
    pub value: String,
    /// Description (empty: none).
    pub description: String,
}

impl Constraint {
    /// Whether the operator takes a list of values.
    pub fn is_list_operator(&self) -> bool {
        is_list_operator(&self.operator)
    }
}

pub(crate) fn is_list_operator(op: &str) -> bool {
    op == "isoneof" || op == "isnotoneof"
}

#[cfg(test)]
mod attachment_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attachments_keep_their_value_and_compare_by_it() {
        for v in [
            json!({"b": [1, 2.5, -3, 9_007_199_254_740_993_u64], "a": {"x": null, "y": "é\n\"q\""}}),
            json!("text"),
            json!(0.1),
            json!([]),
            json!(false),
            // A double that serde_json's default (not float_roundtrip) parser reads back
            // one unit in the last place off (found by the grpc_decode fuzzer).
            json!(f64::from_bits(0x0042_42C8_0000_0101)),
            json!(f64::MIN_POSITIVE),
            json!(1.0e308),
            json!(-2.2250738585072014e-308),
        ] {
            assert_eq!(Attachment::new(&v).value(), v);
        }
        let one = Attachment::new(&json!({"color": "blue", "size": 3}));
        let other: Attachment = serde_json::from_str::<Value>(r#"{ "size": 3, "color": "blue" }"#)
            .unwrap()
            .into();
        assert_eq!(one, other, "key order does not matter");
        assert_eq!(one.json(), r#"{"color":"blue","size":3}"#);
        assert_ne!(one, Attachment::new(&json!({"color": "blue", "size": 3.5})));
    }
}

//! Raw serde shapes into the model, collecting every problem with the item it concerns.

use serde_json::Value;

use super::raw::*;
use super::{Document, DocumentNamespace};
use crate::key::key_problem;
use crate::model::*;
use crate::version::Version;

/// Which list of a document an item is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    Flags,
    Segments,
}

impl List {
    pub(crate) fn key(self) -> &'static str {
        match self {
            List::Flags => "flags",
            List::Segments => "segments",
        }
    }
}

/// A problem found while converting one document, before it gets its file and line.
#[derive(Debug, Clone)]
pub(crate) struct DocProblem {
    /// The item (`flag my-flag`), if any.
    pub(crate) item: Option<String>,
    /// The list and position of the item, to find its line.
    pub(crate) at: Option<(List, usize)>,
    /// A top-level field of the document the problem is about, to find its line.
    pub(crate) field: Option<&'static str>,
    pub(crate) message: String,
}

#[derive(Default)]
pub(crate) struct Collector {
    pub(crate) problems: Vec<DocProblem>,
}

impl Collector {
    fn doc(&mut self, field: &'static str, message: impl Into<String>) {
        self.problems.push(DocProblem {
            item: None,
            at: None,
            field: Some(field),
            message: message.into(),
        });
    }

    fn item(&mut self, item: &ItemRef, message: impl Into<String>) {
        self.problems.push(DocProblem {
            item: Some(item.name.clone()),
            at: Some((item.list, item.index)),
            field: None,
            message: message.into(),
        });
    }
}

struct ItemRef {
    list: List,
    index: usize,
    name: String,
}

impl ItemRef {
    fn new(list: List, index: usize, key: &str) -> Self {
        let kind = match list {
            List::Flags => "flag",
            List::Segments => "segment",
        };
        let name = if key.is_empty() || key_problem(key).is_some() {
            format!("{kind} {}", index + 1)
        } else {
            format!("{kind} {key}")
        };
        ItemRef { list, index, name }
    }
}

fn text(t: Option<Text>) -> String {
    t.map(|t| t.0).unwrap_or_default()
}

fn gate(c: &mut Collector, item: &ItemRef, field: &str, need: Version, have: Version) {
    if have < need {
        c.item(
            item,
            format!("{field} is supported in version >={need}, found {have}"),
        );
    }
}

/// Converts a parsed document.
pub(crate) fn convert_document(raw: RawDocument, c: &mut Collector) -> Document {
    let version = match raw.version {
        None => None,
        Some(Text(v)) => match Version::parse(&v) {
            Some(v) => Some(v),
            None => {
                c.doc(
                    "version",
                    format!(
                        "unsupported version \"{}\" (expected \"1.0\" to \"1.6\")",
                        crate::key::shorten(&v)
                    ),
                );
                None
            }
        },
    };
    let effective = version.unwrap_or(Version::LATEST);
    let namespace = raw.namespace.map(|ns| convert_namespace(ns, c));
    let raw_flags = raw.flags.unwrap_or_default();
    let mut flags = Vec::with_capacity(raw_flags.len());
    for (i, raw) in raw_flags.into_iter().enumerate() {
        match raw {
            Some(raw) => flags.push(std::sync::Arc::new(convert_flag(raw, i, effective, c))),
            None => c.item(&ItemRef::new(List::Flags, i, ""), "empty flag (no fields)"),
        }
    }
    let raw_segments = raw.segments.unwrap_or_default();
    let mut segments = Vec::with_capacity(raw_segments.len());
    for (i, raw) in raw_segments.into_iter().enumerate() {
        match raw {
            Some(raw) => segments.push(convert_segment(raw, i, c)),
            None => c.item(
                &ItemRef::new(List::Segments, i, ""),
                "empty segment (no fields)",
            ),
        }
    }
    Document {
        version,
        namespace,
        flags,
        segments,
    }
}

fn convert_namespace(raw: RawNamespace, c: &mut Collector) -> DocumentNamespace {
    let ns = match raw {
        RawNamespace::Key(key) => DocumentNamespace::Key(key),
        RawNamespace::Details {
            key,
            name,
            description,
        } => DocumentNamespace::Details {
            key: key
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
        },
    };
    if let Some(why) = key_problem(ns.key()) {
        c.doc(
            "namespace",
            format!(
                "invalid namespace key \"{}\": {why}",
                crate::key::shorten(ns.key())
            ),
        );
    }
    ns
}

fn convert_flag(raw: RawFlag, index: usize, version: Version, c: &mut Collector) -> Flag {
    let key = text(raw.key);
    let item = ItemRef::new(List::Flags, index, &key);
    if let Some(why) = key_problem(&key) {
        c.item(&item, format!("invalid flag key: {why}"));
    }
    let name = text(raw.name);
    if name.is_empty() {
        c.item(&item, "name must not be empty");
    }
    let r#type = match raw.r#type {
        None => FlagType::Variant,
        Some(Text(t)) => {
            gate(c, &item, "flag.type", Version::V1_1, version);
            FlagType::from_name(&t).unwrap_or_else(|| {
                c.item(
                    &item,
                    format!(
                        "unknown type \"{}\" (expected VARIANT_FLAG_TYPE or BOOLEAN_FLAG_TYPE)",
                        crate::key::shorten(&t)
                    ),
                );
                FlagType::Variant
            })
        }
    };
    let metadata = match raw.metadata {
        None => Default::default(),
        Some(m) => {
            gate(c, &item, "flag.metadata", Version::V1_3, version);
            m
        }
    };
    let mut flag = Flag {
        key,
        r#type,
        name,
        description: text(raw.description),
        enabled: raw.enabled.unwrap_or(false),
        metadata,
        ..Flag::default()
    };
    // Lists are sized exactly (`reserve_exact`): pushing one by one leaves room for 4 items,
    // and most flags have 2 variants and 1 rule, which came to megabytes of unused room in a
    // 10,000-flag snapshot (M1 in BENCHMARKS.md).
    let variants = raw.variants.unwrap_or_default();
    flag.variants.reserve_exact(variants.len());
    for (i, raw) in variants.into_iter().enumerate() {
        let Some(raw) = raw else {
            c.item(&item, format!("variant {} is empty", i + 1));
            continue;
        };
        let vkey = text(raw.key);
        if let Some(why) = key_problem(&vkey) {
            c.item(
                &item,
                format!("variant {}: invalid variant key: {why}", i + 1),
            );
        }
        if let Some(default) = raw.default {
            gate(c, &item, "variant.default", Version::V1_3, version);
            if default {
                if let Some(previous) = &flag.default_variant {
                    c.item(
                        &item,
                        format!("variants \"{previous}\" and \"{vkey}\" are both marked default"),
                    );
                }
                flag.default_variant = Some(vkey.clone());
            }
        }
        flag.variants.push(Variant {
            key: vkey,
            name: text(raw.name),
            description: text(raw.description),
            attachment: raw
                .attachment
                .filter(|a| !a.is_null())
                .map(|a| Attachment::new(&a)),
        });
    }
    let rules = raw.rules.unwrap_or_default();
    flag.rules.reserve_exact(rules.len());
    for (i, raw) in rules.into_iter().enumerate() {
        let n = i + 1;
        let Some(raw) = raw else {
            c.item(&item, format!("rule {n} is empty"));
            continue;
        };
        let (segments, segment_operator) = match raw.segment {
            None => {
                c.item(&item, format!("rule {n} has no segment"));
                (Vec::new(), SegmentOperator::Or)
            }
            Some(s) => {
                if s.object {
                    gate(
                        c,
                        &item,
                        "flag.rules[*].segment.keys",
                        Version::V1_2,
                        version,
                    );
                }
                segment_ref(s.key, s.keys, s.operator, &format!("rule {n}"), &item, c)
            }
        };
        let raw_distributions = raw.distributions.unwrap_or_default();
        let mut distributions = Vec::with_capacity(raw_distributions.len());
        for (j, d) in raw_distributions.into_iter().enumerate() {
            let Some(d) = d else {
                c.item(&item, format!("rule {n} distribution {} is empty", j + 1));
                continue;
            };
            let variant = text(d.variant);
            if variant.is_empty() {
                c.item(
                    &item,
                    format!("rule {n} distribution {} has no variant", j + 1),
                );
            }
            let rollout = d.rollout.map_or(0.0, |r| r.0);
            if !(0.0..=100.0).contains(&rollout) {
                c.item(
                    &item,
                    format!("rule {n} distribution rollout {rollout} is not between 0 and 100"),
                );
            }
            distributions.push(Distribution {
                variant,
                rollout: rollout as f32,
            });
        }
        flag.rules.push(Rule {
            segment_operator,
            segments,
            distributions,
        });
    }
    let rollouts = raw.rollouts.unwrap_or_default();
    flag.rollouts.reserve_exact(rollouts.len());
    if !rollouts.is_empty() {
        gate(c, &item, "flag.rollouts", Version::V1_1, version);
        if flag.r#type != FlagType::Boolean {
            c.item(&item, "rollouts are only allowed on boolean flags");
        }
    }
    for (i, raw) in rollouts.into_iter().enumerate() {
        let n = i + 1;
        let Some(raw) = raw else {
            c.item(&item, format!("rollout {n} is empty"));
            continue;
        };
        let rule = match (raw.segment, raw.threshold) {
            (Some(s), None) => {
                if s.keys.is_some() {
                    gate(
                        c,
                        &item,
                        "flag.rollouts[*].segment.keys",
                        Version::V1_2,
                        version,
                    );
                }
                let (segments, segment_operator) = segment_ref(
                    s.key.map(|t| t.0),
                    s.keys.map(|k| k.into_iter().map(|t| t.0).collect()),
                    s.operator.map(|t| t.0),
                    &format!("rollout {n}"),
                    &item,
                    c,
                );
                RolloutRule::Segment(RolloutSegment {
                    value: s.value.unwrap_or(false),
                    segments,
                    segment_operator,
                })
            }
            (None, Some(t)) => {
                let percentage = t.percentage.map_or(0.0, |p| p.0);
                if t.percentage.is_none() {
                    c.item(&item, format!("rollout {n} threshold has no percentage"));
                } else if !(0.0..=100.0).contains(&percentage) {
                    c.item(
                        &item,
                        format!(
                            "rollout {n} threshold percentage {percentage} is not between 0 and 100"
                        ),
                    );
                }
                RolloutRule::Threshold(RolloutThreshold {
                    percentage: percentage as f32,
                    value: t.value.unwrap_or(false),
                })
            }
            (Some(_), Some(_)) => {
                c.item(
                    &item,
                    format!("rollout {n} cannot have both a segment and a threshold"),
                );
                continue;
            }
            (None, None) => {
                c.item(&item, format!("rollout {n} needs a segment or a threshold"));
                continue;
            }
        };
        flag.rollouts.push(Rollout {
            description: text(raw.description),
            rule,
        });
    }
    flag
}

fn segment_ref(
    key: Option<String>,
    keys: Option<Vec<String>>,
    operator: Option<String>,
    what: &str,
    item: &ItemRef,
    c: &mut Collector,
) -> (Vec<String>, SegmentOperator) {
    let key = key.filter(|k| !k.is_empty());
    let keys = keys.filter(|k| !k.is_empty());
    let segments = match (key, keys) {
        (Some(_), Some(_)) => {
            c.item(
                item,
                format!("{what} cannot have both segment key and keys"),
            );
            Vec::new()
        }
        (Some(k), None) => vec![k],
        (None, Some(ks)) => ks,
        (None, None) => {
            c.item(item, format!("{what} has no segment"));
            Vec::new()
        }
    };
    let operator = match operator.filter(|o| !o.is_empty()) {
        None => SegmentOperator::Or,
        Some(o) => SegmentOperator::from_name(&o).unwrap_or_else(|| {
            c.item(
                item,
                format!(
                    "{what}: unknown operator \"{}\" (expected OR_SEGMENT_OPERATOR or AND_SEGMENT_OPERATOR)",
                    crate::key::shorten(&o)
                ),
            );
            SegmentOperator::Or
        }),
    };
    (segments, operator)
}

fn convert_segment(raw: RawSegment, index: usize, c: &mut Collector) -> Segment {
    let key = text(raw.key);
    let item = ItemRef::new(List::Segments, index, &key);
    if let Some(why) = key_problem(&key) {
        c.item(&item, format!("invalid segment key: {why}"));
    }
    let name = text(raw.name);
    if name.is_empty() {
        c.item(&item, "name must not be empty");
    }
    let match_type = match raw.match_type {
        None => MatchType::All,
        Some(Text(m)) => MatchType::from_name(&m).unwrap_or_else(|| {
            c.item(
                &item,
                format!(
                    "unknown match_type \"{}\" (expected ALL_MATCH_TYPE or ANY_MATCH_TYPE)",
                    crate::key::shorten(&m)
                ),
            );
            MatchType::All
        }),
    };
    let raw_constraints = raw.constraints.unwrap_or_default();
    let mut constraints = Vec::with_capacity(raw_constraints.len());
    for (i, raw) in raw_constraints.into_iter().enumerate() {
        let n = i + 1;
        let Some(raw) = raw else {
            c.item(&item, format!("constraint {n} is empty"));
            continue;
        };
        let type_name = text(raw.r#type);
        let r#type = ComparisonType::from_name(&type_name)
            .filter(|t| *t != ComparisonType::Unknown)
            .unwrap_or_else(|| {
                c.item(
                    &item,
                    format!(
                        "constraint {n}: unknown type \"{}\"",
                        crate::key::shorten(&type_name)
                    ),
                );
                ComparisonType::Unknown
            });
        let property = text(raw.property);
        if property.is_empty() {
            c.item(&item, format!("constraint {n}: property must not be empty"));
        }
        let operator = text(raw.operator);
        if r#type != ComparisonType::Unknown && !r#type.operators().contains(&operator.as_str()) {
            c.item(
                &item,
                format!(
                    "constraint {n}: operator \"{}\" is not valid for {}",
                    crate::key::shorten(&operator),
                    r#type.as_str()
                ),
            );
        }
        let list = is_list_operator(&operator);
        let value = match raw.value {
            None => String::new(),
            Some(ConstraintValue::Text(t)) if list => match normalise_list(&t) {
                Some(v) => v,
                None => {
                    c.item(
                        &item,
                        format!("constraint {n}: the value of {operator} must be a list"),
                    );
                    t
                }
            },
            Some(ConstraintValue::Text(t)) => t,
            Some(ConstraintValue::List(items)) => {
                if !list {
                    c.item(
                        &item,
                        format!("constraint {n}: the value of {operator} must not be a list"),
                    );
                }
                if items.iter().any(|v| !(v.is_string() || v.is_number())) {
                    c.item(
                        &item,
                        format!("constraint {n}: list values must be strings or numbers"),
                    );
                }
                Value::Array(items).to_string()
            }
        };
        constraints.push(Constraint {
            r#type,
            property,
            operator,
            value,
            description: text(raw.description),
        });
    }
    Segment {
        key,
        match_type,
        name,
        description: text(raw.description),
        constraints,
    }
}

/// A JSON list in a string, as compact JSON; `None` if it is not a list of strings or numbers.
pub(crate) fn normalise_list(text: &str) -> Option<String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) if items.iter().all(|v| v.is_string() || v.is_number()) => {
            Some(Value::Array(items).to_string())
        }
        _ => None,
    }
}

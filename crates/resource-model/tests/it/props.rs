//! Property tests: arbitrary valid resources round-trip; arbitrary input never panics; the
//! corpus edited at random never panics, and every refusal names the file and says why.

use proptest::collection::vec;
use proptest::prelude::*;
use resource_model::*;
use serde_json::{Map, Value, json};

fn key() -> impl Strategy<Value = String> {
    "[-_,A-Za-z0-9]{1,12}"
}

/// Text with the characters that need quoting in YAML.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ]{0,12}",
        Just("1.6".to_owned()),
        Just("yes".to_owned()),
        Just("a: b # c".to_owned()),
        Just("- dash".to_owned()),
        Just("multi\nline\ttext".to_owned()),
        Just("quote \" and ' and \\".to_owned()),
        Just(" padded ".to_owned()),
        Just("ünïcødé ✓".to_owned()),
        Just("{flow}".to_owned()),
        Just("null".to_owned()),
        Just("~".to_owned()),
        Just("@at".to_owned()),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|i| json!(i)),
        (-1000i32..1000).prop_map(|i| json!(f64::from(i) / 8.0)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((text(), inner), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn percent() -> impl Strategy<Value = f32> {
    (0u32..=10000).prop_map(|x| x as f32 / 100.0)
}

fn operator() -> impl Strategy<Value = SegmentOperator> {
    prop_oneof![Just(SegmentOperator::Or), Just(SegmentOperator::And)]
}

fn segment_keys() -> impl Strategy<Value = Vec<String>> {
    vec(
        prop_oneof![
            Just("s1".to_owned()),
            Just("s2".to_owned()),
            Just("s3".to_owned())
        ],
        1..3,
    )
}

fn flag() -> impl Strategy<Value = Flag> {
    let variants = vec(
        (key(), text(), text(), proptest::option::of(json_value())),
        0..4,
    );
    (
        key(),
        "[A-Za-z][A-Za-z0-9 ]{0,10}",
        text(),
        any::<bool>(),
        any::<bool>(),
        variants,
        vec((text(), json_value()), 0..3),
    )
        .prop_flat_map(
            |(key, name, description, enabled, boolean, variants, metadata)| {
                let mut seen = std::collections::HashSet::new();
                let variants: Vec<Variant> = variants
                    .into_iter()
                    .filter(|(k, ..)| seen.insert(k.clone()))
                    .map(|(key, name, description, attachment)| Variant {
                        key,
                        name,
                        description,
                        attachment: attachment
                            .filter(|a| !a.is_null())
                            .map(|a| Attachment::new(&a)),
                    })
                    .collect();
                let vkeys: Vec<String> = variants.iter().map(|v| v.key.clone()).collect();
                let distribution = if vkeys.is_empty() {
                    Just(Vec::new()).boxed()
                } else {
                    vec((proptest::sample::select(vkeys.clone()), percent()), 0..3)
                        .prop_map(|d| {
                            d.into_iter()
                                .map(|(variant, rollout)| Distribution { variant, rollout })
                                .collect()
                        })
                        .boxed()
                };
                let rules = vec((segment_keys(), operator(), distribution), 0..3).prop_map(|r| {
                    r.into_iter()
                        .map(|(segments, segment_operator, distributions)| Rule {
                            segment_operator,
                            segments,
                            distributions,
                        })
                        .collect::<Vec<_>>()
                });
                let rollouts = vec(
                    (
                        text(),
                        prop_oneof![
                            (segment_keys(), operator(), any::<bool>()).prop_map(
                                |(segments, segment_operator, value)| RolloutRule::Segment(
                                    RolloutSegment {
                                        value,
                                        segments,
                                        segment_operator
                                    }
                                )
                            ),
                            (percent(), any::<bool>()).prop_map(|(percentage, value)| {
                                RolloutRule::Threshold(RolloutThreshold { percentage, value })
                            }),
                        ],
                    ),
                    0..3,
                )
                .prop_map(|r| {
                    r.into_iter()
                        .map(|(description, rule)| Rollout { description, rule })
                        .collect::<Vec<_>>()
                });
                let default = proptest::option::of(proptest::sample::select(if vkeys.is_empty() {
                    vec![String::new()]
                } else {
                    vkeys.clone()
                }))
                .prop_map(|d| d.filter(|d| !d.is_empty()));
                (
                    Just((key, name, description, enabled, boolean, variants, metadata)),
                    rules,
                    rollouts,
                    default,
                )
            },
        )
        .prop_map(
            |(
                (key, name, description, enabled, boolean, variants, metadata),
                rules,
                rollouts,
                default_variant,
            )| {
                let mut m = Map::new();
                for (k, v) in metadata {
                    if !v.is_null() {
                        m.insert(k, v);
                    }
                }
                Flag {
                    key,
                    r#type: if boolean {
                        FlagType::Boolean
                    } else {
                        FlagType::Variant
                    },
                    name,
                    description,
                    enabled,
                    variants,
                    rules: if boolean { Vec::new() } else { rules },
                    rollouts: if boolean { rollouts } else { Vec::new() },
                    default_variant,
                    metadata: m,
                }
            },
        )
}

fn segment() -> impl Strategy<Value = Segment> {
    let constraint = prop_oneof![
        ("[a-z]{1,8}", text()).prop_map(|(property, value)| Constraint {
            r#type: ComparisonType::String,
            property,
            operator: "eq".into(),
            value,
            description: String::new()
        }),
        ("[a-z]{1,8}", vec("[a-z0-9-]{0,6}", 0..4)).prop_map(|(property, items)| Constraint {
            r#type: ComparisonType::EntityId,
            property,
            operator: "isoneof".into(),
            value: serde_json::to_string(&items).unwrap(),
            description: String::new(),
        }),
        ("[a-z]{1,8}", vec(any::<i16>(), 1..4), text()).prop_map(
            |(property, items, description)| Constraint {
                r#type: ComparisonType::Number,
                property,
                operator: "isnotoneof".into(),
                value: serde_json::to_string(&items).unwrap(),
                description,
            }
        ),
        "[a-z]{1,8}".prop_map(|property| Constraint {
            r#type: ComparisonType::Boolean,
            property,
            operator: "true".into(),
            ..Constraint::default()
        }),
    ];
    (
        key(),
        "[A-Za-z][A-Za-z0-9 ]{0,10}",
        text(),
        any::<bool>(),
        vec(constraint, 0..4),
    )
        .prop_map(|(key, name, description, any, constraints)| Segment {
            key,
            match_type: if any { MatchType::Any } else { MatchType::All },
            name,
            description,
            constraints,
        })
}

/// One edit of a text at a position (a fraction of its length): delete, insert or replace with
/// characters that matter to YAML and JSON.
#[derive(Debug, Clone)]
enum Edit {
    Delete(proptest::sample::Index, usize),
    Insert(proptest::sample::Index, String),
    Replace(proptest::sample::Index, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let piece = prop_oneof![
        proptest::sample::select(vec![
            ":",
            " ",
            "\n",
            "\t",
            "-",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "#",
            "&a ",
            "*a",
            "!!str ",
            "!!binary ",
            "'",
            "\"",
            "|",
            ">",
            "---\n",
            "...\n",
            "? ",
            "<<: *a\n",
            "\0",
            "\u{feff}",
            "  ",
            "\n  ",
            "\n    - key: x\n",
            "1e999",
            "-.inf",
            ".nan",
            "~",
            "\"\\u0000\"",
            "\u{202e}",
        ])
        .prop_map(str::to_owned),
        "[ -~]{1,6}",
    ];
    prop_oneof![
        (any::<proptest::sample::Index>(), 1usize..8).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<proptest::sample::Index>(), piece.clone()).prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<proptest::sample::Index>(), piece).prop_map(|(i, s)| Edit::Replace(i, s)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let at = |i: &proptest::sample::Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        match e {
            Edit::Delete(i, n) => {
                let start = at(i, chars.len());
                let end = (start + n).min(chars.len());
                chars.drain(start..end);
            }
            Edit::Insert(i, s) => {
                let start = at(i, chars.len() + 1);
                chars.splice(start..start, s.chars());
            }
            Edit::Replace(i, s) => {
                let start = at(i, chars.len());
                let end = (start + s.chars().count()).min(chars.len());
                chars.splice(start..end, s.chars());
            }
        }
    }
    chars.into_iter().collect()
}

fn version() -> impl Strategy<Value = Option<Version>> {
    proptest::option::of(proptest::sample::select(Version::ALL.to_vec()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn valid_resources_round_trip(flags in vec(flag(), 0..5), segments in vec(segment(), 0..4), v in version(), json in any::<bool>()) {
        let path = if json { "ns/features.json" } else { "ns/features.yaml" };
        // Unique keys, and the segments the rules use exist.
        let mut flags = flags;
        let mut seen = std::collections::HashSet::new();
        flags.retain(|f| seen.insert(f.key.clone()));
        let mut segments = segments;
        let mut seen = std::collections::HashSet::new();
        segments.retain(|s| seen.insert(s.key.clone()) && !s.key.starts_with('s'));
        for k in ["s1", "s2", "s3"] {
            segments.push(Segment::new(k, "Used"));
        }
        let mut file = FeaturesFile::empty(path);
        file.push_document(Document { version: v, namespace: Some(DocumentNamespace::Key("ns".into())), ..Document::default() });
        for f in &flags {
            file.put_flag(f.clone());
        }
        for s in &segments {
            file.put_segment(s.clone());
        }
        let bytes = file.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let parsed = FeaturesFile::parse(path, &bytes).unwrap_or_else(|p| panic!("{p}\n{text}"));
        let back: Vec<Flag> = parsed.documents().flat_map(|d| d.flags.iter().map(|f| (**f).clone())).collect();
        prop_assert_eq!(&back, &flags, "{}", text);
        let back: Vec<Segment> = parsed.documents().flat_map(|d| d.segments.clone()).collect();
        prop_assert_eq!(&back, &segments);

        // Editing one flag of the written file changes only that flag.
        if let Some(first) = flags.first() {
            let mut edited = parsed.clone();
            let mut f = first.clone();
            f.name.push_str(" edited");
            f.enabled = !f.enabled;
            edited.put_flag(f.clone());
            let again = FeaturesFile::parse(path, &edited.to_bytes()).unwrap();
            let mut expected = flags.clone();
            expected[0] = f;
            let got: Vec<Flag> = again.documents().flat_map(|d| d.flags.iter().map(|f| (**f).clone())).collect();
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        for path in ["ns/features.yaml", "ns/features.json"] {
            let _ = FeaturesFile::parse(path, &bytes);
        }
        let _ = RepositoryConfig::parse("flipt.yaml", &bytes);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = Template::parse(s).map(|t| t.render(&TemplateValue::Nil));
        }
    }

    #[test]
    fn arbitrary_yaml_like_text_never_panics(lines in vec(prop_oneof![
        Just("---".to_owned()), Just("...".to_owned()), Just("flags:".to_owned()), Just("  - key: a".to_owned()),
        Just("    name: A".to_owned()), Just("- key: b".to_owned()), Just("segments: []".to_owned()), Just("version: \"1.0\"".to_owned()),
        Just("    rules:".to_owned()), Just("      - segment: {keys: [x], operator: AND_SEGMENT_OPERATOR}".to_owned()),
        Just("namespace: {key: ns}".to_owned()), Just("# c".to_owned()), Just("".to_owned()), "[ -~]{0,20}",
    ], 0..20)) {
        let text = lines.join("\n");
        if let Ok(mut f) = FeaturesFile::parse("ns/features.yaml", text.as_bytes()) {
            // Whatever parsed can be edited and written.
            f.put_flag(Flag::new("added", "Added"));
            let out = f.to_bytes();
            let again = FeaturesFile::parse("ns/features.yaml", &out);
            prop_assert!(again.is_ok(), "{}", String::from_utf8_lossy(&out));
            prop_assert!(again.unwrap().flag("added").is_some());
        }
    }

    #[test]
    fn arbitrary_templates_never_panic(src in "[{}a-z .$()|\"`:=,0-9-]{0,40}") {
        let data = TemplateValue::object([("Changes", TemplateValue::List(vec![TemplateValue::str("c")]))]);
        let _ = Template::parse(&src).map(|t| t.render(&data));
    }
}

proptest! {
    // Cheap cases: more of them.
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_corpus_edited_at_random_never_panics(
        which in any::<proptest::sample::Index>(),
        edits in vec(edit(), 1..6),
    ) {
        let (path, original) = crate::CORPUS[which.index(crate::CORPUS.len())];
        let text = apply(original, &edits);
        match FeaturesFile::parse(path, text.as_bytes()) {
            Ok(mut f) => {
                // What parsed can be edited, written and read again.
                f.put_flag(Flag::new("added", "Added"));
                let out = f.to_bytes();
                let again = FeaturesFile::parse(path, &out);
                prop_assert!(again.is_ok(), "{}", String::from_utf8_lossy(&out));
                prop_assert!(again.unwrap().flag("added").is_some());
            }
            Err(problems) => {
                prop_assert!(!problems.0.is_empty());
                for p in &problems.0 {
                    prop_assert_eq!(p.file.as_str(), path);
                    prop_assert!(!p.message.is_empty(), "{:?}", p);
                }
            }
        }
    }
}

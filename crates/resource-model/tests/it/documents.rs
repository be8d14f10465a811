//! Parsing the corpus, round trips, minimal diffs, version raising, and document problems.

use resource_model::*;
use serde_json::json;

use crate::{CORPUS, changed_lines};

fn parse(path: &str, text: &str) -> FeaturesFile {
    FeaturesFile::parse(path, text.as_bytes()).unwrap_or_else(|p| panic!("{path}: {p}"))
}

fn flags(f: &FeaturesFile) -> Vec<Flag> {
    f.documents()
        .flat_map(|d| d.flags.iter().map(|f| (**f).clone()))
        .collect()
}

fn segments(f: &FeaturesFile) -> Vec<Segment> {
    f.documents().flat_map(|d| d.segments.clone()).collect()
}

fn text(f: &FeaturesFile) -> String {
    String::from_utf8(f.to_bytes()).unwrap()
}

#[test]
fn the_corpus_parses_with_every_tricky_part() {
    let files: Vec<FeaturesFile> = CORPUS.iter().map(|(p, t)| parse(p, t)).collect();
    let by = |ns: &str| {
        &files[CORPUS
            .iter()
            .position(|(p, _)| p.starts_with(&format!("{ns}/")))
            .unwrap()]
    };

    // 1.0: rules with ranks, attachments, fractional rollouts.
    let v10 = by("default");
    assert_eq!(v10.documents().next().unwrap().version, Some(Version::V1_0));
    let checkout = v10.flag("checkout-redesign").unwrap();
    assert_eq!(
        checkout.variants[1].attachment,
        Some(Attachment::new(
            &json!({"layout": "single", "steps": ["cart", "pay"]})
        ))
    );
    assert_eq!(checkout.rules[1].distributions[0].rollout, 66.5);
    assert_eq!(checkout.rules[0].segments, ["beta-testers"]);
    assert_eq!(
        v10.segment("beta-testers").unwrap().constraints[1].operator,
        "true"
    );
    assert_eq!(
        v10.segment("beta-testers").unwrap().match_type,
        MatchType::Any
    );

    // 1.1: boolean flags with segment and threshold rollouts.
    let refunds = by("payments").flag("instant-refunds").unwrap();
    assert_eq!(refunds.r#type, FlagType::Boolean);
    assert_eq!(
        refunds.rollouts,
        vec![
            Rollout {
                description: "Internal staff always".into(),
                rule: RolloutRule::Segment(RolloutSegment {
                    value: true,
                    segments: vec!["staff".into()],
                    segment_operator: SegmentOperator::Or
                }),
            },
            Rollout {
                description: String::new(),
                rule: RolloutRule::Threshold(RolloutThreshold {
                    percentage: 25.0,
                    value: true
                })
            },
        ]
    );
    assert_eq!(
        by("payments").segment("staff").unwrap().constraints[1].value,
        "3"
    );

    // 1.2: segment keys with operators, in rules and rollouts; isoneof as a JSON string.
    let search = by("search");
    let ranking = search.flag("ranking-model").unwrap();
    assert_eq!(ranking.rules[0].segments, ["europe", "mobile"]);
    assert_eq!(ranking.rules[0].segment_operator, SegmentOperator::And);
    assert_eq!(ranking.rules[1].segments, ["europe"]);
    let typo = search.flag("typo-tolerance").unwrap();
    assert!(
        matches!(&typo.rollouts[0].rule, RolloutRule::Segment(s) if s.segment_operator == SegmentOperator::And && s.segments.len() == 2 && s.value)
    );
    assert_eq!(
        search.segment("europe").unwrap().constraints[0].value,
        r#"["eu-west-1","eu-central-1"]"#
    );

    // 1.3: metadata and a default variant; nested attachments.
    let pricing = by("growth").flag("pricing-page").unwrap();
    assert_eq!(pricing.default_variant.as_deref(), Some("classic"));
    assert_eq!(
        pricing.metadata["limits"],
        json!({"max_plans": 4, "currencies": {"eur": true, "usd": true}})
    );
    assert_eq!(pricing.metadata["tags"], json!(["pricing", "experiment"]));
    let compact = pricing
        .variant("compact")
        .unwrap()
        .attachment
        .as_ref()
        .unwrap()
        .value();
    assert_eq!(
        compact["features"][0]["plans"],
        json!(["pro", "enterprise"])
    );
    assert_eq!(compact["ratio"], json!(0.75));
    assert_eq!(compact["beta"], json!(null));
    assert_eq!(
        by("growth").segment("returning").unwrap().constraints[0].value,
        "2"
    );

    // 1.4: namespace details.
    let mobile = by("mobile").documents().next().unwrap();
    assert_eq!(
        mobile.namespace,
        Some(DocumentNamespace::Details {
            key: "mobile".into(),
            name: "Mobile apps".into(),
            description: "Flags for the iOS and Android apps".into()
        })
    );

    // 1.5 JSON strings and 1.6 lists normalise to the same compact JSON (Flipt's
    // TestSnapshot_IsOneOf).
    let orgs = by("accounts").segment("orgs").unwrap();
    assert_eq!(orgs.constraints[0].value, r#"["org-a","org-b","org-c"]"#);
    assert_eq!(orgs.constraints[1].value, "[18,21,65]");
    let platform = by("platform");
    assert_eq!(platform.documents().count(), 2);
    let canary = platform.segment("canary-hosts").unwrap();
    assert_eq!(canary.constraints[0].value, r#"["canary-1","canary-2"]"#);
    assert_eq!(canary.constraints[1].value, "[18,21,65]");
    assert_eq!(
        platform.flag("new-scheduler").unwrap().variants[1].attachment,
        Some(Attachment::new(&json!([1, 2, {"nested": [true, false]}])))
    );

    // JSON.
    let internal = by("internal");
    assert_eq!(internal.format(), Format::Json);
    let debug = internal.flag("debug-panel").unwrap();
    assert_eq!(debug.metadata["nested"], json!({"a": [1, 2]}));
    assert_eq!(
        internal.segment("admins").unwrap().constraints[0].value,
        r#"["admin","owner"]"#
    );
}

#[test]
fn unchanged_files_are_written_back_byte_for_byte() {
    for (path, t) in CORPUS {
        assert_eq!(text(&parse(path, t)), *t, "{path}");
    }
}

#[test]
fn every_document_round_trips_through_the_emitter() {
    for (path, t) in CORPUS {
        let original = parse(path, t);
        for target in ["x/features.yaml", "x/features.json"] {
            let mut fresh = FeaturesFile::empty(target);
            for doc in original.documents() {
                fresh.push_document(doc.clone());
            }
            let again = parse(target, &text(&fresh));
            let a: Vec<_> = original.documents().cloned().collect();
            let b: Vec<_> = again.documents().cloned().collect();
            assert_eq!(a, b, "{path} as {target}:\n{}", text(&fresh));
        }
    }
}

#[test]
fn editing_every_item_round_trips() {
    for (path, t) in CORPUS {
        let mut f = parse(path, t);
        let original_flags = flags(&f);
        let original_segments = segments(&f);
        for mut flag in original_flags.clone() {
            flag.enabled = !flag.enabled;
            flag.description.push_str(" (edited)");
            f.put_flag(flag);
        }
        for mut segment in original_segments.clone() {
            segment.description = "edited: with a colon".into();
            f.put_segment(segment);
        }
        let edited = parse(path, &text(&f));
        assert_eq!(flags(&edited), flags(&f), "{path}:\n{}", text(&f));
        assert_eq!(segments(&edited), segments(&f), "{path}");
        // And back again: the same resources as at the start.
        let mut back = edited;
        for flag in original_flags.clone() {
            back.put_flag(flag);
        }
        for segment in original_segments.clone() {
            back.put_segment(segment);
        }
        let reread = parse(path, &text(&back));
        assert_eq!(flags(&reread), original_flags, "{path}");
        assert_eq!(segments(&reread), original_segments, "{path}");
    }
}

/// A file of 100 flags as Flipt v2 writes them (yaml.v3, 4 spaces), as we do (2 spaces), or
/// as people do (nested lists not indented).
fn big_file(w: usize, nested_w: usize) -> String {
    let sp = |n: usize| " ".repeat(n);
    let (p0, c0) = (w, w + 2);
    let (p1, c1) = (c0 + nested_w, c0 + nested_w + 2);
    let (p2, c2) = (c1 + nested_w, c1 + nested_w + 2);
    let mut s = format!(
        "version: \"1.6\"\nnamespace:\n{}key: team\n{}name: Team\nflags:\n",
        sp(w.max(2)),
        sp(w.max(2))
    );
    for n in 0..100 {
        s.push_str(&format!(
            "{}- key: flag-{n}\n{c}name: Flag {n}\n{c}type: VARIANT_FLAG_TYPE\n{c}enabled: false\n{c}variants:\n{}- key: a\n{}- key: b\n{c}rules:\n{}- segment: s\n{}distributions:\n{}- variant: a\n{}rollout: 50\n{}- variant: b\n{}rollout: 50\n",
            sp(p0), sp(p1), sp(p1), sp(p1), sp(c1), sp(p2), sp(c2), sp(p2), sp(c2),
            c = sp(c0),
        ));
    }
    s.push_str(&format!(
        "segments:\n{}- key: s\n{}name: S\n{}match_type: ALL_MATCH_TYPE\n",
        sp(p0),
        sp(c0),
        sp(c0)
    ));
    s
}

#[test]
fn a_one_flag_change_is_a_small_diff() {
    for (w, nested) in [(2, 2), (4, 4), (2, 0), (0, 0)] {
        let original = big_file(w, nested);
        let mut f = parse("team/features.yaml", &original);
        let mut flag = f.flag("flag-42").unwrap().clone();
        flag.enabled = true;
        flag.rules[0].distributions[0].rollout = 70.0;
        flag.rules[0].distributions[1].rollout = 30.0;
        f.put_flag(flag.clone());
        let out = text(&f);
        let diff: Vec<_> = out
            .lines()
            .zip(original.lines())
            .filter(|(a, b)| a != b)
            .take(3)
            .collect();
        assert_eq!(changed_lines(&original, &out), 6, "{diff:?}");
        assert_eq!(
            parse("team/features.yaml", &out).flag("flag-42"),
            Some(&flag)
        );
        // The flag stays at its index.
        assert_eq!(flags(&parse("team/features.yaml", &out))[42].key, "flag-42");

        // A new flag is appended after the last one: only its lines are added.
        let mut f = parse("team/features.yaml", &original);
        f.put_flag(Flag::new("brand-new", "Brand new"));
        let out = text(&f);
        assert_eq!(changed_lines(&original, &out), 4, "{out}");
        assert_eq!(
            flags(&parse("team/features.yaml", &out))
                .last()
                .unwrap()
                .key,
            "brand-new"
        );

        // Deleting a flag removes its lines only.
        let mut f = parse("team/features.yaml", &original);
        f.remove_flag("flag-7");
        assert_eq!(changed_lines(&original, &text(&f)), 14);
    }
}

#[test]
fn untouched_documents_stay_byte_identical() {
    let first = "# first document, hand-written\nversion: '1.0'\nnamespace: team\nflags:\n- {key: a, name: A}   # flow style, odd quoting\n";
    let second = "---\nversion: \"1.0\"\nnamespace: team\nflags:\n  - key: b\n    name: B\n";
    let third = "---\n# trailing document\nsegments:\n  - key: s\n    name: S\n    match_type: ALL_MATCH_TYPE\n";
    let original = format!("{first}{second}{third}");
    let mut f = parse("team/features.yaml", &original);
    let mut b = f.flag("b").unwrap().clone();
    b.enabled = true;
    f.put_flag(b);
    let out = text(&f);
    assert!(out.starts_with(first), "{out}");
    assert!(out.ends_with(third), "{out}");
    assert_eq!(changed_lines(&original, &out), 1, "{out}");
}

#[test]
fn versions_are_kept_unless_the_change_needs_a_newer_one() {
    type Edit = Box<dyn Fn(&mut FeaturesFile)>;
    let cases: Vec<(&str, Edit, Option<Version>)> = vec![
        (
            "1.0",
            Box::new(|f| {
                f.put_flag(Flag::new("plain", "Plain"));
            }),
            Some(Version::V1_0),
        ),
        (
            "1.0",
            Box::new(|f| {
                let mut x = Flag::new("b", "B");
                x.r#type = FlagType::Boolean;
                f.put_flag(x);
            }),
            Some(Version::V1_1),
        ),
        (
            "1.0",
            Box::new(|f| {
                let mut x = Flag::new("r", "R");
                x.rules.push(Rule {
                    segment_operator: SegmentOperator::And,
                    segments: vec!["s".into()],
                    distributions: vec![],
                });
                f.put_flag(x);
            }),
            Some(Version::V1_2),
        ),
        (
            "1.1",
            Box::new(|f| {
                let mut x = Flag::new("r", "R");
                x.rules.push(Rule {
                    segment_operator: SegmentOperator::Or,
                    segments: vec!["s".into(), "t".into()],
                    distributions: vec![],
                });
                f.put_flag(x);
            }),
            Some(Version::V1_2),
        ),
        (
            "1.0",
            Box::new(|f| {
                let mut x = Flag::new("m", "M");
                x.metadata.insert("k".into(), json!("v"));
                f.put_flag(x);
            }),
            Some(Version::V1_3),
        ),
        (
            "1.2",
            Box::new(|f| {
                let mut x = Flag::new("d", "D");
                x.variants.push(Variant {
                    key: "on".into(),
                    ..Variant::default()
                });
                x.default_variant = Some("on".into());
                f.put_flag(x);
            }),
            Some(Version::V1_3),
        ),
        (
            "1.5",
            Box::new(|f| {
                let mut x = Flag::new("b", "B");
                x.r#type = FlagType::Boolean;
                f.put_flag(x);
            }),
            Some(Version::V1_5),
        ),
    ];
    for (version, edit, want) in cases {
        let original = format!(
            "version: \"{version}\"\nsegments:\n  - key: s\n    name: S\n    match_type: ALL_MATCH_TYPE\n  - key: t\n    name: T\n    match_type: ALL_MATCH_TYPE\n"
        );
        let mut f = parse("default/features.yaml", &original);
        edit(&mut f);
        let out = text(&f);
        let doc = parse("default/features.yaml", &out)
            .documents()
            .next()
            .unwrap()
            .clone();
        assert_eq!(doc.version, want, "{out}");
        // Only the version line and the new flag changed.
        assert!(
            out.ends_with("match_type: ALL_MATCH_TYPE\nflags:\n")
                || out.contains("flags:\n  - key:"),
            "{out}"
        );
    }

    // Without a version field (read as 1.6), nothing is added.
    let mut f = parse("default/features.yaml", "flags:\n  - key: a\n    name: A\n");
    let mut x = Flag::new("m", "M");
    x.metadata.insert("k".into(), json!(1));
    f.put_flag(x);
    assert!(!text(&f).contains("version"));

    // Only the changed document of a stream is raised.
    let two = "version: \"1.0\"\nflags:\n  - key: a\n    name: A\n---\nversion: \"1.0\"\nflags:\n  - key: b\n    name: B\n";
    let mut f = parse("default/features.yaml", two);
    let mut b = f.flag("b").unwrap().clone();
    b.metadata.insert("owner".into(), json!("me"));
    f.put_flag(b);
    let out = text(&f);
    assert!(
        out.starts_with("version: \"1.0\"\nflags:\n  - key: a\n"),
        "{out}"
    );
    assert!(out.contains("---\nversion: \"1.3\"\n"), "{out}");
}

#[test]
fn isoneof_values_take_the_form_of_the_documents_version() {
    let segment = |version: &str| {
        format!(
            "version: \"{version}\"\nsegments:\n  - key: s\n    name: S\n    match_type: ALL_MATCH_TYPE\n"
        )
    };
    let mut with_list = Segment::new("orgs", "Orgs");
    with_list.constraints.push(Constraint {
        r#type: ComparisonType::String,
        property: "org".into(),
        operator: "isoneof".into(),
        value: r#"["a","b"]"#.into(),
        description: String::new(),
    });
    let mut f = parse("default/features.yaml", &segment("1.5"));
    f.put_segment(with_list.clone());
    let out = text(&f);
    assert!(
        out.contains("        value: '[\"a\",\"b\"]'")
            || out.contains("        value: \"[\\\"a\\\",\\\"b\\\"]\""),
        "{out}"
    );
    let mut f = parse("default/features.yaml", &segment("1.6"));
    f.put_segment(with_list.clone());
    let out = text(&f);
    assert!(
        out.contains("        value:\n          - a\n          - b\n"),
        "{out}"
    );
    assert_eq!(
        parse("default/features.yaml", &out).segment("orgs"),
        Some(&with_list)
    );
}

fn problems(path: &str, text: &str) -> Vec<Problem> {
    FeaturesFile::parse(path, text.as_bytes())
        .expect_err("should not parse")
        .0
}

#[test]
fn document_problems_are_all_reported_with_locations() {
    let text = "\
version: \"1.0\"
flags:
  - key: typed
    name: Typed
    type: BOOLEAN_FLAG_TYPE
  - key: with metadata
    name: Meta
    metadata: {a: 1}
  - key: no-name
  - key: bad-rollout
    name: Bad rollout
    rollouts:
      - segment: {key: s}
        threshold: {percentage: 5}
      - threshold: {percentage: 150}
  - key: rules
    name: Rules
    rules:
      - segment: {keys: [a, b], operator: XOR}
      - distributions: [{variant: x, rollout: 101}]
segments:
  - key: s
    name: S
    match_type: SOME_MATCH
    constraints:
      - {type: STRING_COMPARISON_TYPE, property: p, operator: gt, value: x}
      - {type: STRING_COMPARISON_TYPE, property: p, operator: isoneof, value: not-a-list}
      - {type: NOPE, property: '', operator: eq}
      - {type: STRING_COMPARISON_TYPE, property: p, operator: eq, value: [a]}
---
version: \"9.9\"
";
    let got = problems("ns/features.yaml", text);
    let expect: &[(usize, &str, &str)] = &[
        (
            1,
            "flag typed",
            "flag.type is supported in version >=1.1, found 1.0",
        ),
        (1, "flag 2", "invalid flag key: must match"),
        (1, "flag 2", "flag.metadata is supported in version >=1.3"),
        (1, "flag no-name", "name must not be empty"),
        (
            1,
            "flag bad-rollout",
            "flag.rollouts is supported in version >=1.1",
        ),
        (
            1,
            "flag bad-rollout",
            "rollouts are only allowed on boolean flags",
        ),
        (
            1,
            "flag bad-rollout",
            "rollout 1 cannot have both a segment and a threshold",
        ),
        (
            1,
            "flag bad-rollout",
            "rollout 2 threshold percentage 150 is not between 0 and 100",
        ),
        (
            1,
            "flag rules",
            "flag.rules[*].segment.keys is supported in version >=1.2",
        ),
        (1, "flag rules", "unknown operator \"XOR\""),
        (1, "flag rules", "rule 2 has no segment"),
        (
            1,
            "flag rules",
            "rule 2 distribution rollout 101 is not between 0 and 100",
        ),
        (1, "segment s", "unknown match_type \"SOME_MATCH\""),
        (
            1,
            "segment s",
            "constraint 1: operator \"gt\" is not valid for STRING_COMPARISON_TYPE",
        ),
        (
            1,
            "segment s",
            "constraint 2: the value of isoneof must be a list",
        ),
        (1, "segment s", "constraint 3: unknown type \"NOPE\""),
        (1, "segment s", "constraint 3: property must not be empty"),
        (
            1,
            "segment s",
            "constraint 4: the value of eq must not be a list",
        ),
    ];
    for (doc, item, message) in expect {
        assert!(
            got.iter().any(|p| p.location.document == Some(*doc)
                && p.location.item.as_deref() == Some(*item)
                && p.message.contains(message)
                && p.location.line.is_some()),
            "missing {doc} {item}: {message}\nin:\n{}",
            Problems(got.clone())
        );
    }
    assert!(
        got.iter().any(|p| p.location.document == Some(2)
            && p.message.contains("unsupported version \"9.9\"")
            && p.location.line == Some(31)),
        "{}",
        Problems(got.clone())
    );
    // The line of an item is where it starts.
    let typed = got
        .iter()
        .find(|p| p.location.item.as_deref() == Some("flag typed"))
        .unwrap();
    assert_eq!(typed.location.line, Some(3));
    assert_eq!(typed.file, "ns/features.yaml");
    assert!(
        typed
            .to_string()
            .starts_with("ns/features.yaml:3 (document 1, flag typed): flag.type"),
        "{typed}"
    );
}

#[test]
fn syntax_and_shape_errors_name_the_line() {
    let p = problems(
        "ns/features.yaml",
        "flags:\n  - key: a\n    name: [unclosed\n",
    );
    assert_eq!(p.len(), 1);
    assert!(p[0].location.line.is_some(), "{:?}", p);
    let p = problems(
        "ns/features.yaml",
        "flags:\n  - key: a\n    name: A\n    colour: red\n",
    );
    assert!(p[0].message.contains("unknown field `colour`"), "{:?}", p);
    assert_eq!(p[0].location.line, Some(4));
    let p = problems("ns/features.yaml", "surprise: true\n");
    assert!(p[0].message.contains("unknown field `surprise`"));
    let p = problems("ns/features.json", "{\"flags\": [}");
    assert_eq!(p[0].location.document, Some(1));
    let p = problems("ns/features.yaml", "\u{0}\u{1}bad");
    assert!(!p.is_empty());
    let p = FeaturesFile::parse("ns/features.yaml", &[0xff, 0xfe]).unwrap_err();
    assert!(p.0[0].message.contains("UTF-8"));
}

#[test]
fn empty_documents_and_files_are_fine() {
    for text in ["", "\n", "# only a comment\n", "---\n", "---\n# c\n---\n"] {
        let f = parse("ns/features.yaml", text);
        assert_eq!(f.documents().count(), 0, "{text:?}");
        assert_eq!(String::from_utf8(f.to_bytes()).unwrap(), text);
    }
}

#[test]
fn keys_are_checked() {
    for bad in ["", "..", "a/b", "a b", "ünï", &"k".repeat(256)] {
        assert!(!is_valid_key(bad));
        assert!(matches!(
            validate_key("flag", bad),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert!(is_valid_key(&"k".repeat(255)));
    assert!(is_valid_key("A-z_0,9"));
}

#[test]
fn hostile_yaml_is_refused_before_it_is_expanded() {
    // One attachment of 2,000 items, referenced 2,000 times: four million nodes from 16 KB.
    let bomb = format!(
        "version: \"1.4\"\nflags:\n  - key: a\n    name: A\n    variants:\n      - key: v\n        attachment:\n          big: &big [{}]\n          copies: [{}]\n",
        vec!["x"; 2000].join(","),
        vec!["*big"; 2000].join(",")
    );
    let p = FeaturesFile::parse("ns/features.yaml", bomb.as_bytes()).unwrap_err();
    assert!(p.0[0].message.contains("billion laughs"), "{p}");
    assert_eq!(p.0[0].location.document, Some(1));
    // Deep flow nesting is refused by its depth, before libyaml scans all of it.
    let deep = format!(
        "flags:\n  - key: a\n    name: A\n    metadata:\n      m: {}{}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let p = FeaturesFile::parse("ns/features.yaml", deep.as_bytes()).unwrap_err();
    assert!(p.0[0].message.contains("nested more than 128"), "{p}");
    // flipt.yaml goes through the same check.
    let config = format!(
        "version: \"2.0\"\ntemplates:\n  commit_message: x\nx: &x [{}]\ny: [{}]\n",
        vec!["1"; 2000].join(","),
        vec!["*x"; 2000].join(",")
    );
    let p = RepositoryConfig::parse("flipt.yaml", config.as_bytes()).unwrap_err();
    assert!(p[0].message.contains("billion laughs"), "{p:?}");
    // Ordinary anchors keep working.
    let f = parse(
        "ns/features.yaml",
        "segments:\n  - key: s\n    name: S\n    match_type: ALL_MATCH_TYPE\n    constraints: &c\n      - type: STRING_COMPARISON_TYPE\n        property: p\n        operator: eq\n        value: v\n  - key: t\n    name: T\n    match_type: ALL_MATCH_TYPE\n    constraints: *c\n",
    );
    assert_eq!(
        f.segment("t").unwrap().constraints,
        f.segment("s").unwrap().constraints
    );
}

#[test]
fn a_document_added_after_blanks_without_a_newline_starts_on_its_own_line() {
    // Found by the features_parse fuzz target: " " then a new document made " version: ...",
    // which does not parse (and a write would have committed it); blank lines with tabs before
    // a document do not parse either. Comments stay.
    for blank in [
        " ",
        "\n ",
        "  \n  ",
        "\t",
        "# c\n\t",
        "\t\n# c\n \t \n",
        "---\n\t",
    ] {
        for path in ["ns/features.yaml", "ns/features.json"] {
            if path.ends_with(".json") && !blank.trim().is_empty() {
                continue;
            }
            let mut f = parse(path, blank);
            f.put_flag(Flag::new("a", "A"));
            let out = text(&f);
            let again = FeaturesFile::parse(path, out.as_bytes())
                .unwrap_or_else(|p| panic!("{blank:?} {path}: {out:?}: {p}"));
            assert!(again.flag("a").is_some(), "{out:?}");
            assert_eq!(blank.contains("# c"), out.contains("# c"), "{out:?}");
        }
    }
}

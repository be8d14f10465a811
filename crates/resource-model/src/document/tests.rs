use super::*;

fn parse(text: &str) -> FeaturesFile {
    match FeaturesFile::parse("ns/features.yaml", text.as_bytes()) {
        Ok(f) => f,
        Err(p) => panic!("{p}"),
    }
}

fn written(f: &FeaturesFile) -> String {
    String::from_utf8(f.to_bytes()).unwrap()
}

#[test]
fn untouched_files_are_byte_identical() {
    let text = "# top comment\nversion: '1.2'   # quoted oddly\nnamespace: ns\nflags:\n- {key: a, name: A}\n---\n# second\nflags: [ ]\n";
    let f = parse(text);
    assert_eq!(written(&f), text);
}

#[test]
fn problems_carry_lines() {
    let text = "version: \"1.6\"\nflags:\n  - key: ok\n    name: Ok\n  - key: bad key\n    name: Bad\n---\nflags:\n  - key: x\n    nmae: typo\n";
    let err = FeaturesFile::parse("ns/features.yaml", text.as_bytes()).unwrap_err();
    let lines: Vec<_> = err
        .iter()
        .map(|p| (p.location.document, p.location.line))
        .collect();
    assert!(lines.contains(&(Some(1), Some(5))), "{err}");
    assert!(
        err.iter().any(|p| p.location.document == Some(2)
            && p.message.contains("unknown field `nmae`")
            && p.location.line == Some(10)),
        "{err}"
    );
}

#[test]
fn a_replaced_item_keeps_its_place_and_key_order() {
    let text = "version: \"1.1\"\nflags:\n  - name: A\n    key: a\n    enabled: false\n  # comment about b\n  - key: b\n    name: B\n";
    let mut f = parse(text);
    let mut a = f.flag("a").unwrap().clone();
    a.description = "now described".into();
    f.put_flag(a);
    assert_eq!(
        written(&f),
        "version: \"1.1\"\nflags:\n  - name: A\n    key: a\n    enabled: false\n    description: now described\n  # comment about b\n  - key: b\n    name: B\n"
    );
}

#[test]
fn yaml_v2_and_v3_indentation_is_kept() {
    let v2 = "version: \"1.0\"\nflags:\n- key: a\n  name: A\n  variants:\n  - key: x\nsegments:\n- key: s\n  name: S\n  match_type: ALL_MATCH_TYPE\n";
    let mut f = parse(v2);
    let mut a = f.flag("a").unwrap().clone();
    a.variants.push(Variant {
        key: "z".into(),
        ..Variant::default()
    });
    f.put_flag(a);
    let out = written(&f);
    assert_eq!(out, v2.replace("  - key: x\n", "  - key: x\n  - key: z\n"));
    let v3 = "version: \"1.6\"\nnamespace:\n    key: ns\nflags:\n    - key: a\n      name: A\n      enabled: false\n";
    let mut f = parse(v3);
    f.put_flag(Flag::new("b", "B"));
    assert_eq!(
        written(&f),
        format!(
            "{v3}    - key: b\n      name: B\n      type: VARIANT_FLAG_TYPE\n      enabled: false\n"
        )
    );
}

#[test]
fn removing_the_last_item_removes_the_list() {
    let text = "version: \"1.6\"\nflags:\n  - key: a\n    name: A\nsegments:\n  - key: s\n    name: S\n    match_type: ANY_MATCH_TYPE\n";
    let mut f = parse(text);
    assert!(f.remove_flag("a").is_some());
    assert_eq!(
        written(&f),
        "version: \"1.6\"\nsegments:\n  - key: s\n    name: S\n    match_type: ANY_MATCH_TYPE\n"
    );
}

#[test]
fn flow_documents_fall_back_to_whole_document_emission() {
    let text = "{\"version\": \"1.2\", \"flags\": [{\"key\": \"a\", \"name\": \"A\"}]}\n";
    let mut f = parse(text);
    f.put_flag(Flag::new("b", "B"));
    let out = written(&f);
    let again = parse(&out);
    assert_eq!(again.documents().next().unwrap().flags.len(), 2);
    assert!(
        out.starts_with("version: \"1.2\"\nflags:\n  - key: a\n"),
        "{out}"
    );
}

#[test]
fn json_files_are_written_as_json() {
    let text = "{\n  \"namespace\": \"ns\",\n  \"flags\": [\n    {\n      \"key\": \"a\",\n      \"name\": \"A\",\n      \"enabled\": false\n    }\n  ]\n}\n";
    let mut f = FeaturesFile::parse("ns/features.json", text.as_bytes()).unwrap();
    let mut a = f.flag("a").unwrap().clone();
    a.enabled = true;
    f.put_flag(a);
    let out = String::from_utf8(f.to_bytes()).unwrap();
    assert_eq!(out, text.replace("false", "true"));
}

#[test]
fn new_documents_are_appended_after_a_separator() {
    let mut f = parse("flags:\n  - key: a\n    name: A\n");
    f.push_document(Document::new(&Namespace::new("ns", "NS")));
    assert_eq!(
        written(&f),
        "flags:\n  - key: a\n    name: A\n---\nversion: \"1.6\"\nnamespace:\n  key: ns\n  name: NS\n"
    );
}

#[test]
fn a_settled_file_is_what_parsing_the_written_bytes_gives() {
    let text = "# c\nversion: \"1.0\"\nflags:\n  - key: a\n    name: A\n---\nsegments:\n  - key: s\n    name: S\n    match_type: ALL_MATCH_TYPE\n";
    let mut f = parse(text);
    let mut b = Flag::new("b", "B");
    b.metadata.insert("k".into(), serde_json::json!(1));
    f.put_flag(b);
    f.push_document(Document::new(&Namespace::new("ns", "NS")));
    let settled = f.settled().unwrap();
    let reparsed = parse(&written(&f));
    assert_eq!(written(&settled), written(&reparsed));
    assert!(!settled.is_changed());
    let a: Vec<_> = settled.documents().cloned().collect();
    let b: Vec<_> = reparsed.documents().cloned().collect();
    assert_eq!(a, b);
    // Further edits give the same bytes either way.
    let (mut x, mut y) = (settled, reparsed);
    for file in [&mut x, &mut y] {
        file.remove_flag("a");
        file.put_segment(Segment::new("t", "T"));
    }
    assert_eq!(written(&x), written(&y));
}

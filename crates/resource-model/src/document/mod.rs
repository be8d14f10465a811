//! Features documents: parsing every format version (YAML streams with several `---`
//! documents, and JSON), and writing them back with small diffs.
//!
//! A [`FeaturesFile`] keeps the exact text of each document. Edits change the documents'
//! resources; [`FeaturesFile::to_bytes`] then writes the documents nobody touched byte for byte
//! and re-emits a changed document by replacing, adding or removing only the lines of the
//! items that changed (and its `version` line when the change needs a newer version). Every
//! re-emitted document is parsed again and compared with what was meant; if the line edit
//! cannot be done or does not read back the same (flow style, unusual layout), the whole
//! document is emitted again in its existing key and item order, with its detected
//! indentation.

mod convert;
pub(crate) mod layout;
mod raw;
mod split;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use serde_yaml::Value;

use convert::{Collector, convert_document};
pub(crate) use convert::{DocProblem, List};
use layout::Layout;
use split::split_stream;

use crate::emit::{self, Style};
use crate::error::{Location, Problem, Problems};
use crate::model::*;
use crate::version::Version;

/// The `namespace` field of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentNamespace {
    /// `namespace: key`.
    Key(String),
    /// `namespace: {key, name, description}`.
    Details {
        /// The key (`default` when the field omits it).
        key: String,
        /// Display name (empty: none).
        name: String,
        /// Description (empty: none).
        description: String,
    },
}

impl DocumentNamespace {
    /// The namespace key.
    pub fn key(&self) -> &str {
        match self {
            DocumentNamespace::Key(k) | DocumentNamespace::Details { key: k, .. } => k,
        }
    }
}

/// One features document.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// The `version` field; `None` when absent (read as the latest, 1.6).
    pub version: Option<Version>,
    /// The `namespace` field; `None` when absent (the namespace is then the folder's).
    pub namespace: Option<DocumentNamespace>,
    /// Flags, in file order. Shared (`Arc`): copying a document to edit one flag, or taking
    /// its flags into a snapshot, copies pointers, not the flags.
    pub flags: Vec<Arc<Flag>>,
    /// Segments, in file order.
    pub segments: Vec<Segment>,
}

/// Compares flag by flag, without looking inside flags that are the same allocation.
impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.namespace == other.namespace
            && self.flags.len() == other.flags.len()
            && self
                .flags
                .iter()
                .zip(&other.flags)
                .all(|(a, b)| same_flag(a, b))
            && self.segments == other.segments
    }
}

/// Whether two shared flags are equal: the same allocation, or equal values.
pub(crate) fn same_flag(a: &Arc<Flag>, b: &Arc<Flag>) -> bool {
    Arc::ptr_eq(a, b) || a == b
}

impl Document {
    /// A new, empty document of the latest version for a namespace.
    pub fn new(namespace: &Namespace) -> Self {
        Document {
            version: Some(Version::LATEST),
            namespace: Some(DocumentNamespace::Details {
                key: namespace.key.clone(),
                name: namespace.name.clone(),
                description: namespace.description.clone(),
            }),
            flags: Vec::new(),
            segments: Vec::new(),
        }
    }

    /// The version its content is read with (the latest when it has none).
    pub fn effective_version(&self) -> Version {
        self.version.unwrap_or(Version::LATEST)
    }
}

/// How a features file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.yaml` or `.yml`: a YAML stream.
    Yaml,
    /// `.json`: one JSON document (or several, one after the other).
    Json,
}

impl Format {
    /// The format of a file by its name: `.yaml`/`.yml`, `.json`; `None` for others.
    pub fn from_path(path: &str) -> Option<Format> {
        if path.ends_with(".yaml") || path.ends_with(".yml") {
            Some(Format::Yaml)
        } else if path.ends_with(".json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

// ------------------------------------------------------------------ parsing

/// A parsed piece of a file.
#[derive(Debug, Clone)]
pub(crate) struct ParsedPiece {
    pub(crate) span: Range<usize>,
    pub(crate) first_line: usize,
    /// The document, with its number (from 1); `None` for a piece without content or one
    /// that failed to parse.
    pub(crate) doc: Option<(usize, Document)>,
}

/// Locates problems of one file: turns item positions into lines.
pub(crate) struct Locator<'a> {
    path: &'a str,
    text: &'a str,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(path: &'a str, text: &'a str) -> Self {
        Locator { path, text }
    }

    pub(crate) fn problem(&self, piece: &ParsedPiece, number: usize, p: DocProblem) -> Problem {
        let text = self.text.get(piece.span.clone()).unwrap_or("");
        let mut line = None;
        if p.at.is_some() || p.field.is_some() {
            let lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
            if let Some(layout) = Layout::scan(&lines) {
                line = match (p.at, p.field) {
                    (Some((list, index)), _) => layout.item_line(list.key(), index),
                    (None, Some(field)) => layout.entry(field).map(|e| e.lines.start),
                    _ => None,
                };
            }
        }
        Problem::at(
            self.path,
            Location {
                document: Some(number),
                item: p.item,
                line: line.map(|l| l + piece.first_line + 1),
            },
            p.message,
        )
    }
}

fn strip_position(message: String) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    }
}

/// Why a YAML document did not parse.
#[derive(Debug)]
struct YamlError {
    message: String,
    /// 1-based, within the document's text.
    line: Option<usize>,
}

fn parse_yaml_doc(text: &str) -> Result<(Document, Vec<DocProblem>), YamlError> {
    // Too deep, or aliases that expand too far: refused before serde_yaml expands them.
    yaml_guard::check(text).map_err(|message| YamlError {
        message,
        line: None,
    })?;
    let raw: raw::RawDocument = serde_yaml::from_str(text).map_err(|e| YamlError {
        line: e.location().map(|l| l.line()),
        message: strip_position(e.to_string()),
    })?;
    let mut c = Collector::default();
    let doc = convert_document(raw, &mut c);
    Ok((doc, c.problems))
}

/// Parses a file's text into pieces and problems (every problem, not only the first).
pub(crate) fn parse_text(
    path: &str,
    format: Format,
    text: &str,
) -> (Vec<ParsedPiece>, Vec<Problem>) {
    let mut problems = Vec::new();
    let locator = Locator::new(path, text);
    let mut pieces = Vec::new();
    let mut number = 0;
    match format {
        Format::Yaml => {
            for piece in split_stream(text) {
                let mut parsed = ParsedPiece {
                    span: piece.span.clone(),
                    first_line: piece.first_line,
                    doc: None,
                };
                if piece.has_content {
                    number += 1;
                    match parse_yaml_doc(&text[piece.span.clone()]) {
                        Ok((doc, doc_problems)) => {
                            for p in doc_problems {
                                problems.push(locator.problem(&parsed, number, p));
                            }
                            parsed.doc = Some((number, doc));
                        }
                        Err(e) => problems.push(Problem::at(
                            path,
                            Location {
                                document: Some(number),
                                item: None,
                                line: e.line.map(|l| l + piece.first_line),
                            },
                            e.message,
                        )),
                    }
                }
                pieces.push(parsed);
            }
        }
        Format::Json => {
            let mut stream =
                serde_json::Deserializer::from_str(text).into_iter::<raw::RawDocument>();
            let mut start = 0;
            loop {
                match stream.next() {
                    None => break,
                    Some(Ok(raw)) => {
                        number += 1;
                        let end = stream.byte_offset();
                        let first_line = text[..start].matches('\n').count();
                        let mut c = Collector::default();
                        let doc = convert_document(raw, &mut c);
                        let mut parsed = ParsedPiece {
                            span: start..end,
                            first_line,
                            doc: None,
                        };
                        for p in c.problems {
                            problems.push(locator.problem(&parsed, number, p));
                        }
                        parsed.doc = Some((number, doc));
                        pieces.push(parsed);
                        start = end;
                    }
                    Some(Err(e)) => {
                        problems.push(Problem::at(
                            path,
                            Location {
                                document: Some(number + 1),
                                item: None,
                                line: Some(e.line()).filter(|l| *l > 0),
                            },
                            strip_position(e.to_string()),
                        ));
                        break;
                    }
                }
            }
            if start < text.len() || pieces.is_empty() {
                pieces.push(ParsedPiece {
                    span: start..text.len(),
                    first_line: text[..start].matches('\n').count(),
                    doc: None,
                });
            }
        }
    }
    (pieces, problems)
}

/// Parses the bytes of a features file named `path` (its extension gives the format; YAML
/// when it has none). Returns every document, with the problems found in them.
pub(crate) fn parse_bytes(path: &str, bytes: &[u8]) -> (String, Vec<ParsedPiece>, Vec<Problem>) {
    let format = Format::from_path(path).unwrap_or(Format::Yaml);
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let (pieces, problems) = parse_text(path, format, text);
            (text.to_owned(), pieces, problems)
        }
        Err(e) => (
            String::new(),
            Vec::new(),
            vec![Problem::file(
                path,
                format!("the file is not valid UTF-8 ({e})"),
            )],
        ),
    }
}

/// Parses one document's text without collecting problems (to check what was written).
fn read_back(format: Format, text: &str) -> Option<Document> {
    match format {
        Format::Yaml => {
            let (doc, problems) = parse_yaml_doc(text).ok()?;
            problems.is_empty().then_some(doc)
        }
        Format::Json => {
            let raw: raw::RawDocument = serde_json::from_str(text).ok()?;
            let mut c = Collector::default();
            let doc = convert_document(raw, &mut c);
            c.problems.is_empty().then_some(doc)
        }
    }
}

// ------------------------------------------------------------------ files

#[derive(Debug, Clone)]
struct Piece {
    /// The original text (empty for documents added by an edit).
    text: String,
    doc: Option<DocState>,
}

/// A document as read and as edited. Both are shared (`Arc`): a file taken from the parse
/// cache costs no deep copy, and an edit copies only the document it changes.
#[derive(Debug, Clone)]
struct DocState {
    original: Option<Arc<Document>>,
    current: Arc<Document>,
}

impl DocState {
    fn unchanged(&self) -> bool {
        self.original
            .as_ref()
            .is_some_and(|o| Arc::ptr_eq(o, &self.current) || **o == *self.current)
    }
}

/// A parsed features file without its text: where each piece of the text is, and the
/// documents. Kept by snapshot builds for the writes (see `FileCache`): with the file's text,
/// read again from its blob, it is the parsed file, at the cost of a copy instead of a parse.
#[derive(Debug)]
pub(crate) struct Skeleton {
    pieces: Vec<(Range<usize>, Option<Arc<Document>>)>,
}

impl Skeleton {
    pub(crate) fn of(pieces: Vec<ParsedPiece>) -> Skeleton {
        Skeleton {
            pieces: pieces
                .into_iter()
                .map(|p| (p.span, p.doc.map(|(_, d)| Arc::new(d))))
                .collect(),
        }
    }

    /// The documents.
    pub(crate) fn documents(&self) -> impl Iterator<Item = &Arc<Document>> {
        self.pieces.iter().filter_map(|(_, d)| d.as_ref())
    }
}

/// A features file: its documents, and the text they came from, for minimal-diff writes.
#[derive(Debug, Clone)]
pub struct FeaturesFile {
    path: String,
    format: Format,
    pieces: Vec<Piece>,
}

impl FeaturesFile {
    /// Parses a file named `path` (`.yaml`, `.yml`, `.json`; YAML when the extension is
    /// another). Any problem in any document fails the parse, with all of them listed.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<FeaturesFile, Problems> {
        let (text, pieces, problems) = parse_bytes(path, bytes);
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        Ok(FeaturesFile::from_pieces(path, &text, pieces))
    }

    pub(crate) fn from_pieces(path: &str, text: &str, pieces: Vec<ParsedPiece>) -> FeaturesFile {
        FeaturesFile::from_skeleton(path, text, &Skeleton::of(pieces))
    }

    /// The file whose text is `text` and whose parse gave `skeleton` (nothing is parsed).
    pub(crate) fn from_skeleton(path: &str, text: &str, skeleton: &Skeleton) -> FeaturesFile {
        FeaturesFile {
            path: path.to_owned(),
            format: Format::from_path(path).unwrap_or(Format::Yaml),
            pieces: skeleton
                .pieces
                .iter()
                .map(|(span, doc)| Piece {
                    text: text.get(span.clone()).unwrap_or("").to_owned(),
                    doc: doc.as_ref().map(|d| DocState {
                        original: Some(d.clone()),
                        current: d.clone(),
                    }),
                })
                .collect(),
        }
    }

    /// A file with no documents yet.
    pub fn empty(path: &str) -> FeaturesFile {
        FeaturesFile {
            path: path.to_owned(),
            format: Format::from_path(path).unwrap_or(Format::Yaml),
            pieces: Vec::new(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The documents as they are now, shared.
    pub(crate) fn shared_documents(&self) -> impl Iterator<Item = &Arc<Document>> {
        self.pieces
            .iter()
            .filter_map(|p| p.doc.as_ref().map(|d| &d.current))
    }

    /// The documents, as they are now (after edits).
    pub fn documents(&self) -> impl Iterator<Item = &Document> {
        self.pieces
            .iter()
            .filter_map(|p| p.doc.as_ref().map(|d| &*d.current))
    }

    /// The index of the first piece whose document satisfies `pred`.
    fn find_doc(&self, pred: impl Fn(&Document) -> bool) -> Option<usize> {
        self.pieces
            .iter()
            .position(|p| p.doc.as_ref().is_some_and(|d| pred(&d.current)))
    }

    /// The document of piece `index`, copied first if it is shared (with the original or
    /// with a cached file).
    fn doc_mut(&mut self, index: usize) -> Option<&mut Document> {
        self.pieces[index]
            .doc
            .as_mut()
            .map(|d| Arc::make_mut(&mut d.current))
    }

    /// Whether an edit changed anything.
    pub fn is_changed(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| p.doc.as_ref().is_some_and(|d| !d.unchanged()))
    }

    /// The flag with this key, in any document.
    pub fn flag(&self, key: &str) -> Option<&Flag> {
        self.documents()
            .flat_map(|d| d.flags.iter())
            .find(|f| f.key == key)
            .map(|f| &**f)
    }

    /// The segment with this key, in any document.
    pub fn segment(&self, key: &str) -> Option<&Segment> {
        self.documents()
            .flat_map(|d| d.segments.iter())
            .find(|s| s.key == key)
    }

    /// Adds a document at the end of the file.
    pub fn push_document(&mut self, doc: Document) {
        self.pieces.push(Piece {
            text: String::new(),
            doc: Some(DocState {
                original: None,
                current: Arc::new(doc),
            }),
        });
    }

    /// The last document, added if the file has none.
    fn last_doc(&mut self) -> &mut Document {
        let fresh = || DocState {
            original: None,
            current: Arc::new(Document {
                version: Some(Version::LATEST),
                ..Document::default()
            }),
        };
        let index = match self.pieces.iter().rposition(|p| p.doc.is_some()) {
            Some(i) => i,
            None => {
                self.pieces.push(Piece {
                    text: String::new(),
                    doc: Some(fresh()),
                });
                self.pieces.len() - 1
            }
        };
        Arc::make_mut(&mut self.pieces[index].doc.get_or_insert_with(fresh).current)
    }

    /// Replaces the flag with the same key where it is, or appends it to the last document
    /// (adding one if the file has none). Raises the document's version if the flag needs a
    /// newer one. Returns the flag it replaced.
    pub fn put_flag(&mut self, flag: Flag) -> Option<Flag> {
        let need = emit::flag_min_version(&flag);
        if let Some(doc) = self
            .find_doc(|d| d.flags.iter().any(|f| f.key == flag.key))
            .and_then(|i| self.doc_mut(i))
            && let Some(i) = doc.flags.iter().position(|f| f.key == flag.key)
        {
            raise(doc, need);
            let old = std::mem::replace(&mut doc.flags[i], Arc::new(flag));
            return Some(Arc::unwrap_or_clone(old));
        }
        let doc = self.last_doc();
        raise(doc, need);
        doc.flags.push(Arc::new(flag));
        None
    }

    /// Removes a flag; returns it.
    pub fn remove_flag(&mut self, key: &str) -> Option<Flag> {
        let doc = self
            .find_doc(|d| d.flags.iter().any(|f| f.key == key))
            .and_then(|i| self.doc_mut(i))?;
        let i = doc.flags.iter().position(|f| f.key == key)?;
        Some(Arc::unwrap_or_clone(doc.flags.remove(i)))
    }

    /// Replaces the segment with the same key where it is, or appends it to the last
    /// document. Returns the segment it replaced.
    pub fn put_segment(&mut self, segment: Segment) -> Option<Segment> {
        if let Some(doc) = self
            .find_doc(|d| d.segments.iter().any(|s| s.key == segment.key))
            .and_then(|i| self.doc_mut(i))
            && let Some(slot) = doc.segments.iter_mut().find(|s| s.key == segment.key)
        {
            return Some(std::mem::replace(slot, segment));
        }
        self.last_doc().segments.push(segment);
        None
    }

    /// Removes a segment; returns it.
    pub fn remove_segment(&mut self, key: &str) -> Option<Segment> {
        let doc = self
            .find_doc(|d| d.segments.iter().any(|s| s.key == key))
            .and_then(|i| self.doc_mut(i))?;
        let i = doc.segments.iter().position(|s| s.key == key)?;
        Some(doc.segments.remove(i))
    }

    /// Sets the namespace's name and description: in every document that describes the
    /// namespace (`namespace: {key, name, description}`), or, when none does, in the first
    /// document (adding one if the file has none).
    pub fn set_namespace(&mut self, ns: &Namespace) {
        let details = DocumentNamespace::Details {
            key: ns.key.clone(),
            name: ns.name.clone(),
            description: ns.description.clone(),
        };
        let described: Vec<usize> = (0..self.pieces.len())
            .filter(|&i| {
                self.pieces[i].doc.as_ref().is_some_and(|d| {
                    matches!(d.current.namespace, Some(DocumentNamespace::Details { .. }))
                })
            })
            .collect();
        for &i in &described {
            if let Some(doc) = self.doc_mut(i) {
                doc.namespace = Some(details.clone());
            }
        }
        if described.is_empty() {
            match self.find_doc(|_| true) {
                None => self.push_document(Document::new(ns)),
                Some(i) => {
                    if let Some(doc) = self.doc_mut(i) {
                        doc.namespace = Some(details);
                    }
                }
            }
        }
    }

    /// The file's new content: untouched documents byte for byte, changed ones re-emitted
    /// with small diffs.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.render().0
    }

    /// The new content, and whether every re-emitted document was checked to read back as
    /// meant (when not, parsing the content reports why).
    pub(crate) fn render(&self) -> (Vec<u8>, bool) {
        let (texts, verified) = self.render_pieces();
        (texts.concat().into_bytes(), verified)
    }

    fn render_pieces(&self) -> (Vec<String>, bool) {
        let mut texts: Vec<String> = Vec::with_capacity(self.pieces.len());
        let mut verified = true;
        let mut has_content = false;
        for piece in &self.pieces {
            let text = match &piece.doc {
                None => piece.text.clone(),
                Some(state) if state.unchanged() => piece.text.clone(),
                Some(DocState {
                    original: Some(original),
                    current,
                }) => {
                    let (text, ok) = render_changed(self.format, &piece.text, original, current);
                    verified &= ok;
                    text
                }
                Some(DocState {
                    original: None,
                    current,
                }) => {
                    let body = match self.format {
                        Format::Yaml => canonical_yaml(current),
                        Format::Json => json_text(&canonical_value(current)) + "\n",
                    };
                    verified &= read_back(self.format, &body).as_ref() == Some(current);
                    // Blank lines outside documents may hold spaces and tabs that YAML
                    // tolerates only while no document follows (a tab-only line before
                    // `version:` does not parse): clear them, leaving comments and markers.
                    for (t, p) in texts.iter_mut().zip(&self.pieces) {
                        if p.doc.is_none() {
                            *t = without_blank_line_whitespace(t);
                        }
                    }
                    let ends_with_newline = texts
                        .iter()
                        .rev()
                        .find(|t| !t.is_empty())
                        .is_none_or(|t| t.ends_with('\n'));
                    let mut text = String::new();
                    if !ends_with_newline {
                        text.push('\n');
                    }
                    if has_content && self.format == Format::Yaml {
                        text.push_str("---\n");
                    }
                    text.push_str(&body);
                    text
                }
            };
            has_content |= !text.trim().is_empty();
            texts.push(text);
        }
        (texts, verified)
    }

    /// The file as it will be once written: the rendered text of each document, with the
    /// current documents as originals. `None` unless every document was checked to read back
    /// as meant (then it equals parsing the written bytes, without the cost).
    #[cfg(test)]
    pub(crate) fn settled(&self) -> Option<FeaturesFile> {
        self.render_settled().1
    }

    /// [`FeaturesFile::to_bytes`] and [`FeaturesFile::settled`] at once.
    pub(crate) fn render_settled(&self) -> (Vec<u8>, Option<FeaturesFile>) {
        let (texts, verified) = self.render_pieces();
        let bytes = texts.concat().into_bytes();
        if !verified {
            return (bytes, None);
        }
        let settled = FeaturesFile {
            path: self.path.clone(),
            format: self.format,
            pieces: self
                .pieces
                .iter()
                .zip(texts)
                .map(|(p, text)| Piece {
                    text,
                    doc: p.doc.as_ref().map(|d| DocState {
                        original: Some(d.current.clone()),
                        current: d.current.clone(),
                    }),
                })
                .collect(),
        };
        (bytes, Some(settled))
    }
}

fn raise(doc: &mut Document, need: Version) {
    if let Some(v) = doc.version
        && v < need
    {
        doc.version = Some(need);
    }
}

fn with_type_always(_: &Flag) -> bool {
    true
}

fn canonical_value(doc: &Document) -> Value {
    emit::document_value(doc, with_type_always)
}

fn canonical_yaml(doc: &Document) -> String {
    emit::document_text(&canonical_value(doc), Style::default())
}

fn json_text(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into())
}

/// Re-emits a changed document: line edits first (checked item by item), then the whole
/// document in its order, then the canonical form (each read back and compared with
/// `current`). The flag says whether what is returned was checked to read back as `current`.
fn render_changed(
    format: Format,
    text: &str,
    original: &Document,
    current: &Document,
) -> (String, bool) {
    if format == Format::Yaml
        && let Some(spliced) = splice(text, original, current)
    {
        return (spliced, true);
    }
    let like = serde_yaml::from_str::<Value>(text).ok();
    let check = |candidate: &str| read_back(format, candidate).as_ref() == Some(current);
    let has_type =
        |f: &Flag| like_item(like.as_ref(), List::Flags, &f.key).is_none_or(|v| has_key(v, "type"));
    let mut value = emit::document_value(current, has_type);
    if let Some(like) = &like {
        value = emit::reorder_like(&value, like);
    }
    let leading: String = text.chars().take_while(|c| c.is_whitespace()).collect();
    let whole = match format {
        Format::Yaml => {
            let prefix = if text.trim_start().starts_with("---") {
                "---\n"
            } else {
                ""
            };
            format!(
                "{leading}{prefix}{}",
                emit::document_text(&value, emit::detect_style(text))
            )
        }
        Format::Json => format!("{leading}{}", json_text(&value)),
    };
    if check(&whole) {
        return (whole, true);
    }
    let canonical = match format {
        Format::Yaml => canonical_yaml(current),
        Format::Json => json_text(&canonical_value(current)),
    };
    let ok = check(&canonical);
    (canonical, ok)
}

/// `text` with every whitespace-only line made empty (its newline kept).
fn without_blank_line_whitespace(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            if line.trim().is_empty() {
                if line.ends_with('\n') { "\n" } else { "" }
            } else {
                line
            }
        })
        .collect()
}

fn has_key(v: &Value, key: &str) -> bool {
    v.as_mapping().is_some_and(|m| m.contains_key(key))
}

/// The original value of the item with this key in a document value.
fn like_item<'a>(like: Option<&'a Value>, list: List, key: &str) -> Option<&'a Value> {
    like?
        .get(list.key())?
        .as_sequence()?
        .iter()
        .find(|item| item.get("key").and_then(Value::as_str) == Some(key))
}

fn lines_of(text: &str) -> Vec<Cow<'_, str>> {
    let mut lines: Vec<Cow<'_, str>> = text.split_inclusive('\n').map(Cow::Borrowed).collect();
    if let Some(last) = lines.last_mut()
        && !last.ends_with('\n')
    {
        last.to_mut().push('\n');
    }
    lines
}

fn text_lines<'a>(text: &str) -> Vec<Cow<'a, str>> {
    text.split_inclusive('\n')
        .map(|l| Cow::Owned(l.to_owned()))
        .collect()
}

/// The value of one item, from its own lines (`flags:` put in front, so that any indentation
/// parses).
fn item_value(list: List, item_text: &str) -> Option<Value> {
    let doc: Value = serde_yaml::from_str(&format!("{}:\n{item_text}", list.key())).ok()?;
    doc.get(list.key())?.as_sequence()?.first().cloned()
}

/// Reads one item back from its lines, as a document of `version` would.
fn read_item(list: List, version: Version, item_text: &str) -> Option<Document> {
    let text = format!("version: \"{version}\"\n{}:\n{item_text}", list.key());
    let (doc, problems) = parse_yaml_doc(&text).ok()?;
    problems.is_empty().then_some(doc)
}

fn same_item(list: List, read: &Document, current: &Document, index: usize) -> bool {
    match list {
        List::Flags => read.flags.len() == 1 && current.flags.get(index) == read.flags.first(),
        List::Segments => {
            read.segments.len() == 1 && current.segments.get(index) == read.segments.first()
        }
    }
}

fn list_len(list: List, d: &Document) -> usize {
    match list {
        List::Flags => d.flags.len(),
        List::Segments => d.segments.len(),
    }
}

fn list_keys(list: List, d: &Document) -> Vec<&str> {
    match list {
        List::Flags => d.flags.iter().map(|f| f.key.as_str()).collect(),
        List::Segments => d.segments.iter().map(|s| s.key.as_str()).collect(),
    }
}

fn item_differs(list: List, original: &Document, i: usize, current: &Document, j: usize) -> bool {
    match list {
        List::Flags => match (original.flags.get(i), current.flags.get(j)) {
            (Some(a), Some(b)) => !same_flag(a, b),
            (a, b) => a.is_some() != b.is_some(),
        },
        List::Segments => original.segments.get(i) != current.segments.get(j),
    }
}

/// An item's new value, in the key order of its old lines (if any).
fn new_item_value(
    list: List,
    current: &Document,
    key: &str,
    old: Option<&Value>,
    version: Version,
) -> Option<Value> {
    let v = match list {
        List::Flags => {
            let f = current.flags.iter().find(|f| f.key == key)?;
            emit::flag_value(f, version, old.is_none_or(|v| has_key(v, "type")))
        }
        List::Segments => {
            let s = current.segments.iter().find(|s| s.key == key)?;
            emit::segment_value(s, version)
        }
    };
    Some(match old {
        Some(old) => emit::reorder_like(&v, old),
        None => v,
    })
}

/// Edits the lines of a document in place: the `version` line, the `namespace` entry, and the
/// lines of the items that changed, were added or removed. Every edited piece is read back
/// and compared, and the layout of the result is checked (each list has its items, at their
/// indentation), so the untouched lines, which are kept as they were, read as before. `None`
/// when the layout does not allow line edits or a check fails.
fn splice(text: &str, original: &Document, current: &Document) -> Option<String> {
    let style = emit::detect_style(text);
    let version = current.effective_version();
    let mut lines = lines_of(text);

    if current.version != original.version {
        let layout = Layout::scan(&lines)?;
        let new = match current.version {
            Some(v) => text_lines(&format!("version: \"{v}\"\n")),
            None => Vec::new(),
        };
        match layout.entry("version") {
            Some(e) => {
                lines.splice(e.lines.clone(), new);
            }
            None => {
                let at = layout
                    .entries
                    .first()
                    .map_or(layout.body_start, |e| e.lines.start);
                lines.splice(at..at, new);
            }
        }
    }

    if current.namespace != original.namespace {
        let layout = Layout::scan(&lines)?;
        let old_entry = layout.entry("namespace");
        let new = match &current.namespace {
            Some(ns) => {
                let mut v = emit::namespace_value(ns);
                let old = old_entry.and_then(|e| {
                    serde_yaml::from_str::<Value>(&lines[e.lines.clone()].concat()).ok()
                });
                if let Some(old) = old.as_ref().and_then(|o| o.get("namespace")) {
                    v = emit::reorder_like(&v, old);
                }
                let entry = emit::entry_text("namespace", &v, style);
                let read = parse_yaml_doc(&entry).ok()?;
                if !read.1.is_empty() || read.0.namespace.as_ref() != Some(ns) {
                    return None;
                }
                text_lines(&entry)
            }
            None => Vec::new(),
        };
        match old_entry {
            Some(e) => {
                lines.splice(e.lines.clone(), new);
            }
            None => {
                let at = layout
                    .entry("version")
                    .map(|e| e.lines.end)
                    .or_else(|| layout.entries.first().map(|e| e.lines.start))
                    .unwrap_or(layout.body_start);
                lines.splice(at..at, new);
            }
        }
    }

    let mut checks = Vec::new();
    for list in [List::Flags, List::Segments] {
        let old_keys = list_keys(list, original);
        let new_keys = list_keys(list, current);
        // The kept items must stay in their order and new ones come last; otherwise the
        // whole document is re-emitted.
        let (kept, touched, new_set) = if new_keys.starts_with(&old_keys) {
            // Items edited in place or added at the end (most writes): no removed item, and
            // each item is where it was.
            let touched: Vec<(usize, &str)> = old_keys
                .iter()
                .copied()
                .enumerate()
                .filter(|(i, _)| item_differs(list, original, *i, current, *i))
                .collect();
            (old_keys.len(), touched, None)
        } else {
            let new_set: HashSet<&str> = new_keys.iter().copied().collect();
            let new_index: HashMap<&str, usize> =
                new_keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
            let kept: Vec<&str> = old_keys
                .iter()
                .copied()
                .filter(|k| new_set.contains(k))
                .collect();
            if new_keys.len() < kept.len() || new_keys[..kept.len()] != kept[..] {
                return None;
            }
            let touched: Vec<(usize, &str)> = old_keys
                .iter()
                .copied()
                .enumerate()
                .filter(|(i, k)| match new_index.get(k) {
                    None => true,
                    Some(j) => item_differs(list, original, *i, current, *j),
                })
                .collect();
            (kept.len(), touched, Some(new_set))
        };
        let appended = &new_keys[kept..];
        let kept_in_new = |key: &str| new_set.as_ref().is_none_or(|s| s.contains(key));
        if touched.is_empty() && appended.is_empty() {
            continue;
        }
        // From the last item to the first, so that earlier positions stay valid.
        for &(i, key) in touched.iter().rev() {
            let layout = Layout::scan(&lines)?;
            let entry = layout.entry(list.key())?;
            let items = layout.items(entry)?;
            let range = items.items.get(i)?.clone();
            if kept_in_new(key) {
                let old_text = lines[range.clone()].concat();
                let old = item_value(list, &old_text);
                let v = new_item_value(list, current, key, old.as_ref(), version)?;
                let local = emit::detect_style_or(&old_text, Some(style));
                lines.splice(range, text_lines(&emit::item_text(&v, items.indent, local)));
            } else if items.items.len() == 1 {
                lines.splice(entry.lines.clone(), Vec::new());
            } else {
                lines.splice(range, Vec::new());
            }
        }
        if !appended.is_empty() {
            let layout = Layout::scan(&lines)?;
            let existing = layout
                .entry(list.key())
                .map(|e| (e.lines.clone(), layout.items(e)));
            let values = appended
                .iter()
                .map(|k| new_item_value(list, current, k, None, version))
                .collect::<Option<Vec<_>>>()?;
            match existing {
                Some((_, Some(items))) if !items.items.is_empty() => {
                    let last = items.items.last()?.clone();
                    let at = last.end;
                    let local = emit::detect_style_or(&lines[last].concat(), Some(style));
                    let mut new = String::new();
                    for v in &values {
                        new.push_str(&emit::item_text(v, items.indent, local));
                    }
                    lines.splice(at..at, text_lines(&new));
                }
                Some((range, _)) => {
                    let entry = emit::entry_text(list.key(), &Value::Sequence(values), style);
                    lines.splice(range, text_lines(&entry));
                }
                None => {
                    let at = match list {
                        List::Flags => layout.entry("segments").map(|e| e.lines.start),
                        List::Segments => None,
                    }
                    .unwrap_or_else(|| layout.end());
                    let entry = emit::entry_text(list.key(), &Value::Sequence(values), style);
                    lines.splice(at..at, text_lines(&entry));
                }
            }
        }
        let written: Vec<usize> = new_keys
            .iter()
            .enumerate()
            .filter(|(i, key)| *i >= kept || touched.iter().any(|(_, k)| k == *key))
            .map(|(i, _)| i)
            .collect();
        checks.push((list, written));
    }
    // Check the result: each edited list has exactly its items, every written item reads
    // back as meant, and the top-level entries are one each of what a document may hold.
    let layout = Layout::scan(&lines)?;
    for (list, written) in checks {
        let len = list_len(list, current);
        match layout.entry(list.key()) {
            None if len == 0 => {}
            None => return None,
            Some(entry) => {
                let items = layout.items(entry)?;
                if items.items.len() != len {
                    return None;
                }
                for i in written {
                    let item_text = lines[items.items.get(i)?.clone()].concat();
                    let read = read_item(list, version, &item_text)?;
                    if !same_item(list, &read, current, i) {
                        return None;
                    }
                }
            }
        }
    }
    let mut keys: Vec<&str> = layout.entries.iter().map(|e| e.key.as_str()).collect();
    let count = keys.len();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() != count
        || !keys
            .iter()
            .all(|k| matches!(*k, "version" | "namespace" | "flags" | "segments"))
    {
        return None;
    }
    if let Some(v) = current.version {
        let entry = layout.entry("version")?;
        let (read, _) = parse_yaml_doc(&lines[entry.lines.clone()].concat()).ok()?;
        if read.version != Some(v) {
            return None;
        }
    }
    Some(lines.concat())
}

#[cfg(test)]
mod tests;

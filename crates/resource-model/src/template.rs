//! Commit-message templates: a subset of Go's `text/template`, enough for Flipt's default
//! template and the templates people write in `flipt.yaml`.
//!
//! Supported:
//! - text and actions `{{ ... }}`, with `{{-` / `-}}` trimming the white space around them,
//!   and comments `{{/* ... */}}`;
//! - `{{if}}`, `{{else if}}`, `{{else}}`, `{{range}}` (with `{{else}}`, and `$v :=` or
//!   `$i, $v :=`), `{{with}}` (with `{{else}}` / `{{else with}}`), `{{end}}`;
//! - variables (`$`, `$name := ...`, `$name = ...`), fields (`.Changes`,
//!   `$change.Resource.Key`, `(index .Changes 0).Verb`), pipelines (`.Key | printf "%q"`),
//!   string, number and boolean literals, `nil`;
//! - the functions `and`, `or`, `not`, `len`, `index`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`,
//!   `print`, `printf`, `println` (`printf` knows `%s %v %d %q %t %f %x %%`).
//!
//! Not supported (a parse error names them): `define`, `template`, `block`, `break`,
//! `continue`, and other functions. Rendering never panics: a missing field, a bad index or a
//! call with wrong arguments is an error, as in Go.

use std::fmt::Write as _;

/// A value handed to a template.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateValue {
    /// Go's `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A slice.
    List(Vec<TemplateValue>),
    /// A struct: named fields, and the text it prints as when it has a `String()` method.
    Object {
        /// The fields, by name.
        fields: Vec<(String, TemplateValue)>,
        /// What `{{ . }}` prints (Go's `String()`), if anything.
        display: Option<String>,
    },
}

impl TemplateValue {
    /// A struct without a `String()` method.
    pub fn object<const N: usize>(fields: [(&str, TemplateValue); N]) -> Self {
        TemplateValue::Object {
            fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            display: None,
        }
    }

    /// A string.
    pub fn str(s: impl Into<String>) -> Self {
        TemplateValue::Str(s.into())
    }

    fn truthy(&self) -> bool {
        match self {
            TemplateValue::Nil => false,
            TemplateValue::Bool(b) => *b,
            TemplateValue::Int(i) => *i != 0,
            TemplateValue::Float(f) => *f != 0.0,
            TemplateValue::Str(s) => !s.is_empty(),
            TemplateValue::List(l) => !l.is_empty(),
            TemplateValue::Object { .. } => true,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            TemplateValue::Nil => "nil",
            TemplateValue::Bool(_) => "bool",
            TemplateValue::Int(_) => "int",
            TemplateValue::Float(_) => "float64",
            TemplateValue::Str(_) => "string",
            TemplateValue::List(_) => "slice",
            TemplateValue::Object { .. } => "struct",
        }
    }

    fn print(&self, out: &mut String) {
        match self {
            TemplateValue::Nil => out.push_str("<nil>"),
            TemplateValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            TemplateValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            TemplateValue::Float(f) => {
                let _ = write!(out, "{f}");
            }
            TemplateValue::Str(s) => out.push_str(s),
            TemplateValue::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.print(out);
                }
                out.push(']');
            }
            TemplateValue::Object {
                display: Some(d), ..
            } => out.push_str(d),
            TemplateValue::Object {
                fields,
                display: None,
            } => {
                out.push('{');
                for (i, (_, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.print(out);
                }
                out.push('}');
            }
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        self.print(&mut s);
        s
    }
}

/// An error of parsing or rendering a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

// ------------------------------------------------------------------ lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(String),
    Var(String),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    Pipe,
    Comma,
    Declare,
    Assign,
}

fn lex_action(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let ident_char = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            '.' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && ident_char(chars[j]) {
                    j += 1;
                }
                if j == start {
                    out.push(Tok::Dot);
                } else {
                    out.push(Tok::Field(chars[start..j].iter().collect()));
                }
                i = j;
            }
            '$' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && ident_char(chars[j]) {
                    j += 1;
                }
                out.push(Tok::Var(chars[start..j].iter().collect()));
                i = j;
            }
            '"' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return err("unterminated quoted string"),
                        Some('"') => break,
                        Some('\\') => {
                            j += 1;
                            match chars.get(j) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some('r') => s.push('\r'),
                                Some('\\') => s.push('\\'),
                                Some('"') => s.push('"'),
                                Some('\'') => s.push('\''),
                                Some(other) => {
                                    return err(format!("unknown escape sequence \\{other}"));
                                }
                                None => return err("unterminated quoted string"),
                            }
                        }
                        Some(ch) => s.push(*ch),
                    }
                    j += 1;
                }
                out.push(Tok::Str(s));
                i = j + 1;
            }
            '`' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != '`' {
                    j += 1;
                }
                if j >= chars.len() {
                    return err("unterminated raw string");
                }
                out.push(Tok::Str(chars[start..j].iter().collect()));
                i = j + 1;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                    j += 1;
                }
                let text: String = chars[start..j].iter().collect();
                if text.contains('.') {
                    match text.parse::<f64>() {
                        Ok(f) => out.push(Tok::Float(f)),
                        Err(_) => return err(format!("bad number syntax: {text}")),
                    }
                } else {
                    match text.parse::<i64>() {
                        Ok(n) => out.push(Tok::Int(n)),
                        Err(_) => return err(format!("bad number syntax: {text}")),
                    }
                }
                i = j;
            }
            c if ident_char(c) => {
                let start = i;
                let mut j = i;
                while j < chars.len() && ident_char(chars[j]) {
                    j += 1;
                }
                out.push(Tok::Ident(chars[start..j].iter().collect()));
                i = j;
            }
            other => return err(format!("unexpected {other:?} in action")),
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ parsing

#[derive(Debug, Clone)]
enum Arg {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Lit(TemplateValue),
    Func(String),
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Pipeline {
    decl: Vec<String>,
    /// `=` rather than `:=`.
    assign: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "eq", "ne", "lt", "le", "gt", "ge", "print", "printf",
    "println",
];

struct TokStream {
    toks: Vec<Tok>,
    pos: usize,
    /// Open parentheses, bounded so that no template exhausts the stack.
    depth: usize,
}

impl TokStream {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
}

fn parse_pipeline(ts: &mut TokStream, allow_decl: bool) -> Result<Pipeline, TemplateError> {
    let mut p = Pipeline {
        decl: Vec::new(),
        assign: false,
        cmds: Vec::new(),
    };
    if allow_decl {
        // `$x :=`, `$x =`, `$i, $v :=`
        let save = ts.pos;
        let mut vars = Vec::new();
        while let Some(Tok::Var(v)) = ts.peek().cloned() {
            ts.next();
            vars.push(v);
            if ts.peek() == Some(&Tok::Comma) {
                ts.next();
                continue;
            }
            break;
        }
        match ts.peek() {
            Some(Tok::Declare) if !vars.is_empty() && vars.len() <= 2 => {
                ts.next();
                p.decl = vars;
            }
            Some(Tok::Assign) if vars.len() == 1 => {
                ts.next();
                p.decl = vars;
                p.assign = true;
            }
            _ => ts.pos = save,
        }
    }
    let mut cmd = Vec::new();
    loop {
        match ts.next() {
            None | Some(Tok::RParen) => {
                if matches!(ts.toks.get(ts.pos.saturating_sub(1)), Some(Tok::RParen)) {
                    ts.pos -= 1;
                }
                break;
            }
            Some(Tok::Pipe) => {
                if cmd.is_empty() {
                    return err("missing command before |");
                }
                p.cmds.push(std::mem::take(&mut cmd));
            }
            Some(t) => cmd.push(parse_operand(t, ts)?),
        }
    }
    if cmd.is_empty() {
        return err(if p.cmds.is_empty() {
            "missing value for command"
        } else {
            "missing command after |"
        });
    }
    p.cmds.push(cmd);
    Ok(p)
}

fn fields_after(ts: &mut TokStream) -> Vec<String> {
    let mut fields = Vec::new();
    while let Some(Tok::Field(f)) = ts.peek().cloned() {
        ts.next();
        fields.push(f);
    }
    fields
}

fn parse_operand(t: Tok, ts: &mut TokStream) -> Result<Arg, TemplateError> {
    Ok(match t {
        Tok::Dot => Arg::Dot(Vec::new()),
        Tok::Field(f) => {
            let mut fields = vec![f];
            fields.extend(fields_after(ts));
            Arg::Dot(fields)
        }
        Tok::Var(v) => Arg::Var(v, fields_after(ts)),
        Tok::Str(s) => Arg::Lit(TemplateValue::Str(s)),
        Tok::Int(i) => Arg::Lit(TemplateValue::Int(i)),
        Tok::Float(f) => Arg::Lit(TemplateValue::Float(f)),
        Tok::Ident(id) => match id.as_str() {
            "true" => Arg::Lit(TemplateValue::Bool(true)),
            "false" => Arg::Lit(TemplateValue::Bool(false)),
            "nil" => Arg::Lit(TemplateValue::Nil),
            f if FUNCS.contains(&f) => Arg::Func(id),
            other => return err(format!("function \"{other}\" not defined")),
        },
        Tok::LParen => {
            ts.depth += 1;
            if ts.depth > 50 {
                return err("too many nested parentheses");
            }
            let inner = parse_pipeline(ts, false)?;
            ts.depth -= 1;
            if ts.next() != Some(Tok::RParen) {
                return err("unclosed left paren");
            }
            Arg::Sub(Box::new(inner), fields_after(ts))
        }
        other => return err(format!("unexpected {other:?} in operand")),
    })
}

/// One piece of template text: literal text or an action's source.
enum Piece {
    Text(String),
    Action(String),
}

fn split(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = rest[..open].to_owned();
        if trim_next {
            text = text.trim_start().to_owned();
        }
        let after = &rest[open + 2..];
        let (trim_left, body_start) = match after.strip_prefix('-') {
            Some(b) if b.starts_with([' ', '\t', '\n', '\r']) => (true, b),
            _ => (false, after),
        };
        if trim_left {
            text = text.trim_end().to_owned();
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        // Find the closing `}}` outside quoted strings.
        let bytes = body_start.as_bytes();
        let mut i = 0;
        let mut quote: Option<u8> = None;
        let close = loop {
            if i + 1 >= bytes.len() {
                return err("unclosed action");
            }
            let b = bytes[i];
            match quote {
                Some(q) => {
                    if b == b'\\' && q == b'"' {
                        i += 1;
                    } else if b == q {
                        quote = None;
                    }
                }
                None => {
                    if b == b'"' || b == b'`' {
                        quote = Some(b);
                    } else if b == b'}' && bytes[i + 1] == b'}' {
                        break i;
                    }
                }
            }
            i += 1;
        };
        let mut body = &body_start[..close];
        trim_next = false;
        if let Some(b) = body.strip_suffix('-')
            && b.ends_with([' ', '\t', '\n', '\r'])
        {
            body = b;
            trim_next = true;
        }
        let trimmed = body.trim();
        if !(trimmed.starts_with("/*") && trimmed.ends_with("*/")) {
            pieces.push(Piece::Action(body.to_owned()));
        }
        rest = &body_start[close + 2..];
    }
    let mut text = rest.to_owned();
    if trim_next {
        text = text.trim_start().to_owned();
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// How a list of nodes ended.
enum Stop {
    Eof,
    End,
    Else(Option<(String, Vec<Tok>)>),
}

fn parse_nodes(
    pieces: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
    depth: usize,
) -> Result<(Vec<Node>, Stop), TemplateError> {
    if depth > 100 {
        return err("template nested too deeply");
    }
    let mut nodes = Vec::new();
    while let Some(piece) = pieces.next() {
        let src = match piece {
            Piece::Text(t) => {
                nodes.push(Node::Text(t));
                continue;
            }
            Piece::Action(src) => src,
        };
        let toks = lex_action(&src)?;
        let mut ts = TokStream {
            toks,
            pos: 0,
            depth: 0,
        };
        let keyword = match ts.peek() {
            Some(Tok::Ident(k))
                if matches!(
                    k.as_str(),
                    "if" | "range"
                        | "with"
                        | "else"
                        | "end"
                        | "define"
                        | "template"
                        | "block"
                        | "break"
                        | "continue"
                ) =>
            {
                let k = k.clone();
                ts.next();
                Some(k)
            }
            _ => None,
        };
        match keyword.as_deref() {
            None => {
                if ts.peek().is_none() {
                    return err("missing value for command");
                }
                let pipe = parse_pipeline(&mut ts, true)?;
                if ts.peek().is_some() {
                    return err("unexpected \")\" in command");
                }
                nodes.push(Node::Action(pipe));
            }
            Some("end") => return Ok((nodes, Stop::End)),
            Some("else") => {
                return Ok((
                    nodes,
                    Stop::Else(match ts.next() {
                        None => None,
                        Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                            Some((k, ts.toks[ts.pos..].to_vec()))
                        }
                        Some(_) => return err("unexpected token after else"),
                    }),
                ));
            }
            Some(k @ ("if" | "with" | "range")) => {
                let node = parse_block(k, &mut ts, pieces, depth)?;
                nodes.push(node);
            }
            Some(other) => return err(format!("{{{{{other}}}}} is not supported")),
        }
    }
    Ok((nodes, Stop::Eof))
}

fn parse_block(
    keyword: &str,
    ts: &mut TokStream,
    pieces: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
    depth: usize,
) -> Result<Node, TemplateError> {
    if ts.peek().is_none() {
        return err(format!("missing value for {keyword}"));
    }
    let pipe = parse_pipeline(ts, true)?;
    if ts.peek().is_some() {
        return err(format!("unexpected \")\" in {keyword}"));
    }
    let (body, end) = parse_nodes(pieces, depth + 1)?;
    let else_nodes = match end {
        Stop::Eof => {
            return err(format!(
                "unexpected EOF: {{{{{keyword}}}}} has no {{{{end}}}}"
            ));
        }
        Stop::End => Vec::new(),
        Stop::Else(None) => {
            let (e, end) = parse_nodes(pieces, depth + 1)?;
            if !matches!(end, Stop::End) {
                return err(format!(
                    "expected {{{{end}}}} after {{{{else}}}} of {{{{{keyword}}}}}"
                ));
            }
            e
        }
        Stop::Else(Some((k, toks))) => {
            let mut inner = TokStream {
                toks,
                pos: 0,
                depth: 0,
            };
            // `{{else if ...}}` ends the chain with the inner block's own `{{end}}`.
            vec![parse_block(&k, &mut inner, pieces, depth + 1)?]
        }
    };
    Ok(match keyword {
        "if" => Node::If(pipe, body, else_nodes),
        "with" => Node::With(pipe, body, else_nodes),
        _ => Node::Range(pipe, body, else_nodes),
    })
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    source: String,
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Longest text a template may render, so a template cannot exhaust memory.
const MAX_OUTPUT: usize = 1 << 20;

impl Template {
    /// Parses a template.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut pieces = split(source)?.into_iter().peekable();
        let (nodes, end) = parse_nodes(&mut pieces, 0)?;
        match end {
            Stop::Eof => Ok(Template {
                nodes,
                source: source.to_owned(),
            }),
            Stop::End => err("unexpected {{end}}"),
            Stop::Else(_) => err("unexpected {{else}}"),
        }
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders with `data` as `.` and `$`.
    pub fn render(&self, data: &TemplateValue) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut vars = vec![("".to_owned(), data.clone())];
        exec(&self.nodes, data, &mut vars, &mut out)?;
        Ok(out)
    }
}

// ------------------------------------------------------------------ execution

fn field(v: &TemplateValue, name: &str) -> Result<TemplateValue, TemplateError> {
    match v {
        TemplateValue::Object { fields, .. } => match fields.iter().find(|(k, _)| k == name) {
            Some((_, v)) => Ok(v.clone()),
            None => err(format!("can't evaluate field {name} in type {}", v.kind())),
        },
        TemplateValue::Nil => err(format!("nil pointer evaluating .{name}")),
        other => err(format!(
            "can't evaluate field {name} in type {}",
            other.kind()
        )),
    }
}

fn fields(mut v: TemplateValue, names: &[String]) -> Result<TemplateValue, TemplateError> {
    for n in names {
        v = field(&v, n)?;
    }
    Ok(v)
}

fn lookup_var(
    vars: &[(String, TemplateValue)],
    name: &str,
) -> Result<TemplateValue, TemplateError> {
    vars.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| TemplateError(format!("undefined variable: ${name}")))
}

fn eval_arg(
    arg: &Arg,
    dot: &TemplateValue,
    vars: &mut Vec<(String, TemplateValue)>,
) -> Result<TemplateValue, TemplateError> {
    match arg {
        Arg::Dot(f) => fields(dot.clone(), f),
        Arg::Var(name, f) => fields(lookup_var(vars, name)?, f),
        Arg::Lit(v) => Ok(v.clone()),
        Arg::Func(name) => call(name, Vec::new()),
        Arg::Sub(p, f) => fields(eval_pipeline(p, dot, vars)?, f),
    }
}

fn eval_pipeline(
    p: &Pipeline,
    dot: &TemplateValue,
    vars: &mut Vec<(String, TemplateValue)>,
) -> Result<TemplateValue, TemplateError> {
    let mut piped: Option<TemplateValue> = None;
    for cmd in &p.cmds {
        let value = match cmd.first() {
            Some(Arg::Func(name)) => {
                let mut args = Vec::new();
                for a in &cmd[1..] {
                    args.push(eval_arg(a, dot, vars)?);
                }
                if let Some(v) = piped.take() {
                    args.push(v);
                }
                call(name, args)?
            }
            Some(first) => {
                if cmd.len() > 1 || piped.is_some() {
                    return err("can't give argument to non-function");
                }
                eval_arg(first, dot, vars)?
            }
            None => return err("empty command"),
        };
        piped = Some(value);
    }
    let value = piped.unwrap_or(TemplateValue::Nil);
    if p.assign {
        if let Some(name) = p.decl.first() {
            match vars.iter_mut().rev().find(|(k, _)| k == name) {
                Some(slot) => slot.1 = value.clone(),
                None => return err(format!("undefined variable: ${name}")),
            }
        }
    } else if p.decl.len() == 1 {
        vars.push((p.decl[0].clone(), value.clone()));
    }
    Ok(value)
}

fn exec(
    nodes: &[Node],
    dot: &TemplateValue,
    vars: &mut Vec<(String, TemplateValue)>,
    out: &mut String,
) -> Result<(), TemplateError> {
    let mark = vars.len();
    for node in nodes {
        if out.len() > MAX_OUTPUT {
            return err("the template's output is too long");
        }
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipeline(p, dot, vars)?;
                if p.decl.is_empty() {
                    v.print(out);
                }
            }
            Node::If(p, body, else_) => {
                let v = eval_pipeline(
                    &Pipeline {
                        decl: Vec::new(),
                        ..p.clone()
                    },
                    dot,
                    vars,
                )?;
                exec(if v.truthy() { body } else { else_ }, dot, vars, out)?;
            }
            Node::With(p, body, else_) => {
                let v = eval_pipeline(
                    &Pipeline {
                        decl: Vec::new(),
                        ..p.clone()
                    },
                    dot,
                    vars,
                )?;
                if v.truthy() {
                    let m = vars.len();
                    if let Some(name) = p.decl.first() {
                        vars.push((name.clone(), v.clone()));
                    }
                    exec(body, &v, vars, out)?;
                    vars.truncate(m);
                } else {
                    exec(else_, dot, vars, out)?;
                }
            }
            Node::Range(p, body, else_) => {
                let v = eval_pipeline(
                    &Pipeline {
                        decl: Vec::new(),
                        ..p.clone()
                    },
                    dot,
                    vars,
                )?;
                let items: Vec<(TemplateValue, TemplateValue)> = match v {
                    TemplateValue::List(items) => items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (TemplateValue::Int(i as i64), v))
                        .collect(),
                    TemplateValue::Object { fields, .. } => {
                        let mut fields = fields;
                        fields.sort_by(|a, b| a.0.cmp(&b.0));
                        fields
                            .into_iter()
                            .map(|(k, v)| (TemplateValue::Str(k), v))
                            .collect()
                    }
                    TemplateValue::Nil => Vec::new(),
                    TemplateValue::Int(n) => (0..n.max(0))
                        .map(|i| (TemplateValue::Int(i), TemplateValue::Int(i)))
                        .collect(),
                    other => return err(format!("range can't iterate over {}", other.text())),
                };
                if items.is_empty() {
                    exec(else_, dot, vars, out)?;
                    continue;
                }
                for (k, item) in items {
                    let m = vars.len();
                    match p.decl.as_slice() {
                        [v] => vars.push((v.clone(), item.clone())),
                        [i, v] => {
                            vars.push((i.clone(), k));
                            vars.push((v.clone(), item.clone()));
                        }
                        _ => {}
                    }
                    exec(body, &item, vars, out)?;
                    vars.truncate(m);
                    if out.len() > MAX_OUTPUT {
                        return err("the template's output is too long");
                    }
                }
            }
        }
    }
    vars.truncate(mark);
    Ok(())
}

fn as_f64(v: &TemplateValue) -> Option<f64> {
    match v {
        TemplateValue::Int(i) => Some(*i as f64),
        TemplateValue::Float(f) => Some(*f),
        _ => None,
    }
}

fn equal(a: &TemplateValue, b: &TemplateValue) -> Result<bool, TemplateError> {
    Ok(match (a, b) {
        (TemplateValue::Str(x), TemplateValue::Str(y)) => x == y,
        (TemplateValue::Bool(x), TemplateValue::Bool(y)) => x == y,
        (TemplateValue::Nil, TemplateValue::Nil) => true,
        (x, y) if as_f64(x).is_some() && as_f64(y).is_some() => as_f64(x) == as_f64(y),
        (x, y) if x.kind() == y.kind() => x == y,
        (x, y) => {
            return err(format!(
                "incompatible types for comparison: {} and {}",
                x.kind(),
                y.kind()
            ));
        }
    })
}

fn compare(a: &TemplateValue, b: &TemplateValue) -> Result<std::cmp::Ordering, TemplateError> {
    match (a, b) {
        (TemplateValue::Str(x), TemplateValue::Str(y)) => Ok(x.cmp(y)),
        (x, y) => match (as_f64(x), as_f64(y)) {
            (Some(x), Some(y)) => x
                .partial_cmp(&y)
                .ok_or_else(|| TemplateError("incomparable values".into())),
            _ => err(format!(
                "incompatible types for comparison: {} and {}",
                x.kind(),
                y.kind()
            )),
        },
    }
}

fn call(name: &str, args: Vec<TemplateValue>) -> Result<TemplateValue, TemplateError> {
    let want = |n: usize| -> Result<(), TemplateError> {
        if args.len() == n {
            Ok(())
        } else {
            err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ))
        }
    };
    Ok(match name {
        "not" => {
            want(1)?;
            TemplateValue::Bool(!args[0].truthy())
        }
        "and" | "or" => {
            if args.is_empty() {
                return err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let stop = |v: &TemplateValue| {
                if name == "and" {
                    !v.truthy()
                } else {
                    v.truthy()
                }
            };
            let mut last = TemplateValue::Nil;
            for a in args {
                if stop(&a) {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "len" => {
            want(1)?;
            match &args[0] {
                TemplateValue::Str(s) => TemplateValue::Int(s.len() as i64),
                TemplateValue::List(l) => TemplateValue::Int(l.len() as i64),
                TemplateValue::Object { fields, .. } => TemplateValue::Int(fields.len() as i64),
                other => return err(format!("len of type {}", other.kind())),
            }
        }
        "index" => {
            let mut it = args.into_iter();
            let mut v = it.next().ok_or_else(|| {
                TemplateError("wrong number of args for index: want at least 1 got 0".into())
            })?;
            for i in it {
                v = match (&v, &i) {
                    (TemplateValue::List(l), TemplateValue::Int(n)) => {
                        match usize::try_from(*n).ok().and_then(|n| l.get(n)) {
                            Some(x) => x.clone(),
                            None => {
                                return err(format!(
                                    "error calling index: index out of range: {n}"
                                ));
                            }
                        }
                    }
                    (TemplateValue::Object { fields, .. }, TemplateValue::Str(k)) => fields
                        .iter()
                        .find(|(f, _)| f == k)
                        .map(|(_, x)| x.clone())
                        .unwrap_or(TemplateValue::Nil),
                    (a, b) => {
                        return err(format!(
                            "can't index item of type {} with {}",
                            a.kind(),
                            b.kind()
                        ));
                    }
                };
            }
            v
        }
        "eq" => {
            if args.len() < 2 {
                return err("missing argument for comparison");
            }
            let mut any = false;
            for b in &args[1..] {
                any |= equal(&args[0], b)?;
            }
            TemplateValue::Bool(any)
        }
        "ne" => {
            want(2)?;
            TemplateValue::Bool(!equal(&args[0], &args[1])?)
        }
        "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let o = compare(&args[0], &args[1])?;
            TemplateValue::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "print" => {
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                let is_str = |v: &TemplateValue| matches!(v, TemplateValue::Str(_));
                if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
                    s.push(' ');
                }
                a.print(&mut s);
            }
            TemplateValue::Str(s)
        }
        "println" => {
            let parts: Vec<String> = args.iter().map(TemplateValue::text).collect();
            TemplateValue::Str(parts.join(" ") + "\n")
        }
        "printf" => {
            let mut it = args.into_iter();
            let format = match it.next() {
                Some(TemplateValue::Str(f)) => f,
                Some(other) => {
                    return err(format!(
                        "printf format must be a string, not {}",
                        other.kind()
                    ));
                }
                None => return err("wrong number of args for printf: want at least 1 got 0"),
            };
            TemplateValue::Str(sprintf(&format, it.collect()))
        }
        other => return err(format!("function \"{other}\" not defined")),
    })
}

/// Go's `fmt.Sprintf` for the common verbs; flags and widths are read and ignored.
fn sprintf(format: &str, args: Vec<TemplateValue>) -> String {
    let mut out = String::new();
    let mut args = args.into_iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        while let Some(&f) = chars.peek() {
            if "+-# 0123456789.".contains(f) {
                chars.next();
            } else {
                break;
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        match (verb, &arg) {
            ('s' | 'v', a) => a.print(&mut out),
            ('d', TemplateValue::Int(i)) => {
                let _ = write!(out, "{i}");
            }
            ('f', a) if as_f64(a).is_some() => {
                let _ = write!(out, "{:.6}", as_f64(a).unwrap_or(0.0));
            }
            ('t', TemplateValue::Bool(b)) => {
                let _ = write!(out, "{b}");
            }
            ('q', a) => out.push_str(&serde_json::Value::String(a.text()).to_string()),
            ('x', TemplateValue::Int(i)) => {
                let _ = write!(out, "{i:x}");
            }
            ('x', TemplateValue::Str(s)) => {
                for b in s.bytes() {
                    let _ = write!(out, "{b:02x}");
                }
            }
            (v, a) => {
                let _ = write!(out, "%!{v}({}={})", a.kind(), a.text());
            }
        }
    }
    let extra: Vec<TemplateValue> = args.collect();
    if !extra.is_empty() {
        out.push_str("%!(EXTRA ");
        let parts: Vec<String> = extra
            .iter()
            .map(|a| format!("{}={}", a.kind(), a.text()))
            .collect();
        out.push_str(&parts.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(verb: &str, text: &str) -> TemplateValue {
        TemplateValue::Object {
            fields: vec![("Verb".into(), TemplateValue::str(verb))],
            display: Some(text.into()),
        }
    }

    fn data(changes: Vec<TemplateValue>) -> TemplateValue {
        TemplateValue::object([
            (
                "Environment",
                TemplateValue::object([("Name", TemplateValue::str("production"))]),
            ),
            ("Changes", TemplateValue::List(changes)),
        ])
    }

    const FLIPT_DEFAULT: &str = "{{- if eq (len .Changes) 1 }}\n{{- (index .Changes 0) }}\n{{- else -}}\nupdated multiple resources\n{{ range $change := .Changes }}\n{{ $change }}\n{{- end }}\n{{- end }}";

    #[test]
    fn flipts_default_template() {
        let t = Template::parse(FLIPT_DEFAULT).unwrap();
        let one = data(vec![change("create", "create flag default/some-flag")]);
        assert_eq!(t.render(&one).unwrap(), "create flag default/some-flag");
        let two = data(vec![
            change("create", "create flag default/someFeature"),
            change("delete", "delete segment default/someSegment"),
        ]);
        assert_eq!(
            t.render(&two).unwrap(),
            "updated multiple resources\n\ncreate flag default/someFeature\ndelete segment default/someSegment"
        );
    }

    #[test]
    fn flipts_custom_template_test() {
        let src = "{{- if eq (len .Changes) 1 }}\n        {{- printf \"feat(flipt/%s): %s\" .Environment.Name (index .Changes 0) }}\n        {{- else -}}\n        updated multiple resources\n        {{ range $change := .Changes }}\n        {{- printf \"feat(flipt/%s): %s\" .Environment.Name $change }}\n        {{- end }}\n        {{- end }}";
        let t = Template::parse(src).unwrap();
        let one = data(vec![change("update", "update flag default/some-flag")]);
        assert_eq!(
            t.render(&one).unwrap(),
            "feat(flipt/production): update flag default/some-flag"
        );
    }

    #[test]
    fn control_structures() {
        let d = data(vec![change("create", "a"), change("delete", "b")]);
        let cases = [
            (
                "{{range $i, $c := .Changes}}{{$i}}={{$c.Verb}};{{end}}",
                "0=create;1=delete;",
            ),
            (
                "{{range .Changes}}{{.Verb}} {{else}}none{{end}}",
                "create delete ",
            ),
            ("{{range .Nothing}}x{{else}}none{{end}}", "ERR"),
            ("{{with .Environment}}{{.Name}}{{end}}", "production"),
            (
                "{{with $e := .Environment.Name}}{{$e}}{{end}}",
                "production",
            ),
            (
                "{{if not .Changes}}a{{else if eq (len .Changes) 2}}two{{else}}c{{end}}",
                "two",
            ),
            ("{{ .Environment.Name | printf \"%q\" }}", "\"production\""),
            (
                "{{ $n := len .Changes }}{{ $n }} {{ $n = 5 }}{{ $n }}",
                "2 5",
            ),
            ("{{ (index .Changes 1).Verb }}", "delete"),
            ("{{/* a comment */}}x", "x"),
            ("a  {{- \" b \" -}}  c", "a b c"),
            ("{{ printf \"%d%%\" 50 }}", "50%"),
            ("{{ if and .Changes (eq 1 1) }}y{{ end }}", "y"),
            ("{{ print \"a\" 1 2 \"b\" }}", "a1 2b"),
            ("{{ index .Changes 5 }}", "ERR"),
            ("{{ .Missing }}", "ERR"),
            ("{{ eq \"a\" 1 }}", "ERR"),
            ("{{ `raw {{` }}", "raw {{"),
        ];
        for (src, want) in cases {
            let got = Template::parse(src).and_then(|t| t.render(&d));
            match got {
                Ok(s) => assert_eq!(s, want, "{src}"),
                Err(e) => assert_eq!("ERR", want, "{src}: {e}"),
            }
        }
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "{{ if .X }}",
            "{{ end }}",
            "{{ else }}",
            "{{ template \"x\" }}",
            "{{ nosuchfunc 1 }}",
            "{{ \"unterminated }}",
            "{{ .X",
            "{{}}",
            "{{ ( }}",
            "{{ range }}{{ end }}",
            "{{ .X ) }}",
            &format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000)),
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}

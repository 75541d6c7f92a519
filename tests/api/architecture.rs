//! The shape of `src/`, checked from the source text: imports run one way
//! (`main -> startup -> http -> service -> {store, domain}`, with `config`, `error` and
//! `telemetry` as leaves), no two modules depend on each other in a cycle, the two stores never
//! call each other, no file grows past 400 lines, and no row of four or more columns is read
//! into a tuple.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 400;

/// Which top-level modules each top-level module may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("main", &["startup", "config", "telemetry", "cli"]),
    (
        "cli",
        &["service", "config", "domain", "error", "telemetry"],
    ),
    (
        "startup",
        &["http", "service", "config", "error", "telemetry"],
    ),
    (
        "http",
        &["service", "domain", "config", "error", "telemetry"],
    ),
    (
        "service",
        &["store", "domain", "config", "error", "telemetry"],
    ),
    ("store", &["domain", "config", "error", "telemetry"]),
    ("domain", &["error"]),
    ("config", &["domain"]),
    ("telemetry", &["config"]),
    ("error", &[]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` -> `["a", "b"]`; `src/lib.rs` -> `[]`; `src/main.rs` ->
/// `["main"]` (the binary, a crate of its own that uses the library as `seatlock::`).
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The source without comments, string literals and char literals.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                j += 1;
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                i = j + close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\') => {
                // a char literal ('x' or '\n'); lifetimes ('a) are left alone
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

/// Every path a use tree starting at `text` names, e.g. `{a::b, c::{d, e}}` or `x::y`.
fn use_tree(text: &str, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let b = text.as_bytes();
    let mut i = 0;
    let mut path = prefix.to_vec();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) == Some(&b'{') {
            i += 1;
            loop {
                i += use_tree(&text[i..], &path, out);
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                match b.get(i) {
                    Some(b',') => i += 1,
                    Some(b'}') => return i + 1,
                    _ => return i,
                }
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                if b.get(i) == Some(&b'}') {
                    return i + 1;
                }
            }
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let ident = &text[start..i];
        if !ident.is_empty() && ident != "self" {
            path.push(ident.to_string());
        }
        if text[i..].starts_with("::") {
            i += 2;
            continue;
        }
        out.push(path);
        return i;
    }
}

/// The module paths a file refers to, absolute (`crate::`, `seatlock::`) or relative
/// (`super::`, resolved against the file's own module).
fn references(file: &Path) -> Vec<Vec<String>> {
    let code = code_only(&std::fs::read_to_string(file).expect("read"));
    let module = module_of(file);
    let is_main = module == ["main"];
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    for (start, _) in code.match_indices("::") {
        // the identifier right before this `::`
        let mut s = start;
        while s > 0 && (bytes[s - 1].is_ascii_alphanumeric() || bytes[s - 1] == b'_') {
            s -= 1;
        }
        if s > 0 && (bytes[s - 1] == b':' || bytes[s - 1].is_ascii_alphanumeric()) {
            continue; // not the first segment of a path
        }
        let root: Vec<String> = match &code[s..start] {
            "crate" => Vec::new(),
            "seatlock" if is_main => Vec::new(),
            "super" => {
                let mut m = module.clone();
                m.pop();
                m
            }
            _ => continue,
        };
        use_tree(&code[start + 2..], &root, &mut paths);
    }
    paths
}

/// The longest known module that `path` starts with.
fn resolve(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
}

fn is_ancestor(a: &[String], b: &[String]) -> bool {
    a.len() < b.len() && b.starts_with(a)
}

fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let from = module_of(file);
        let targets = edges.entry(from.clone()).or_default();
        for path in references(file) {
            if let Some(to) = resolve(&path, &modules)
                && to != from
                && !to.is_empty()
                && !is_ancestor(&to, &from)
                && !is_ancestor(&from, &to)
            {
                targets.insert(to);
            }
        }
    }
    edges
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[test]
fn the_architecture_check_sees_the_imports_it_must_judge() {
    let g = graph();
    let deps = |m: &[&str]| {
        let m: Vec<String> = m.iter().map(|s| s.to_string()).collect();
        g.get(&m).cloned().unwrap_or_default()
    };
    let has = |set: &BTreeSet<Vec<String>>, m: &[&str]| {
        set.contains(&m.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    assert!(has(&deps(&["service", "reserve"]), &["domain", "holds"]));
    assert!(has(&deps(&["http", "holds"]), &["http", "extract"]));
    assert!(has(&deps(&["main"]), &["startup"]));
    let mut seen = Vec::new();
    use_tree("{a::b, c::{d, self}}", &[], &mut seen);
    assert_eq!(seen, vec![vec!["a", "b"], vec!["c", "d"], vec!["c"]]);
}

#[test]
fn modules_import_one_way_and_form_no_cycle() {
    let g = graph();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (from, targets) in &g {
        let Some(top) = from.first() else { continue };
        let may = allowed
            .get(top.as_str())
            .unwrap_or_else(|| panic!("top-level module {top} is missing from ALLOWED"));
        for to in targets {
            let to_top = to[0].as_str();
            let stores = |m: &[String]| m.len() > 1 && m[0] == "store";
            if to_top != top && !may.contains(&to_top) {
                wrong.push(format!("{} -> {}", name(from), name(to)));
            }
            if stores(from) && stores(to) && from[1] != to[1] {
                wrong.push(format!(
                    "{} -> {} (stores never call each other)",
                    name(from),
                    name(to)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering:\n{}",
        wrong.join("\n")
    );

    // Depth-first search for a back edge.
    fn visit(
        m: &Vec<String>,
        g: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for next in g.get(m).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == next).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[at..].iter().map(|s| name(s)).collect();
                    cycle.push(name(next));
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, g, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        if !state.contains_key(m)
            && let Some(cycle) = visit(m, &g, &mut state, &mut Vec::new())
        {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn no_source_file_is_over_400_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).expect("read").lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
}

/// The tuple types (with their field counts) that `code` reads rows into with `query_as`:
/// `let rows: Vec<(A, B, ..)> = sqlx::query_as(..)` and `sqlx::query_as::<_, (A, B, ..)>(..)`.
fn tuple_rows(code: &str) -> Vec<(usize, String)> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    for (at, _) in code.match_indices("query_as") {
        let start = code[..at]
            .rfind("let ")
            .filter(|s| at - s < 300)
            .unwrap_or(at);
        let mut end = at + "query_as".len();
        if code[end..].starts_with("::<") {
            let mut depth = 0;
            for (i, c) in code[end + 2..].char_indices() {
                match c {
                    '<' => depth += 1,
                    '>' => {
                        depth -= 1;
                        if depth == 0 {
                            end += 2 + i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        for open in start..end {
            if b[open] != b'(' {
                continue;
            }
            let before = code[..open].trim_end();
            if !before.ends_with(['<', ',', ':']) {
                continue;
            }
            let (mut depth, mut fields, mut close) = (0i32, 1, open);
            for (i, c) in code[open..].char_indices() {
                match c {
                    '(' | '<' | '[' => depth += 1,
                    ')' | '>' | ']' => {
                        depth -= 1;
                        if depth == 0 {
                            close = open + i;
                            break;
                        }
                    }
                    ',' if depth == 1 => fields += 1,
                    _ => {}
                }
            }
            let inner = code[open + 1..close].trim().trim_end_matches(',');
            if inner.is_empty() {
                continue;
            }
            if code[open + 1..close].trim().ends_with(',') {
                fields -= 1;
            }
            found.push((
                fields,
                code[open..=close]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            ));
        }
    }
    found
}

#[test]
fn the_row_check_sees_tuple_rows_in_both_forms() {
    let let_form = "let rows: Vec<(String, i64, i32, i32, i64)> = sqlx::query_as(\"..\")";
    assert_eq!(tuple_rows(let_form)[0].0, 5);
    let turbofish = "let r = sqlx::query_as::<_, (String, Option<(i32, i32)>, i64, i64)>(\"..\")";
    assert_eq!(tuple_rows(turbofish)[0].0, 4);
    let pair = "let ids: Vec<(Uuid, String)> = sqlx::query_as(\"..\")";
    assert_eq!(tuple_rows(pair)[0].0, 2);
    assert!(tuple_rows("let rows: Vec<SeatRow> = sqlx::query_as(\"..\")").is_empty());
}

/// A row of four or more columns is a named struct (`#[derive(sqlx::FromRow)]`), so a reader
/// sees which column is which and a reordered SELECT cannot silently swap two of a type.
#[test]
fn rows_of_four_or_more_columns_are_named_structs() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut tuples = Vec::new();
    for f in files {
        let code = code_only(&std::fs::read_to_string(&f).expect("read"));
        for (fields, ty) in tuple_rows(&code) {
            if fields >= 4 {
                tuples.push(format!("{}: {ty}", f.display()));
            }
        }
    }
    assert!(
        tuples.is_empty(),
        "rows read as tuples of 4 or more fields: {tuples:#?}"
    );
}

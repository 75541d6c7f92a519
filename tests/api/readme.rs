//! The manual works as written: the README's curl flow ("Try it") is cut out of README.md and run
//! by bash, unchanged but for the address, against a fresh seatlock process; the README stays a
//! short front page (at most 250 lines) whose links to the docs all resolve.

use std::path::Path;
use std::process::Command;

use sqlx::PgPool;

use crate::support::{Seatlock, database_url, redis_url};

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

/// The first ```sh block after the heading that starts with `heading`.
fn block_after(text: &str, heading: &str) -> String {
    let at = text
        .find(&format!("\n{heading}"))
        .unwrap_or_else(|| panic!("no heading {heading:?} in the README"));
    let rest = &text[at..];
    let start = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = rest[start..].find("\n```").expect("its end") + start;
    rest[start..end].to_string()
}

#[sqlx::test(migrator = "seatlock::store::postgres::MIGRATOR")]
async fn the_readme_curl_flow_runs_as_written(pg: PgPool) {
    let flow = block_after(&readme(), "## Try it");
    assert!(
        flow.starts_with("B=http://127.0.0.1:8080\n"),
        "the flow names its address first: {flow}"
    );
    let instance = Seatlock::start(&[
        ("DATABASE_URL", database_url(&pg)),
        ("REDIS_URL", redis_url()),
        (
            "APP__REDIS__KEY_PREFIX",
            format!("readme-{}", uuid::Uuid::new_v4().simple()),
        ),
        ("APP__LOG__LEVEL", "warn".to_string()),
    ]);
    let script = flow.replacen(
        "B=http://127.0.0.1:8080",
        &format!("B=http://127.0.0.1:{}", instance.port),
        1,
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            // -e and -u, not pipefail: `curl … | head -c 300` may end curl with SIGPIPE, as it
            // does in a terminal; what the flow printed is checked below.
            .args(["-eu", "-c", &script])
            .output()
            .expect("bash")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the flow failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What its comments promise.
    for expected in [
        r#""code":"SEATS_UNAVAILABLE""#,
        r#""seats":["S2"]"#,
        r#""success":true"#,
        r#""cancelled":true"#,
        r#""released":true"#,
        "idempotent-replayed: true",
        r#""status":"ready""#,
    ] {
        assert!(
            stdout.to_lowercase().contains(&expected.to_lowercase()),
            "{expected} not in the flow's output:\n{stdout}"
        );
    }
}

#[test]
fn the_readme_is_a_short_front_page_and_its_links_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = readme();
    let lines = text.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines (at most 250)");
    for doc in ["docs/api.md", "docs/operating.md", "docs/architecture.md"] {
        assert!(text.contains(&format!("]({doc})")), "the README maps {doc}");
    }
    // Every relative link of the README and docs/ names a file that exists (and, for a
    // Markdown file, a heading it has).
    let mut broken = Vec::new();
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let link = regex_lite(r"\]\(([^)\s]+)\)");
    for file in &files {
        let body = std::fs::read_to_string(file).expect("read");
        let dir = file.parent().expect("dir");
        let mut in_code = false;
        for line in body.lines() {
            if line.starts_with("```") {
                in_code = !in_code;
            }
            if in_code {
                continue;
            }
            for target in link(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    dir.join(path)
                };
                if !resolved.exists() {
                    broken.push(format!("{}: {target}", file.display()));
                    continue;
                }
                if !anchor.is_empty()
                    && resolved.extension().is_some_and(|e| e == "md")
                    && !anchors(&std::fs::read_to_string(&resolved).expect("read"))
                        .iter()
                        .any(|a| a == anchor)
                {
                    broken.push(format!("{}: {target} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
}

/// GitHub's anchors of a Markdown file's headings (outside code blocks).
fn anchors(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim().to_lowercase();
        let slug: String = title
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        out.push(slug);
    }
    out
}

/// The targets of `[text](target)` links in a line (a tiny matcher: no regex crate needed).
fn regex_lite(_pattern: &str) -> impl Fn(&str) -> Vec<String> {
    |line: &str| {
        let mut out = Vec::new();
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            match after.find(')') {
                Some(end) if !after[..end].contains(char::is_whitespace) => {
                    out.push(after[..end].to_string());
                    rest = &after[end..];
                }
                _ => rest = after,
            }
        }
        out
    }
}

/// The module map in docs/architecture.md names every file of `src/` (unit-test files aside): a
/// row's first path gives the folder of the names after it.
#[test]
fn the_module_map_names_every_source_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).expect("architecture.md");
    let mut named = std::collections::BTreeSet::new();
    for line in doc.lines().filter(|l| l.starts_with("| `src/")) {
        let cell = line.split('|').nth(1).unwrap_or_default();
        let names: Vec<&str> = cell.split('`').skip(1).step_by(2).collect();
        let Some(first) = names.first() else { continue };
        let folder = Path::new(first).parent().expect("a folder").to_path_buf();
        named.insert(first.to_string());
        for name in &names[1..] {
            named.insert(folder.join(name).to_string_lossy().into_owned());
        }
    }
    let mut files = Vec::new();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.to_string_lossy().ends_with("_tests.rs")
            {
                let relative = path.strip_prefix(root).expect("under the root");
                files.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let missing: Vec<&String> = files.iter().filter(|f| !named.contains(*f)).collect();
    assert!(
        missing.is_empty(),
        "not in docs/architecture.md's module map: {missing:?}"
    );
    let stale: Vec<&String> = named.iter().filter(|n| !files.contains(n)).collect();
    assert!(
        stale.is_empty(),
        "named in the module map but not in src/: {stale:?}"
    );
}

/// Every table a migration creates is in docs/architecture.md's schema section.
#[test]
fn the_schema_section_lists_every_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).expect("architecture.md");
    let at = doc.find("\n### Schema").expect("a schema section");
    let schema = &doc[at + 1..];
    let schema = &schema[..schema.find("\n### ").unwrap_or(schema.len())];
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("migrations"))
        .expect("migrations")
        .flatten()
    {
        let sql = std::fs::read_to_string(entry.path()).expect("a migration");
        for table in sql
            .split("CREATE TABLE ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next())
        {
            if !schema.contains(&format!("`{table}(")) && !schema.contains(&format!("`{table}`")) {
                missing.push(table.to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "tables not in the schema section: {missing:?}"
    );
}

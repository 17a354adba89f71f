//! The documentation cannot drift from the code. docs/architecture.md's generated block (the
//! crate graph from `cargo metadata`, the modules from the source tree with the first sentence of
//! each module's `//!` comment) is what they say now; every relative link of README.md and
//! docs/*.md reaches a file, and a heading of it where the link names one; every page of docs/ is
//! linked from the README; every end-to-end suite is named in docs/testing.md.
//!
//! `PODSEC_UPDATE_DOCS=1 cargo test -p podsec-tests --test docs` rewrites the generated block.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BEGIN: &str = "<!-- generated: begin (tests/tests/docs.rs; \
                     PODSEC_UPDATE_DOCS=1 cargo test -p podsec-tests --test docs rewrites it) -->";
const END: &str = "<!-- generated: end -->";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every page of docs/.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    files.extend(pages);
    files
}

// ---------------------------------------------------------------------------------------------
// The generated block of docs/architecture.md

struct Crate {
    name: String,
    dir: PathBuf,
    targets: Vec<String>,
    /// Workspace crates it uses: (name, dev-only).
    uses: Vec<(String, bool)>,
    /// Third-party crates of its normal dependencies, `name?` when optional.
    third_party: Vec<String>,
}

/// `cargo metadata --no-deps` of the workspace.
fn cargo_metadata() -> Value {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata JSON")
}

fn workspace() -> Vec<Crate> {
    let meta = cargo_metadata();
    let packages = meta["packages"].as_array().expect("packages");
    let members: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    packages
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().expect("manifest_path"));
            let dir = manifest.parent().expect("crate dir");
            let dir = dir.strip_prefix(root()).unwrap_or(dir).to_path_buf();
            let targets = p["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .filter_map(|t| {
                    let kind = t["kind"][0].as_str()?;
                    let name = t["name"].as_str()?;
                    matches!(kind, "lib" | "bin").then(|| format!("{kind} `{name}`"))
                })
                .collect();
            let mut uses: BTreeMap<String, bool> = BTreeMap::new();
            let mut third_party = BTreeSet::new();
            for d in p["dependencies"].as_array().expect("dependencies") {
                let name = d["name"].as_str().expect("dependency name").to_string();
                let dev = d["kind"].as_str() == Some("dev");
                if members.contains(name.as_str()) {
                    let dev_only = uses.get(&name).copied().unwrap_or(true) && dev;
                    uses.insert(name, dev_only);
                } else if d["kind"].is_null() {
                    let optional = d["optional"].as_bool() == Some(true);
                    third_party.insert(if optional { format!("{name}?") } else { name });
                }
            }
            Crate {
                name: p["name"].as_str().expect("name").to_string(),
                dir,
                targets,
                uses: uses.into_iter().collect(),
                third_party: third_party.into_iter().collect(),
            }
        })
        .collect()
}

fn mermaid_id(name: &str) -> String {
    name.replace('-', "_")
}

/// The first sentence of a file's leading `//!` paragraph.
fn summary(source: &str) -> String {
    let mut text = String::new();
    for line in source.lines() {
        let Some(rest) = line.strip_prefix("//!") else {
            break;
        };
        let rest = rest.trim();
        if rest.is_empty() || (rest.starts_with("- ") && !text.is_empty()) {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(rest);
    }
    if text.is_empty() {
        return "(no `//!` comment)".to_string();
    }
    let mut sentence = match text.find(". ") {
        Some(end) => text[..=end].to_string(),
        None => text,
    };
    // A sentence that introduces a list ends with its colon.
    if sentence.ends_with(':') {
        sentence.pop();
        sentence.push('.');
    }
    if sentence.chars().count() > SUMMARY {
        let cut: String = sentence.chars().take(SUMMARY).collect();
        let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
        sentence = format!("{} …", cut.trim_end_matches([',', ';', ':']));
    }
    sentence
}

/// The longest summary of a module, in characters.
const SUMMARY: usize = 160;

/// The modules of a crate: (module path, source file), one per file below src/, parents first.
fn modules(src: &Path) -> Vec<(Vec<String>, PathBuf)> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("source directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    let mut modules: Vec<(Vec<String>, PathBuf)> = files
        .into_iter()
        .map(|file| {
            let rel = file.strip_prefix(src).expect("below src");
            let mut path: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if path.last().is_some_and(|last| last == "mod") {
                path.pop();
            }
            (path, file)
        })
        .collect();
    // The crate root and the binary first, then the modules, then the other binaries.
    modules.sort_by_key(|(path, _)| {
        let rank = match path.first().map(String::as_str) {
            Some("lib") if path.len() == 1 => 0,
            Some("main") if path.len() == 1 => 1,
            Some("bin") => 3,
            _ => 2,
        };
        (rank, path.clone())
    });
    modules
}

fn generated() -> String {
    let crates = workspace();
    let mut out = String::new();
    out.push_str("### Crates\n\n```mermaid\ngraph BT\n");
    for c in &crates {
        out.push_str(&format!("  {}[\"{}\"]\n", mermaid_id(&c.name), c.name));
    }
    for c in &crates {
        for (used, dev) in &c.uses {
            let arrow = if *dev { "-. dev .->" } else { "-->" };
            out.push_str(&format!(
                "  {} {arrow} {}\n",
                mermaid_id(&c.name),
                mermaid_id(used)
            ));
        }
    }
    out.push_str("```\n\n");
    out.push_str("| crate | directory | targets | third-party dependencies (`?`: optional) |\n");
    out.push_str("|---|---|---|---|\n");
    for c in &crates {
        out.push_str(&format!(
            "| {} | `{}/` | {} | {} |\n",
            c.name,
            c.dir.display(),
            c.targets.join(", "),
            c.third_party.join(", ")
        ));
    }
    out.push_str("\n### Modules\n");
    for c in &crates {
        let src = root().join(&c.dir).join("src");
        out.push_str(&format!(
            "\n**{}** (`{}/src/`)\n\n",
            c.name,
            c.dir.display()
        ));
        for (path, file) in modules(&src) {
            let text = summary(&read(&file));
            let (depth, label) = match path.first().map(String::as_str) {
                Some("lib") if path.len() == 1 => (0, "`lib.rs` (the crate)".to_string()),
                Some("main") if path.len() == 1 => (0, "`main.rs` (the binary)".to_string()),
                Some("bin") => (0, format!("`bin/{}.rs` (a binary)", path[1..].join("/"))),
                _ => (path.len() - 1, format!("`{}`", path.join("::"))),
            };
            out.push_str(&format!("{}- {label}: {text}\n", "  ".repeat(depth)));
        }
    }
    out
}

#[test]
fn architecture_block_is_generated_from_the_code() {
    let path = root().join("docs/architecture.md");
    let doc = read(&path);
    let (Some(begin), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/architecture.md lacks the markers {BEGIN} ... {END}");
    };
    let start = begin + BEGIN.len();
    let current = doc[start..end].trim();
    let fresh = generated();
    if std::env::var_os("PODSEC_UPDATE_DOCS").is_some() {
        let updated = format!("{}\n{}\n{}", &doc[..start], fresh.trim(), &doc[end..]);
        std::fs::write(&path, updated).expect("write docs/architecture.md");
        return;
    }
    let first_difference = current
        .lines()
        .map(Some)
        .chain(std::iter::repeat(None))
        .zip(
            fresh
                .trim()
                .lines()
                .map(Some)
                .chain(std::iter::repeat(None)),
        )
        .take_while(|pair| *pair != (None, None))
        .find(|(doc, code)| doc != code);
    assert!(
        first_difference.is_none(),
        "docs/architecture.md no longer describes the code (crates, dependencies or modules \
         changed); rewrite it with PODSEC_UPDATE_DOCS=1 cargo test -p podsec-tests --test docs \
         and review the diff. First difference (the doc, then the code): {first_difference:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Links

/// The lines outside fenced code blocks, with inline code removed.
fn prose_lines(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Every other backtick-delimited span is code.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        lines.push(prose);
    }
    lines
}

/// The targets of `[text](target)` links.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose_lines(text) {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(close) = rest.find(')') {
                found.push(rest[..close].to_string());
                rest = &rest[close..];
            }
        }
    }
    found
}

/// GitHub's anchors of a page's headings: lower case, letters, digits, `-` and `_` kept, spaces
/// made `-`, everything else dropped; repeated anchors numbered.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for line in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let heading = heading.trim_start_matches('#').trim();
        let slug: String = heading
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        anchors.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    anchors
}

/// docs/dependencies.md names exactly the third-party crates the workspace depends on.
#[test]
fn the_dependency_table_names_every_dependency() {
    let meta = cargo_metadata();
    let packages = meta["packages"].as_array().expect("packages");
    let members: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let used: BTreeSet<String> = packages
        .iter()
        .flat_map(|p| p["dependencies"].as_array().expect("dependencies"))
        .filter_map(|d| d["name"].as_str())
        .filter(|name| !members.contains(name))
        .map(str::to_string)
        .collect();
    let page = read(&root().join("docs/dependencies.md"));
    let listed: BTreeSet<String> = page
        .lines()
        .filter_map(|line| line.strip_prefix("| "))
        .filter_map(|line| line.split(" |").next())
        .flat_map(|cell| cell.split(", "))
        .filter_map(|name| name.strip_prefix('`')?.strip_suffix('`'))
        .map(str::to_string)
        .collect();
    assert!(used.len() > 20, "{used:?}");
    assert_eq!(listed, used, "docs/dependencies.md against cargo metadata");
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = read(&file);
        for target in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().expect("dir").join(path)
            };
            if !resolved.exists() {
                broken.push(format!("{}: {target}: no such file", file.display()));
            } else if !anchor.is_empty()
                && resolved.extension().is_some_and(|e| e == "md")
                && !anchors(&read(&resolved)).contains(anchor)
            {
                broken.push(format!("{}: {target}: no such heading", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_docs_page_is_linked_from_the_readme() {
    let readme = links(&read(&root().join("README.md")));
    for page in markdown_files().iter().skip(1) {
        let name = format!("docs/{}", page.file_name().unwrap().to_string_lossy());
        assert!(
            readme
                .iter()
                .any(|l| l.split('#').next() == Some(name.as_str())),
            "README.md does not link {name}"
        );
    }
}

#[test]
fn every_suite_is_named_in_the_testing_page() {
    let testing = read(&root().join("docs/testing.md"));
    for entry in std::fs::read_dir(root().join("tests/tests")).expect("tests/tests") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        // A suite is a file, or a directory of modules around its main.rs.
        let is_dir = root()
            .join("tests/tests")
            .join(&name)
            .join("main.rs")
            .is_file();
        let shown = if is_dir {
            format!("{name}/")
        } else {
            name.clone()
        };
        if name.ends_with(".rs") || is_dir {
            assert!(
                testing.contains(&format!("`{shown}`")),
                "docs/testing.md does not say what tests/tests/{shown} checks"
            );
        }
    }
}

#[test]
fn no_lab_notes_about_the_build_machines() {
    for file in markdown_files() {
        let text = read(&file).to_lowercase();
        for phrase in [
            "these machines",
            "these hosts",
            "on this machine",
            "2-core machine",
        ] {
            assert!(
                !text.contains(phrase),
                "{}: {phrase:?}: describe the product and its targets, not the machines it is \
                 built on (measurements say their date and core count)",
                file.display()
            );
        }
    }
}

#[test]
fn the_link_and_anchor_checks_can_fail() {
    assert_eq!(
        links("see [a](docs/a.md#b-c), `[x](y)` and\n```\n[z](w)\n```\n"),
        ["docs/a.md#b-c"]
    );
    let headings =
        anchors("# The store: who writes where\n## Performance (make bench)\n# A\n# A\n");
    for a in [
        "the-store-who-writes-where",
        "performance-make-bench",
        "a",
        "a-1",
    ] {
        assert!(headings.contains(a), "{a} in {headings:?}");
    }
    assert!(!headings.contains("the-store:-who-writes-where"));
    assert_eq!(
        summary("//! One sentence. Another.\n//! More.\n//!\n//! Not this.\n"),
        "One sentence."
    );
    assert_eq!(
        summary("//! A list follows:\n//! - one\n"),
        "A list follows."
    );
    let long = format!("//! {}.\n", "word ".repeat(60));
    assert!(summary(&long).ends_with("word …"), "{}", summary(&long));
    assert!(summary(&long).chars().count() <= SUMMARY + 2);
}

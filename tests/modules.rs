//! The modules point down: each top-level module of the library imports only from modules on a
//! lower floor, so there is no import circle and no arrow from a lower floor to a higher one; and
//! inside each, no module imports, through `use`, from a module that imports it, parents and
//! children included. Read from the sources: the module graph of `cargo modules dependencies`
//! (whose `--acyclic` looks at items, not modules: it rejects any `impl A { fn new() -> A }`).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// The floors, from the ground up; a module may use only the modules of the floors below its own.
const FLOORS: [&[&str]; 6] = [
    &[
        "config",
        "conventions",
        "accept",
        "clock",
        "dates",
        "errors",
        "tls",
    ],
    &["chaos", "synthetic", "telemetry"],
    &["metrics"],
    &["http"],
    &["server", "healthcheck", "load"],
    &["cli"],
];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|floor| floor.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level module a file of `src/` belongs to (`src/http/chain/client.rs` -> `http`), or
/// none for the crate root and the binary.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The top-level modules that `text` names through `crate::`, in paths (`crate::metrics::X`) and
/// in `use crate::{a::X, b::Y}` groups. Comments are skipped.
fn used_modules(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut used = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::X, b::{Y, Z}}`: the first segment of each top-level entry.
            let mut depth = 0;
            let mut entry_start = true;
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        entry_start = true;
                        continue;
                    }
                    _ => {}
                }
                if entry_start && depth == 0 {
                    if c.is_alphanumeric() || c == '_' {
                        name.push(c);
                        continue;
                    }
                    if !name.is_empty() {
                        used.insert(std::mem::take(&mut name));
                        entry_start = false;
                    }
                }
            }
            if !name.is_empty() {
                used.insert(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    used.retain(|name| name.chars().next().is_some_and(|c| c.is_lowercase()));
    used
}

/// Module -> the other modules it uses.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(&src) {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let used = used_modules(&text);
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(used.into_iter().filter(|used| *used != module));
    }
    graph
}

#[test]
fn every_module_of_the_library_has_a_floor() {
    let graph = imports();

    let without: Vec<&String> = graph.keys().filter(|m| floor_of(m).is_none()).collect();

    assert!(without.is_empty(), "modules without a floor: {without:?}");
}

#[test]
fn every_import_points_to_a_lower_floor() {
    let graph = imports();

    let mut upward = Vec::new();
    for (module, used) in &graph {
        let Some(floor) = floor_of(module) else {
            continue;
        };
        for other in used {
            match floor_of(other) {
                Some(other_floor) if other_floor < floor => {}
                _ => upward.push(format!("{module} -> {other}")),
            }
        }
    }

    assert!(
        upward.is_empty(),
        "imports that do not point down: {upward:?}"
    );
}

#[test]
fn config_imports_nothing_of_the_app() {
    let graph = imports();

    assert_eq!(graph.get("config"), Some(&BTreeSet::new()));
}

#[test]
fn the_reader_of_imports_sees_paths_and_groups() {
    let text = "use crate::{config::Config, http::{self, AppState}};\n\
                let x = crate::metrics::build(); // crate::cli::nothing\n\
                crate::VERSION";

    let used = used_modules(text);

    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        ["config", "http", "metrics"]
    );
}

/// The module path of each file of `src/` (`src/http/chain/client.rs` -> `http::chain::client`,
/// `src/http/mod.rs` -> `http`), the crate root and the binary left out.
fn module_paths(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut modules = BTreeMap::new();
    for file in sources(src) {
        let relative = file.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_str().unwrap().to_string())
            .collect();
        if parts.last().is_some_and(|last| last == "mod") {
            parts.pop();
        }
        if parts.is_empty() || parts == ["lib"] || parts == ["main"] {
            continue;
        }
        modules.insert(parts.join("::"), file);
    }
    modules
}

/// The code of `text` without comments and without its `#[cfg(test)]` module (at the bottom of
/// each file, by the house style).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths of the `use` declarations of `code`, each as its segments, groups expanded
/// (`use a::{b, c::{self, D}};` -> `a::b`, `a::c`, `a::c::D`).
fn use_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for statement in code.split(';') {
        // A declaration starts its line: `use …`, or `pub use …`, `pub(crate) use …`.
        let start = statement.lines().rev().find_map(|line| {
            let line = line.trim_start();
            let rest = match line.strip_prefix("pub") {
                Some(rest) if rest.starts_with('(') => rest.split_once(')')?.1.trim_start(),
                Some(rest) => rest.trim_start(),
                None => line,
            };
            rest.strip_prefix("use ")
        });
        let Some(start) = start else {
            continue;
        };
        let at = statement.find(start).unwrap_or(0);
        let tree: String = without_renames(&statement[at..])
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        expand(&tree, &mut Vec::new(), &mut paths);
    }
    paths
}

/// `tree` without its renames (`a::B as C` -> `a::B`, `Trait as _` -> `Trait`).
fn without_renames(tree: &str) -> String {
    let mut out = String::new();
    let mut rest = tree;
    while let Some(at) = rest.find(" as ") {
        out.push_str(&rest[..at]);
        rest = rest[at + 4..].trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
    }
    out.push_str(rest);
    out
}

/// Expands a use tree under `prefix` into `paths`.
fn expand(tree: &str, prefix: &mut Vec<String>, paths: &mut Vec<Vec<String>>) {
    for item in split_top(tree) {
        match item.find('{') {
            Some(open) => {
                let head: Vec<String> = item[..open]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                let depth = prefix.len();
                prefix.extend(head);
                expand(&item[open + 1..item.len() - 1], prefix, paths);
                prefix.truncate(depth);
            }
            None => {
                let mut path = prefix.clone();
                for segment in item.split("::").filter(|s| !s.is_empty()) {
                    if segment != "self" {
                        path.push(segment.to_string());
                    }
                }
                paths.push(path);
            }
        }
    }
}

/// `tree` split at its top-level commas.
fn split_top(tree: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&tree[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&tree[start..]);
    items.into_iter().filter(|i| !i.is_empty()).collect()
}

/// The module that `path`, used in `module`, names: the longest known module it starts with, after
/// `crate`, `super` and `self` are resolved. None for other crates.
fn resolve(module: &str, path: &[String], known: &BTreeMap<String, PathBuf>) -> Option<String> {
    let mut current: Vec<&str> = module.split("::").collect();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            current.clear();
            rest = &rest[1..];
        }
        Some("super") | Some("self") => {
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        current.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        Some(first) => {
            let child = format!("{module}::{first}");
            if !known.contains_key(&child) {
                return None;
            }
        }
        None => return None,
    }
    let mut found = (!current.is_empty()).then(|| current.join("::"));
    let mut candidate = current.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for segment in rest {
        candidate.push(segment.clone());
        let name = candidate.join("::");
        if known.contains_key(&name) {
            found = Some(name);
        } else {
            break;
        }
    }
    found
}

/// Every module -> the modules its `use` declarations name.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = module_paths(&src);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &known {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let used = graph.entry(module.clone()).or_default();
        for path in use_paths(&code) {
            if let Some(target) = resolve(module, &path, &known)
                && &target != module
            {
                used.insert(target);
            }
        }
    }
    graph
}

/// A cycle of `graph`, if it has one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_from_a_module_that_imports_it() {
    let graph = module_graph();

    assert!(graph.len() > 40, "modules read: {}", graph.len());
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn the_reader_of_use_declarations_expands_groups_and_resolves_relative_paths() {
    let known: BTreeMap<String, PathBuf> = ["http", "http::state", "http::error", "config"]
        .into_iter()
        .map(|m| (m.to_string(), PathBuf::new()))
        .collect();
    let code = "use super::{error::AppError, state::AppState as S};\npub(crate) use crate::config::Config;\nuse axum::Router as _;";

    let targets: BTreeSet<Option<String>> = use_paths(code)
        .iter()
        .map(|path| resolve("http::pages", path, &known))
        .collect();

    assert_eq!(
        targets,
        [
            None,
            Some("config".into()),
            Some("http::error".into()),
            Some("http::state".into())
        ]
        .into_iter()
        .collect()
    );
    let cycle: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), ["b".to_string()].into()),
        ("b".to_string(), ["a".to_string()].into()),
    ]
    .into();
    assert_eq!(
        find_cycle(&cycle),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
}

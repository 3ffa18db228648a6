//! The modules point down: each top-level module of the library imports only from modules on a
//! lower floor, so there is no import circle and no arrow from a lower floor to a higher one.
//! Read from the sources, the way `cargo modules dependencies --lib --acyclic` reads them, without
//! needing that tool.

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
    &["chaos", "telemetry"],
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

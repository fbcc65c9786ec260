//! `duet-core`'s top-level modules depend on each other one way (ARCHITECTURE.md, "Services"): no
//! module reaches another that reaches it back. This test reads the sources, draws the graph of
//! `crate::<module>` references between top-level modules (comments left out) and fails on a cycle,
//! naming it. `.ci/run` runs it on its own so that a cycle reads as one.
//!
//! Inside the crate, items are named by their module's path (`crate::error::Error`), not through the
//! crate root's re-exports, so that every reference names the module it depends on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// From each module to the modules it names, with one file that names each.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

#[test]
fn duet_core_has_no_module_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (graph, root_refs) = read_graph(&src);
    assert!(graph.len() > 5, "found only {:?} in {}", graph.keys(), src.display());
    assert!(root_refs.is_empty(), "name these by their module's path, not the crate root's re-export: {root_refs:#?}");
    if let Some(cycle) = find_cycle(&graph) {
        let mut text = String::new();
        for pair in cycle.windows(2) {
            let file = &graph[&pair[0]][&pair[1]];
            text.push_str(&format!("\n  {} -> {} (in {file})", pair[0], pair[1]));
        }
        panic!("duet-core's modules import each other in a loop:{text}");
    }
}

#[test]
fn the_check_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string(), "x.rs".into());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(["a", "b", "c", "a"].iter().map(|s| s.to_string()).collect())
    );
    assert!(find_cycle(&graph(&[("x", "y"), ("y", "z"), ("z", "y")])).is_some());
    let refs = references(
        "use crate::{a::B, b, c::{D, e::F}};\nlet x = crate::d::f(); // crate::z\nsuper::g::h();",
        &["m".into()],
    );
    assert_eq!(refs, ["a", "b", "c", "d", "g"].iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
    assert_eq!(references("use super::inner::X;", &["m".into(), "n".into()]), BTreeSet::new());
}

/// The graph of top-level modules, and references through the crate root (`crate::Error`) with their file.
fn read_graph(src: &Path) -> (Graph, Vec<String>) {
    let mut graph = Graph::new();
    let mut root_refs = Vec::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).unwrap().with_extension("");
        let mut path: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
        if path.last().is_some_and(|l| l == "mod") {
            path.pop();
        }
        if path == ["lib"] {
            continue;
        }
        let module = path[0].clone();
        let text = std::fs::read_to_string(&file).unwrap();
        let name = rel.display().to_string();
        let deps = graph.entry(module.clone()).or_default();
        for target in references(&text, &path) {
            if target.starts_with(char::is_uppercase) {
                root_refs.push(format!("crate::{target} in {name}"));
            } else if target != module {
                deps.entry(target).or_insert_with(|| name.clone());
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        // Macros and the standard library's `crate::`-like paths are not modules of ours.
        deps.retain(|m, _| modules.contains(m));
    }
    (graph, root_refs)
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The top-level modules (or root items) a file at module `path` names with `crate::` or `super::`.
fn references(text: &str, path: &[String]) -> BTreeSet<String> {
    let code: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    loop {
        let at = match (rest.find("crate::"), rest.find("super::")) {
            (Some(c), Some(s)) => c.min(s),
            (Some(at), None) | (None, Some(at)) => at,
            (None, None) => break,
        };
        let before = rest[..at].chars().next_back();
        let after = &rest[at..];
        rest = &rest[at + 7..];
        // Skip identifiers that merely end in `crate` or `super` (`$crate::` counts as `crate::`).
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut tail = &after[7..];
        if after.starts_with("super::") {
            // Each `super::` climbs one level; a path that stays below the root stays in this module.
            let mut climbs = 1;
            while let Some(t) = tail.strip_prefix("super::") {
                tail = t;
                climbs += 1;
            }
            if climbs < path.len() {
                continue;
            }
        }
        if let Some(group) = tail.strip_prefix('{') {
            found.extend(group_heads(group));
        } else {
            found.insert(ident(tail).to_owned());
        }
    }
    found.retain(|s| !s.is_empty() && s != "self");
    found
}

/// The first segment of each path in a `{...}` group.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expect = true,
            c if expect && depth == 0 && !c.is_whitespace() => {
                heads.push(ident(&group[i..]).to_owned());
                expect = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// A cycle in `graph` as the list of its modules, the first repeated at the end; `None` if it has none.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|d| d.keys()) {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = stack.iter().position(|m| m == next).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(next, graph, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(c) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

//! The map holds: every file of `src/` imports only its own room and the
//! rooms its row of README's rooms table (section *Layout*) allows, and
//! no files of one folder import each other in a circle. The table is
//! read from README, so the map readers see is the one the test holds.
//! Test code (files named `*test*`, a file's trailing `#[cfg(test)]`
//! module) may reach further, for reference computations.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Room → the rooms it may import, from README's table.
fn rooms() -> BTreeMap<String, BTreeSet<String>> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let layout = readme
        .split("\n## Layout")
        .nth(1)
        .expect("README has a Layout section");
    let layout = layout.split("\n## ").next().unwrap_or(layout);
    let mut order: Vec<(String, String)> = Vec::new();
    for line in layout.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `room/` | owns | may use |
        if cells.len() < 5 || !cells[1].starts_with('`') || !cells[1].ends_with("/`") {
            continue;
        }
        let room = cells[1].trim_matches('`').trim_end_matches('/').to_owned();
        order.push((room, cells[3].to_owned()));
    }
    assert!(
        order.len() >= 9,
        "README's rooms table has {} rows",
        order.len()
    );
    let names: Vec<String> = order.iter().map(|(r, _)| r.clone()).collect();
    let mut table = BTreeMap::new();
    for (i, (room, may_use)) in order.iter().enumerate() {
        let allowed: BTreeSet<String> = if may_use.contains("every room below") {
            names[i + 1..].iter().cloned().collect()
        } else {
            may_use
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|s| s.trim_end_matches('/').to_owned())
                .collect()
        };
        for a in &allowed {
            assert!(names.contains(a), "{room} may use `{a}`, which is no room");
        }
        table.insert(room.clone(), allowed);
    }
    table
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A line of code: its number, its text, and how many inline modules
/// (`mod x86 { … }`) enclose it.
struct Line {
    number: usize,
    text: String,
    inline_modules: usize,
}

/// Braces that open and close blocks, outside string and char literals.
fn braces(line: &str) -> (usize, usize) {
    let (mut open, mut close, mut in_str) = (0, 0, false);
    let mut chars = line.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '\'' if !in_str && chars.peek().is_some_and(|n| *n == '{' || *n == '}') => {
                chars.next();
            }
            '{' if !in_str => open += 1,
            '}' if !in_str => close += 1,
            _ => {}
        }
        prev = c;
    }
    (open, close)
}

/// `mod name {`, perhaps with a visibility before it.
fn opens_inline_module(code: &str) -> bool {
    let Some(rest) = code.split("mod ").nth(1) else {
        return false;
    };
    let before = code.split("mod ").next().unwrap_or("").trim();
    let name = rest.trim_end().trim_end_matches('{').trim();
    rest.trim_end().ends_with('{')
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && (before.is_empty() || before.starts_with("pub"))
}

/// The file's lines that are not test code.
fn code_lines(path: &Path) -> Vec<Line> {
    let name = path.file_name().unwrap().to_string_lossy();
    if name.contains("test") {
        return Vec::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (i, l) in lines.iter().enumerate() {
        if l.trim() == "#[cfg(test)]" {
            let next = lines[i + 1..]
                .iter()
                .find(|l| !l.trim_start().starts_with("#["))
                .copied()
                .unwrap_or("");
            if next.trim_start().starts_with("mod ") && next.trim_end().ends_with('{') {
                end = i;
                break;
            }
        }
    }
    let mut out = Vec::new();
    // The brace depth at which each enclosing inline module opened.
    let (mut depth, mut modules) = (0usize, Vec::<usize>::new());
    for (i, l) in lines[..end].iter().enumerate() {
        let code = l.split("//").next().unwrap_or("");
        let (open, close) = braces(code);
        let opens_module = opens_inline_module(code);
        if opens_module {
            modules.push(depth);
        }
        if !l.trim_start().starts_with("//") {
            out.push(Line {
                number: i + 1,
                text: l.to_string(),
                inline_modules: modules.len() - usize::from(opens_module),
            });
        }
        depth = (depth + open).saturating_sub(close);
        while modules.last().is_some_and(|&d| d >= depth) {
            modules.pop();
        }
    }
    out
}

/// Every `word::word::…` path in `line` that starts with `first`.
fn paths_from<'a>(line: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut at = 0;
    while let Some(k) = line[at..].find(first) {
        let start = at + k;
        at = start + first.len();
        if line[..start]
            .chars()
            .next_back()
            .is_some_and(|c| is_ident(c) || c == ':')
        {
            continue;
        }
        let rest = &line[start..];
        let len = rest
            .find(|c: char| !(is_ident(c) || c == ':'))
            .unwrap_or(rest.len());
        let segments: Vec<&str> = rest[..len].split("::").filter(|s| !s.is_empty()).collect();
        if segments.len() > 1 && segments[0] == first {
            out.push(segments);
        }
    }
    out
}

#[test]
fn no_file_imports_from_a_room_its_row_does_not_allow() {
    let table = rooms();
    let src = Path::new(ROOT).join("src");
    let mut wrong = Vec::new();
    for (room, allowed) in &table {
        let mut files = Vec::new();
        rust_files(&src.join(room), &mut files);
        assert!(!files.is_empty(), "room {room} has no files");
        for file in files {
            for line in code_lines(&file) {
                for path in paths_from(&line.text, "crate") {
                    let to = path[1];
                    if to != room && !allowed.contains(to) {
                        let at = file.strip_prefix(ROOT).unwrap_or(&file).display();
                        wrong.push(format!("{at}:{}: {room} -> {to}", line.number));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports up or across the rooms table:\n{}",
        wrong.join("\n")
    );
}

/// The node a file is within its folder: its own name, or for a file
/// in a subfolder that subfolder's name.
fn node(folder: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(folder).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

#[test]
fn no_files_of_one_folder_import_each_other_in_a_circle() {
    let src = Path::new(ROOT).join("src");
    let mut folders = vec![src.clone()];
    let mut circles = Vec::new();
    while let Some(folder) = folders.pop() {
        let mut files = Vec::new();
        rust_files(&folder, &mut files);
        let subfolders: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        folders.extend(subfolders);
        // Module path of the folder below `src/`.
        let module: Vec<String> = folder
            .strip_prefix(&src)
            .unwrap()
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let nodes: BTreeSet<String> = files
            .iter()
            .map(|f| node(&folder, f))
            .filter(|n| n != "mod" && n != "lib" && n != "main")
            .collect();
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in &files {
            let from = node(&folder, file);
            if !nodes.contains(&from) {
                continue;
            }
            // How deep the file sits below the folder: `super` from a
            // file directly in it names the folder.
            let depth = file.strip_prefix(&folder).unwrap().components().count() - 1
                + usize::from(!file.ends_with("mod.rs"));
            for line in code_lines(file) {
                let mut targets = Vec::new();
                for path in paths_from(&line.text, "crate") {
                    let inside = path.len() > module.len() + 1
                        && path[1..=module.len()]
                            .iter()
                            .zip(&module)
                            .all(|(a, b)| a == b);
                    if inside {
                        targets.push(path[module.len() + 1].to_owned());
                    }
                }
                for path in paths_from(&line.text, "super") {
                    let ups = path.iter().take_while(|s| **s == "super").count();
                    if ups == depth + line.inline_modules && path.len() > ups {
                        targets.push(path[ups].to_owned());
                    }
                }
                for to in targets {
                    if to != from && nodes.contains(&to) {
                        edges.entry(from.clone()).or_default().insert(to);
                    }
                }
            }
        }
        for circle in find_circles(&edges) {
            let at = folder.strip_prefix(ROOT).unwrap_or(&folder).display();
            circles.push(format!("{at}: {}", circle.join(" -> ")));
        }
    }
    assert!(
        circles.is_empty(),
        "files that import each other:\n{}",
        circles.join("\n")
    );
}

/// One circle through each strongly connected group of more than one node.
fn find_circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut circles = Vec::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for start in edges.keys() {
        if reported.contains(start) {
            continue;
        }
        // Depth-first from `start` back to it.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let mut circle = path.clone();
                    circle.push(start.clone());
                    reported.extend(path.iter().cloned());
                    circles.push(circle);
                    stack.clear();
                    break;
                }
                if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    circles
}

#[test]
fn the_checks_see_what_they_should() {
    assert_eq!(
        paths_from("use crate::engine::{self, Event}; x::crate::no", "crate"),
        vec![vec!["crate", "engine"]]
    );
    assert_eq!(
        paths_from("use super::super::reduce::x86::hsum256;", "super"),
        vec![vec!["super", "super", "reduce", "x86", "hsum256"]]
    );
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(find_circles(&edges), vec![vec!["a", "b", "c", "a"]]);
    for (line, opens) in [
        ("pub(super) mod x86 {", true),
        ("mod tests {", true),
        ("mod tests;", false),
        ("let mode = 1; // mod x {", false),
        ("fn f() {", false),
    ] {
        assert_eq!(
            opens_inline_module(line.split("//").next().unwrap()),
            opens,
            "{line}"
        );
    }
    let rooms = rooms();
    assert!(rooms["registry"].contains("engine"));
    assert!(!rooms["registry"].contains("backend"));
    assert!(rooms["telemetry"].is_empty() && rooms["store"].is_empty());
}

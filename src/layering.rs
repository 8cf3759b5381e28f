//! The layering written in ARCHITECTURE.md, held by a test: every `crate::…` path in
//! `src/` must be one the table lets its room use.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// The rooms in the table's order (bottom up), each with the rooms it may use.
    struct Table {
        order: Vec<String>,
        may_use: BTreeMap<String, BTreeSet<String>>,
        /// Uses not yet moved: (room, used room).
        exceptions: BTreeSet<(String, String)>,
    }

    fn ticked(cell: &str) -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    fn read_table(doc: &str) -> Table {
        let section = doc
            .split("## Rooms and what they may use")
            .nth(1)
            .expect("ARCHITECTURE.md has a section 'Rooms and what they may use'");
        let mut order: Vec<String> = vec![];
        let mut may_use = BTreeMap::new();
        for line in section.lines() {
            if line.starts_with("## ") {
                break;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() != 4 || cells[1] == "room" || cells[1].starts_with("---") {
                continue;
            }
            let room = ticked(cells[1]);
            assert_eq!(room.len(), 1, "one room per row: {line}");
            let room = room[0].clone();
            let cell = cells[2];
            // "every room above but `x`" and "every room": the rooms listed so far.
            let allowed: BTreeSet<String> = if let Some(rest) = cell.strip_prefix("every room") {
                let but: BTreeSet<String> = ticked(rest).into_iter().collect();
                order
                    .iter()
                    .filter(|r| !but.contains(*r))
                    .cloned()
                    .collect()
            } else {
                ticked(cell).into_iter().collect()
            };
            for a in &allowed {
                assert!(
                    order.contains(a),
                    "ARCHITECTURE.md: `{room}` may use `{a}`, which is not listed above it: \
                     the table must be a layering, without circles"
                );
            }
            assert!(!order.contains(&room), "`{room}` listed twice");
            order.push(room.clone());
            may_use.insert(room, allowed);
        }
        let mut exceptions = BTreeSet::new();
        if let Some(list) = section
            .split("<!-- layering-exceptions -->")
            .nth(1)
            .and_then(|s| s.split("<!-- /layering-exceptions -->").next())
        {
            for line in list.lines().filter(|l| l.starts_with("- ")) {
                let names = ticked(line);
                assert!(names.len() >= 2, "an exception names two rooms: {line}");
                exceptions.insert((names[0].clone(), names[1].clone()));
            }
        }
        Table {
            order,
            may_use,
            exceptions,
        }
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

    /// The room a file belongs to: the first part of its path under `src/`.
    fn room_of(rel: &Path) -> String {
        let first = rel
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy()
            .to_string();
        let room = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        if room == "lib" { "main".into() } else { room }
    }

    /// The rooms a line names through `crate::`, with `crate::{a, b::c}` groups opened.
    fn used_rooms(line: &str) -> Vec<String> {
        const PREFIX: &str = "crate::";
        let mut out = vec![];
        let mut rest = line;
        while let Some(at) = rest.find(PREFIX) {
            let before = &rest[..at];
            let after = &rest[at + PREFIX.len()..];
            rest = after;
            // `$crate::` in a macro names this crate from outside: still a use, but of the
            // macro's own room (the macro's path follows and is read as any other).
            let is_ident_end = before
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            if is_ident_end {
                continue;
            }
            if let Some(group) = after.strip_prefix('{') {
                let mut depth = 0;
                let mut name = String::new();
                let mut at_start = true;
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => at_start = true,
                        c if at_start && (c.is_alphanumeric() || c == '_') => name.push(c),
                        _ if !name.is_empty() => {
                            out.push(std::mem::take(&mut name));
                            at_start = false;
                        }
                        _ => {}
                    }
                }
                if !name.is_empty() {
                    out.push(name);
                }
                continue;
            }
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
        out
    }

    #[test]
    fn a_room_uses_only_what_the_table_allows() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
        let table = read_table(&doc);
        let mut files = vec![];
        rust_files(&root.join("src"), &mut files);
        files.sort();
        let this_file = Path::new(file!());
        let mut broken = vec![];
        let mut seen_exceptions = BTreeSet::new();
        let mut rooms_found = BTreeSet::new();
        for file in &files {
            let rel = file.strip_prefix(root.join("src")).expect("under src");
            if root
                .join("src")
                .join(rel)
                .ends_with(this_file.file_name().expect("name"))
            {
                continue;
            }
            let room = room_of(rel);
            rooms_found.insert(room.clone());
            let allowed = table.may_use.get(&room).unwrap_or_else(|| {
                panic!(
                    "src/{}: room `{room}` is not in ARCHITECTURE.md's table",
                    rel.display()
                )
            });
            let text = std::fs::read_to_string(file).expect("read");
            for (n, line) in text.lines().enumerate() {
                for used in used_rooms(line) {
                    if used == room || allowed.contains(&used) {
                        continue;
                    }
                    if !table.order.contains(&used) {
                        // `crate::SomeType` re-exported at the root, or a macro: not a room.
                        if used.chars().next().is_some_and(char::is_lowercase) {
                            broken.push(format!(
                                "src/{}:{}: `{used}` is not a room in the table",
                                rel.display(),
                                n + 1
                            ));
                        }
                        continue;
                    }
                    if table.exceptions.contains(&(room.clone(), used.clone())) {
                        seen_exceptions.insert((room.clone(), used.clone()));
                        continue;
                    }
                    broken.push(format!(
                        "src/{}:{}: `{room}` uses `{used}`; the table lets `{room}` use only {}",
                        rel.display(),
                        n + 1,
                        if allowed.is_empty() {
                            "nothing".to_string()
                        } else {
                            allowed.iter().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ));
                }
            }
        }
        for gone in table.exceptions.difference(&seen_exceptions) {
            broken.push(format!(
                "ARCHITECTURE.md lists `{}` → `{}` as not yet moved, but no such use is left: \
                 take it off the list",
                gone.0, gone.1
            ));
        }
        for room in &table.order {
            if !rooms_found.contains(room) {
                broken.push(format!(
                    "the table names `{room}`, which has no file in src/"
                ));
            }
        }
        assert!(
            broken.is_empty(),
            "{} uses break the layering:\n{}",
            broken.len(),
            broken.join("\n")
        );
    }

    #[test]
    fn groups_and_macros_are_read() {
        assert_eq!(
            used_rooms("use crate::{db::Db, error::{AppError, Result}};"),
            vec!["db", "error"]
        );
        assert_eq!(
            used_rooms("x: crate::a::B, y: $crate::c::d, notcrate::e"),
            vec!["a", "c"]
        );
    }

    #[test]
    fn a_circle_in_the_table_is_refused() {
        let doc = "## Rooms and what they may use\n\n| room | may use |\n|---|---|\n\
                   | `a` | `b` |\n| `b` | `a` |\n";
        let r = std::panic::catch_unwind(|| read_table(doc));
        assert!(r.is_err());
    }
}

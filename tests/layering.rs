//! The layering rules of `src/lib.rs` and docs/ARCHITECTURE.md, checked on the source
//! (issue 12): a module uses only the modules below it; only `io`, `capi` and `cli` have
//! `unsafe` or `libc`; nothing below `api` reads a clock, sleeps, spawns a thread or touches
//! files and sockets (the sans-IO core), and `api` waits on the driver instead of sleeping.
//! Comments and string literals are ignored, so a
//! doc link to a higher module is fine; code is not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use (besides itself).
const ALLOWED: &[(&str, &[&str])] = &[
    ("time", &[]),
    ("wire", &[]),
    ("crypto", &[]),
    ("storage", &[]),
    ("registry", &[]),
    ("cc", &["time", "registry"]),
    ("sched", &["time", "registry"]),
    ("pm", &["time", "wire", "crypto", "registry"]),
    ("tcp", &["time", "cc", "storage", "wire", "registry"]),
    (
        "mptcp",
        &[
            "time", "wire", "crypto", "storage", "registry", "cc", "sched", "pm", "tcp",
        ],
    ),
    ("listen", &["time", "wire", "crypto", "tcp"]),
    (
        "stack",
        &[
            "time", "wire", "crypto", "storage", "registry", "cc", "sched", "pm", "tcp", "mptcp",
            "listen",
        ],
    ),
    (
        "fuzzing",
        &[
            "time", "wire", "crypto", "storage", "registry", "cc", "sched", "pm", "tcp", "mptcp",
            "listen", "stack",
        ],
    ),
    (
        "api",
        &[
            "time", "wire", "crypto", "storage", "registry", "cc", "sched", "pm", "tcp", "mptcp",
            "listen", "stack",
        ],
    ),
    (
        "io",
        &[
            "time", "wire", "crypto", "storage", "registry", "cc", "sched", "pm", "tcp", "mptcp",
            "listen", "stack", "api",
        ],
    ),
    (
        "capi",
        &[
            "time", "wire", "crypto", "storage", "registry", "cc", "sched", "pm", "tcp", "mptcp",
            "listen", "stack", "api", "io",
        ],
    ),
    (
        "cli",
        &[
            "time", "wire", "crypto", "storage", "registry", "cc", "sched", "pm", "tcp", "mptcp",
            "listen", "stack", "api", "io",
        ],
    ),
    (
        "testbed",
        &[
            "time", "wire", "crypto", "storage", "registry", "cc", "sched", "pm", "tcp", "mptcp",
            "listen", "stack", "api", "io", "cli",
        ],
    ),
];

/// Modules that may hold `unsafe` and call `libc`.
const UNSAFE_OK: &[&str] = &["io", "capi", "cli"];
/// The sans-IO core: no clock, no sleeping, no threads, no files or sockets.
const SANS_IO: &[&str] = &[
    "time", "wire", "crypto", "storage", "registry", "registry", "cc", "sched", "pm", "tcp",
    "mptcp", "listen", "stack", "fuzzing",
];
const IO_WORDS: &[&str] = &[
    "std::time::Instant",
    "std::time::SystemTime",
    "SystemTime::now",
    "thread::sleep",
    "thread::spawn",
    "std::thread",
    "std::fs",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "std::net::UdpSocket",
    "std::os::",
    "std::process",
];

/// The code of a Rust file with comments, string and char literals blanked out.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // raw string r"..." / r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push_str("\"\"");
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' {
            // a char literal ('x', '\n', '\'', '\u{..}'); otherwise a lifetime
            if b.get(i + 1) == Some(&b'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            } else if b.get(i + 2) == Some(&b'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            // keep multi-byte UTF-8 intact
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules `code` (of a file `depth` directories below `src/`, 0 for
/// `src/x.rs` and `src/x/mod.rs`) names through `crate::` or `super::`.
fn used_modules(code: &str, depth: usize) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(p) = rest.find("crate::") {
        let before_ok = p == 0 || {
            let prev = rest.as_bytes()[p - 1];
            !(prev.is_ascii_alphanumeric() || prev == b'_')
        };
        rest = &rest[p + "crate::".len()..];
        if !before_ok {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // use crate::{a::b, c, d::{e, f}}: the names at depth 1
            let mut level = 1;
            let mut start = true;
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => level += 1,
                    '}' => {
                        level -= 1;
                        if level == 0 {
                            break;
                        }
                    }
                    ',' if level == 1 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start && level == 1 => {
                        start = false;
                        let id = ident_at(&group[k..]);
                        if !id.is_empty() {
                            out.insert(id.to_string());
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let id = ident_at(rest);
            if !id.is_empty() {
                out.insert(id.to_string());
            }
        }
    }
    // `super::` chains that climb to the crate root
    let mut rest = code;
    while let Some(p) = rest.find("super::") {
        let mut r = &rest[p..];
        let mut n = 0;
        while let Some(x) = r.strip_prefix("super::") {
            n += 1;
            r = x;
        }
        if n > depth {
            let id = ident_at(r);
            if !id.is_empty() && id != "super" {
                out.insert(id.to_string());
            }
        }
        rest = &rest[p + "super::".len() * n.max(1)..];
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// (top-level module, depth below it) of a file under `src/`; `None` for the crate root and
/// the binaries.
fn module_of(rel: &Path) -> Option<(String, usize)> {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [f] if f == "lib.rs" => None,
        [f] => Some((f.trim_end_matches(".rs").to_string(), 0)),
        [d, ..] if d == "bin" => None,
        [d, rest @ ..] => {
            let depth = if rest.last().is_some_and(|f| f == "mod.rs") {
                rest.len() - 1
            } else {
                rest.len()
            };
            Some((d.clone(), depth))
        }
        [] => None,
    }
}

/// Every rule broken by `code`, a file of module `module` at `depth`.
fn violations(module: &str, depth: usize, code: &str) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut v = Vec::new();
    let Some(ok) = allowed.get(module) else {
        return vec![format!("module `{module}` has no row in ALLOWED: add it")];
    };
    for m in used_modules(code, depth) {
        if m != module && !ok.contains(&m.as_str()) && allowed.contains_key(m.as_str()) {
            v.push(format!(
                "`{module}` uses `crate::{m}`, which is not below it"
            ));
        }
    }
    let words = |w: &str| {
        code.match_indices(w).any(|(p, _)| {
            let prev = code[..p].chars().next_back();
            let next = code[p + w.len()..].chars().next();
            !prev.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    if !UNSAFE_OK.contains(&module) {
        if words("unsafe") {
            v.push(format!("`{module}` has `unsafe`"));
        }
        if code.contains("libc::") {
            v.push(format!("`{module}` calls `libc`"));
        }
    }
    if module == "api" && code.contains("thread::sleep") {
        // blocking calls wait on the stack's condition variable, woken after each round
        v.push(format!(
            "`{module}` sleeps instead of waiting for the driver"
        ));
    }
    if SANS_IO.contains(&module) {
        for w in IO_WORDS {
            if code.contains(w) {
                v.push(format!("`{module}` (sans-IO) uses `{w}`"));
            }
        }
    }
    v
}

#[test]
fn every_module_keeps_to_its_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 30,
        "found only {} files under src/",
        files.len()
    );
    let mut bad = Vec::new();
    let mut seen = BTreeSet::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        let Some((module, depth)) = module_of(rel) else {
            continue;
        };
        seen.insert(module.clone());
        let text = std::fs::read_to_string(&f).expect("read source");
        // unit tests may use what they like (threads, clocks): check the code above them
        let code = code_only(&text);
        let code = match code.find("#[cfg(test)]") {
            Some(p) => &code[..p],
            None => &code[..],
        };
        for v in violations(&module, depth, code) {
            bad.push(format!("{}: {v}", rel.display()));
        }
    }
    for (m, _) in ALLOWED {
        assert!(
            seen.contains(*m),
            "ALLOWED names `{m}`, which is not a module"
        );
    }
    assert!(bad.is_empty(), "layering broken:\n{}", bad.join("\n"));
}

/// The checker itself catches each kind of break (so the test above can fail).
#[test]
fn the_checker_sees_each_kind_of_break() {
    let v = violations("wire", 0, "use crate::tcp::TcpOptions;");
    assert_eq!(v.len(), 1, "{v:?}");
    let v = violations("wire", 1, "use super::super::tcp::X;");
    assert_eq!(v.len(), 1, "{v:?}");
    let v = violations("wire", 1, "use super::ip::X;");
    assert!(v.is_empty(), "{v:?}");
    let v = violations("tcp", 0, "use crate::{time::Instant, mptcp::{A, B}, cc};");
    assert_eq!(v, vec!["`tcp` uses `crate::mptcp`, which is not below it"]);
    let v = violations("mptcp", 0, "fn f() { unsafe { g() } }");
    assert_eq!(v, vec!["`mptcp` has `unsafe`"]);
    let v = violations("stack", 0, "let t = std::time::Instant::now();");
    assert_eq!(v, vec!["`stack` (sans-IO) uses `std::time::Instant`"]);
    let v = violations(
        "io",
        0,
        "let t = std::time::Instant::now(); unsafe { libc::poll() }",
    );
    assert!(v.is_empty(), "{v:?}");
    // comments and strings do not count; code does
    let code = code_only(
        "/// see [`crate::api::X`]\n// crate::io\nlet s = \"crate::cli\"; let r = r#\"unsafe\"#; let c = '\"'; use crate::stack;",
    );
    let v = violations("wire", 0, &code);
    assert_eq!(v, vec!["`wire` uses `crate::stack`, which is not below it"]);
    let v = violations("api", 0, "std::thread::sleep(d);");
    assert_eq!(v, vec!["`api` sleeps instead of waiting for the driver"]);
    let v = violations("nosuch", 0, "");
    assert_eq!(v.len(), 1);
}

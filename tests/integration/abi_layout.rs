//! `include/rustgun.h` against `rustgun_abi`: compiles a small C program that includes the header and
//! prints the size, alignment and offset of every struct and field and the value of every constant, then
//! compares each number with the Rust side. The C program also assigns every function-pointer field to a
//! pointer spelled from the Rust signature, so a parameter of the wrong type fails to compile (`-Werror`).
//!
//! A completeness guard reads `crates/rustgun-abi/src/lib.rs` and fails if a `pub const RG_*`, a
//! `pub struct Rg*` or a `pub` field exists there that the tables below do not check.

use core::mem::{align_of, offset_of, size_of};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use rustgun_abi::*;

/// One number to compare: `key` names it in messages, `c_expr` computes it in C, `rust` is the Rust value.
struct Check {
    key: String,
    c_expr: String,
    rust: i128,
}

/// The size of a field, found through a non-capturing closure `|s| &s.field` (no unsafe needed).
fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// Every struct: Rust type, C name, and all its fields (same names on both sides).
macro_rules! structs {
    ($checks:ident, $covered:ident; $($rust:ident as $c:literal { $($field:ident),* $(,)? })*) => {$(
        $covered.push((stringify!($rust), vec![$(stringify!($field)),*]));
        $checks.push(Check {
            key: format!("sizeof({})", $c),
            c_expr: format!("sizeof({})", $c),
            rust: size_of::<$rust>() as i128,
        });
        $checks.push(Check {
            key: format!("alignof({})", $c),
            c_expr: format!("offsetof(rg_align_{}, t)", $c),
            rust: align_of::<$rust>() as i128,
        });
        $(
            $checks.push(Check {
                key: format!("offsetof({}, {})", $c, stringify!($field)),
                c_expr: format!("offsetof({}, {})", $c, stringify!($field)),
                rust: offset_of!($rust, $field) as i128,
            });
            $checks.push(Check {
                key: format!("sizeof({}.{})", $c, stringify!($field)),
                c_expr: format!("sizeof((({} *)0)->{})", $c, stringify!($field)),
                rust: field_size::<$rust, _>(|s| &s.$field) as i128,
            });
        )*
    )*};
}

/// Every constant, with the same name on both sides.
macro_rules! constants {
    ($checks:ident, $covered:ident; $($name:ident),* $(,)?) => {$(
        $covered.push(stringify!($name));
        $checks.push(Check {
            key: stringify!($name).to_string(),
            c_expr: stringify!($name).to_string(),
            rust: $name as i128,
        });
    )*};
}

/// Every type that only crosses as a pointer or a function pointer: its size (and the C name's size).
macro_rules! scalars {
    ($checks:ident; $($rust:ty as $c:literal),* $(,)?) => {$(
        $checks.push(Check {
            key: format!("sizeof({})", $c),
            c_expr: format!("sizeof({})", $c),
            rust: size_of::<$rust>() as i128,
        });
    )*};
}

/// The start of the C program. `rg_layout_signatures` is compiled, never run: it assigns every
/// function-pointer field and type of the header to a pointer spelled here from the Rust signature in
/// `rustgun_abi`, so with `-Werror` a parameter or return type that differs fails the build.
const C_PRELUDE: &str = r#"#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include "rustgun.h"

void rg_layout_signatures(rg_body_source *bs, rg_host *h, rg_app *a, rg_loop *l);
void rg_layout_signatures(rg_body_source *bs, rg_host *h, rg_app *a, rg_loop *l) {
    /* RgBodySource */
    int64_t (*next)(void *, uint8_t *, size_t) = bs->next;
    void (*close)(void *) = bs->close;
    /* RgHost */
    int64_t (*read_body)(rg_call *, uint8_t *, size_t) = h->read_body;
    int32_t (*start_response)(rg_call *, uint32_t, rg_str, const rg_header *, size_t, uint32_t) =
        h->start_response;
    int32_t (*write)(rg_call *, const uint8_t *, size_t) = h->write;
    int32_t (*set_body)(rg_call *, const rg_body_source *) = h->set_body;
    int32_t (*environ)(rg_call *, const rg_header **, size_t *) = h->environ;
    void (*log)(int32_t, rg_str) = h->log;
    int64_t (*send_file)(rg_call *, int32_t, uint64_t, uint64_t) = h->send_file;
    int32_t (*accept_websocket)(rg_call *, rg_str, const rg_header *, size_t) = h->accept_websocket;
    int32_t (*ws_send)(rg_call *, uint32_t, const uint8_t *, size_t) = h->ws_send;
    int32_t (*ws_close)(rg_call *, uint32_t, rg_str) = h->ws_close;
    int32_t (*complete)(rg_call *, int32_t) = h->complete;
    int32_t (*post)(void (*)(void *), void *) = h->post;
    int32_t (*trailers)(rg_call *, const rg_header *, size_t) = h->trailers;
    rg_post_fn post_fn = bs->close;
    void (*post_fn_u)(void *) = post_fn;
    int32_t (*step)(void *) = l->step;
    /* RgApp and the RgInitFn / RgHandleFn / RgShutdownFn types */
    int32_t (*init)(const rg_host *, rg_init *, void **) = a->init;
    int32_t (*handle)(void *, const rg_request *) = a->handle;
    void (*shutdown)(void *) = a->shutdown;
    int32_t (*preload)(const rg_host *, rg_init *) = a->preload;
    void (*on_event)(void *, const rg_event *) = a->on_event;
    rg_event_fn on_event_t = on_event;
    void (*on_event_u)(void *, const rg_event *) = on_event_t;
    int32_t (*run)(void *, const rg_loop *) = a->run;
    rg_run_fn run_t = run;
    int32_t (*run_u)(void *, const rg_loop *) = run_t;
    rg_preload_fn preload_t = preload;
    int32_t (*preload_u)(const rg_host *, rg_init *) = preload_t;
    rg_init_fn init_t = init;
    rg_handle_fn handle_t = handle;
    rg_shutdown_fn shutdown_t = shutdown;
    int32_t (*init_u)(const rg_host *, rg_init *, void **) = init_t;
    int32_t (*handle_u)(void *, const rg_request *) = handle_t;
    void (*shutdown_u)(void *) = shutdown_t;
    (void)next; (void)close; (void)read_body; (void)start_response; (void)write; (void)set_body;
    (void)environ; (void)log; (void)send_file; (void)init_u; (void)handle_u; (void)shutdown_u;
    (void)preload_u; (void)accept_websocket; (void)ws_send; (void)ws_close; (void)complete;
    (void)on_event_u; (void)post; (void)trailers; (void)post_fn_u; (void)step; (void)run_u;
}

"#;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory under the system temp dir, removed on drop unless the test failed.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let name = format!("rustgun-abi-layout-{}-{nanos}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("create a temp dir for the layout check");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn c_program(checks: &[Check], c_structs: &[&str]) -> String {
    let mut src = String::from(C_PRELUDE);
    // Alignment probes (C99 has no _Alignof): the offset of a field placed after one char.
    for n in c_structs {
        writeln!(src, "typedef struct {{ char c; {n} t; }} rg_align_{n};").unwrap();
    }
    src.push_str("\nint main(void) {\n");
    for Check { key, c_expr, .. } in checks {
        writeln!(src, "    printf(\"%s=%lld\\n\", \"{key}\", (long long)({c_expr}));").unwrap();
    }
    src.push_str("    return 0;\n}\n");
    src
}

/// Compiles and runs the C program; returns its `key=value` lines.
fn run_c(dir: &Path, source: &str) -> BTreeMap<String, i128> {
    let c_file = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&c_file, source).expect("write layout.c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .args(["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg("-I")
        .arg(repo_root().join("include"))
        .arg(&c_file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(
        out.status.success(),
        "include/rustgun.h: the layout program failed to compile with `{cc}` (a header error or a \
         function-pointer signature that differs from rustgun_abi); source kept in {}\n{}",
        c_file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("run the layout program");
    assert!(run.status.success(), "the layout program failed: {:?}", run.status);
    String::from_utf8(run.stdout)
        .expect("layout output is UTF-8")
        .lines()
        .map(|line| {
            let (key, value) = line.rsplit_once('=').expect("key=value");
            (key.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

/// Names declared in the Rust ABI source (top-level items only: they start at column 0 in that file).
#[derive(Default)]
struct RustDecls {
    consts: Vec<String>,
    types: Vec<String>,
    /// Each `pub struct` with its `pub` fields.
    structs: Vec<(String, Vec<String>)>,
}

fn declared_in_rust_source() -> RustDecls {
    let path = repo_root().join("crates/rustgun-abi/src/lib.rs");
    let text = std::fs::read_to_string(path).expect("read crates/rustgun-abi/src/lib.rs");
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut decls = RustDecls::default();
    let mut in_struct = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("pub const ") {
            decls.consts.push(ident(rest));
        } else if let Some(rest) = line.strip_prefix("pub type ") {
            decls.types.push(ident(rest));
        } else if let Some(rest) = line.strip_prefix("pub struct ") {
            decls.structs.push((ident(rest), Vec::new()));
            in_struct = line.trim_end().ends_with('{');
        } else if in_struct {
            if line.starts_with('}') {
                in_struct = false;
            } else if let Some(rest) = line.trim_start().strip_prefix("pub ") {
                decls.structs.last_mut().unwrap().1.push(ident(rest));
            }
        }
    }
    decls
}

#[test]
fn c_header_matches_rust_abi() {
    let mut checks = Vec::new();
    let mut covered_structs: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut covered_consts: Vec<&str> = Vec::new();

    structs! { checks, covered_structs;
        RgStr as "rg_str" { ptr, len }
        RgHeader as "rg_header" { name, value }
        RgRequest as "rg_request" {
            size, flags, host, call, method, target, path_raw, path, query, version, headers,
            headers_len, content_length, peer_addr, server_addr, peer_port, server_port, worker_id,
            url_scheme,
        }
        RgBodySource as "rg_body_source" { state, next, close }
        RgHost as "rg_host" {
            size, abi_major, abi_minor, read_body, start_response, write, set_body, environ, log,
            send_file, accept_websocket, ws_send, ws_close, complete, post, trailers,
        }
        RgInit as "rg_init" {
            size, worker_id, args, args_len, flags, error_len, error_buf, error_cap,
        }
        RgApp as "rg_app" {
            magic, abi_major, abi_minor, size, flags, init, handle, shutdown, preload, on_event, run,
        }
        RgLoop as "rg_loop" { size, fd, host, step }
        RgEvent as "rg_event" { size, kind, call, code, data }
        RgHookCtx as "rg_hook_ctx" {
            size, hook, master_pid, worker_pid, worker_id, worker_age, workers, old_workers,
        }
        RgHooks as "rg_hooks" { magic, version, size, load, defined, call }
    }
    let covered_types =
        ["RgInitFn", "RgHandleFn", "RgShutdownFn", "RgPreloadFn", "RgEventFn", "RgRunFn", "RgPostFn"];
    // RgCall is opaque: zero-sized in Rust, an incomplete type in C; only pointers to it cross.
    covered_structs.push(("RgCall", Vec::new()));
    assert_eq!(size_of::<RgCall>(), 0, "RgCall must stay an opaque, zero-sized type");
    scalars! { checks;
        *mut RgCall as "rg_call *",
        RgInitFn as "rg_init_fn",
        RgHandleFn as "rg_handle_fn",
        RgShutdownFn as "rg_shutdown_fn",
        RgPreloadFn as "rg_preload_fn",
        RgEventFn as "rg_event_fn",
        RgRunFn as "rg_run_fn",
        RgPostFn as "rg_post_fn",
    }

    constants! { checks, covered_consts;
        RG_MAGIC, RG_ABI_MAJOR, RG_ABI_MINOR,
        RG_OK, RG_ERROR, RG_E_PANIC, RG_E_STATE, RG_E_INVALID, RG_E_CLOSED, RG_E_IO, RG_E_AGAIN,
        RG_PENDING, RG_LOOP_DONE,
        RG_APP_THREAD_SAFE, RG_APP_ASYNC, RG_APP_FLAGS,
        RG_REQ_MULTITHREAD, RG_REQ_MULTIPROCESS, RG_REQ_RUN_ONCE, RG_REQ_HAS_BODY, RG_REQ_CHUNKED,
        RG_REQ_WEBSOCKET, RG_EV_WS_OPEN, RG_EV_WS_MESSAGE, RG_EV_WS_CLOSE, RG_EV_WRITABLE,
        RG_EV_READABLE, RG_EV_DISCONNECT,
        RG_WS_TEXT, RG_WS_BINARY,
        RG_RESPONSE_REPLACE, RG_RESPONSE_FLAGS,
        RG_LOG_ERROR, RG_LOG_WARN, RG_LOG_INFO, RG_LOG_DEBUG,
        RG_HOOKS_VERSION, RG_HOOK_ON_STARTING, RG_HOOK_ON_RELOAD, RG_HOOK_WHEN_READY, RG_HOOK_PRE_FORK,
        RG_HOOK_POST_FORK, RG_HOOK_POST_WORKER_INIT, RG_HOOK_WORKER_INT, RG_HOOK_WORKER_ABORT,
        RG_HOOK_PRE_EXEC, RG_HOOK_PRE_REQUEST, RG_HOOK_POST_REQUEST, RG_HOOK_CHILD_EXIT,
        RG_HOOK_WORKER_EXIT, RG_HOOK_NWORKERS_CHANGED, RG_HOOK_ON_EXIT,
    }

    // Completeness: everything the Rust ABI declares is checked above.
    let rust = declared_in_rust_source();
    let mut missing = Vec::new();
    for name in &rust.types {
        if !covered_types.contains(&name.as_str()) {
            missing.push(format!("type {name}"));
        }
    }
    for name in &rust.consts {
        if !covered_consts.contains(&name.as_str()) {
            missing.push(format!("constant {name}"));
        }
    }
    for (name, fields) in &rust.structs {
        match covered_structs.iter().find(|(s, _)| s == name) {
            None => missing.push(format!("struct {name}")),
            Some((_, covered)) => {
                for field in fields {
                    if !covered.contains(&field.as_str()) {
                        missing.push(format!("field {name}::{field}"));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "tests/integration/abi_layout.rs does not check: {}", missing.join(", "));
    assert!(
        rust.structs.len() >= 8 && rust.consts.len() >= 21 && rust.types.len() >= 3,
        "the scan of crates/rustgun-abi/src/lib.rs found too little"
    );

    // Compare with C.
    let dir = TempDir::new();
    let c_structs: Vec<&str> =
        checks.iter().filter_map(|c| c.key.strip_prefix("alignof(")?.strip_suffix(')')).collect();
    let c = run_c(&dir.0, &c_program(&checks, &c_structs));
    let mut mismatches = Vec::new();
    for Check { key, rust, .. } in &checks {
        match c.get(key) {
            None => mismatches.push(format!("{key}: missing from the C output")),
            Some(v) if v != rust => mismatches.push(format!("{key}: C says {v}, Rust says {rust}")),
            Some(_) => {}
        }
    }
    assert!(
        mismatches.is_empty(),
        "include/rustgun.h disagrees with rustgun_abi:\n  {}",
        mismatches.join("\n  ")
    );
}

/*
 * rustgun.h -- the rustgun application ABI, version 1.3, for C and C++.
 *
 * This header declares, by hand, exactly what crates/rustgun-abi/src/lib.rs declares in Rust: the same
 * constants with the same values, the same structs with the same fields in the same order, the same
 * function-pointer types. The Rust file is the contract; the test suite compiles this header and checks
 * that every size, offset and constant agrees with it. docs/abi.md explains the rules in prose.
 *
 * The contract in short:
 *  - The app exports one descriptor (rg_app) under the symbol named on the command line
 *    (`rustgun ./libapp.so:app`). Its frozen head (magic, abi_major, abi_minor, size) is checked before any
 *    app code runs: same major, app minor <= host minor, size at least the 1.0 size.
 *  - The server never links the app against its own symbols: it hands the app a table of host functions
 *    (rg_host) in every request (and at init).
 *  - Memory is BORROWED FOR THE LENGTH OF A CALL in both directions and never freed on the other side:
 *    the app copies what it wants to keep; the server copies headers and body bytes it is given.
 *  - Integers, not enums or bool, carry every choice, so an out-of-range value is an error, not UB.
 *  - A minor version may append fields at the end of a struct (guarded by its `size`); a major breaks.
 *  - No unwinding crosses: every function on either side returns a status code. A C++ app must not let
 *    an exception escape any function it hands to the server.
 *
 * Only <stdint.h> and <stddef.h> are needed. C99 or later, or any C++.
 */
#ifndef RUSTGUN_H
#define RUSTGUN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ---------------------------------------------------------------------------------------- */

/* "RGUN" read as a little-endian uint32_t: the first field of every descriptor. */
#define RG_MAGIC 0x4E554752u
/* Incompatible changes bump the major version: the server refuses an app with another major. */
#define RG_ABI_MAJOR 1
/* Compatible additions bump the minor version: the server refuses an app built for a newer minor. */
#define RG_ABI_MINOR 3

/* ---- Status codes returned by host functions and app entry points (int32_t) ------------------------ */

/* Success. */
#define RG_OK 0
/* The app failed (generic). As a `handle` result: a 500 if no response has started, else the connection
 * is aborted. */
#define RG_ERROR (-1)
/* A Rust panic was caught at the boundary. */
#define RG_E_PANIC (-2)
/* A call made out of order: a second start_response without RG_RESPONSE_REPLACE, a replace after the
 * first body byte left, a write before start_response. */
#define RG_E_STATE (-3)
/* An invalid argument: a status outside 100..=999, a header name or value with CR, LF or NUL, an invalid
 * header name. */
#define RG_E_INVALID (-4)
/* The client went away; nothing more can be sent on this connection. */
#define RG_E_CLOSED (-5)
/* Reading the request body failed: the client timed out, closed early or sent a malformed body. */
#define RG_E_IO (-6)
/* The connection's output queue is above its high-water mark: nothing was taken. Try again after the
 * RG_EV_WRITABLE event (ABI 1.3). */
#define RG_E_AGAIN (-7)
/* A `handle` result (ABI 1.3, RG_APP_ASYNC apps only): the call goes on after `handle` returns. For an
 * accepted WebSocket it ends when the app calls `complete` or when the RG_EV_WS_CLOSE event returns; for
 * an HTTP request the app goes on with start_response, write and read_body and ends it with `complete`,
 * or the RG_EV_DISCONNECT event ends it. The handle is stale afterwards. */
#define RG_PENDING 1
/* rg_loop.step's result when the worker is done: `run` must return. */
#define RG_LOOP_DONE (-1)

/* ---- Flags (uint32_t) ------------------------------------------------------------------------------- */

/* rg_app.flags: the app's `handle` may run on several threads at once.
 * Without it, the server refuses to boot the app under a threaded worker class. */
#define RG_APP_THREAD_SAFE (1u << 0)
/* rg_app.flags (ABI 1.3): the app's calls may outlive `handle` (RG_PENDING) and it receives events
 * through rg_app.on_event, which must be set. Only the `event` worker class serves such an app; the
 * others refuse to boot it. */
#define RG_APP_ASYNC (1u << 1)
/* Every rg_app.flags bit this version defines. From ABI 1.2 on, a server refuses to boot an app that
 * sets any other bit, and start_response refuses flags outside RG_RESPONSE_FLAGS with RG_E_INVALID:
 * an app can rely on a flag it sets being understood. */
#define RG_APP_FLAGS (RG_APP_THREAD_SAFE | RG_APP_ASYNC)

/* rg_request.flags and rg_init.flags: the same app may be called by several threads at once
 * (WSGI's wsgi.multithread). */
#define RG_REQ_MULTITHREAD (1u << 0)
/* Several processes serve the same app (wsgi.multiprocess). */
#define RG_REQ_MULTIPROCESS (1u << 1)
/* The app is called once in this process's life (wsgi.run_once). */
#define RG_REQ_RUN_ONCE (1u << 2)
/* rg_request.flags: the request has a body (Content-Length > 0 or chunked). */
#define RG_REQ_HAS_BODY (1u << 3)
/* rg_request.flags: the body is chunked on the wire; read_body returns it decoded. */
#define RG_REQ_CHUNKED (1u << 4)
/* rg_request.flags (ABI 1.3): the request is a valid WebSocket opening handshake (RFC 6455 section
 * 4.2.1) and the app may accept_websocket it. Set for RG_APP_ASYNC apps only. */
#define RG_REQ_WEBSOCKET (1u << 5)

/* rg_event.kind (ABI 1.3): the WebSocket the app accepted is open; the app may send from now on. */
#define RG_EV_WS_OPEN 1u
/* rg_event.kind: a whole message arrived; `code` is RG_WS_TEXT (valid UTF-8) or RG_WS_BINARY. */
#define RG_EV_WS_MESSAGE 2u
/* rg_event.kind: the WebSocket is closed; `code` is the peer's close code (1005 when its close frame
 * had none, 1006 when the connection was lost without one, the server's own code when it closed for a
 * protocol error, a timeout or shutdown), `data` the reason. The last event of the call: its handle is
 * stale once the callback returns. */
#define RG_EV_WS_CLOSE 3u
/* rg_event.kind: a send refused with RG_E_AGAIN may be retried: the output queue drained. */
#define RG_EV_WRITABLE 4u
/* rg_event.kind: a pending HTTP call's read_body answered RG_E_AGAIN; body bytes (or the end of the
 * body) can be read now. */
#define RG_EV_READABLE 5u
/* rg_event.kind: the client of a pending HTTP call went away before `complete`. The last event of the
 * call: its handle is stale once the callback returns. */
#define RG_EV_DISCONNECT 6u

/* ws_send kinds and RG_EV_WS_MESSAGE codes (ABI 1.3). */
#define RG_WS_TEXT 1u
#define RG_WS_BINARY 2u

/* start_response flag: replace a head recorded earlier (PEP 3333's exc_info). Allowed once, and only
 * before the first body byte has been sent. */
#define RG_RESPONSE_REPLACE (1u << 0)
/* Every start_response flag this version defines (ABI 1.2). */
#define RG_RESPONSE_FLAGS RG_RESPONSE_REPLACE

/* ---- Log levels for rg_host.log (int32_t) ----------------------------------------------------------- */

#define RG_LOG_ERROR 1
#define RG_LOG_WARN 2
#define RG_LOG_INFO 3
#define RG_LOG_DEBUG 4

/* ---- Data ------------------------------------------------------------------------------------------- */

/* A borrowed byte string: `len` bytes at `ptr`, not NUL-terminated, not necessarily UTF-8.
 * `ptr` may be dangling when `len` is 0. Valid only for the call it is passed in.
 * Ownership: always the side that passes it; the receiver copies what it wants to keep. (ABI 1.0 does not
 * say that NULL is accepted for an empty string; an app should pass a real pointer, e.g. "".) */
typedef struct rg_str {
    const uint8_t *ptr; /* borrowed for the call; not NUL-terminated */
    size_t len;
} rg_str;

/* A header (or an environ entry): a name and a value, both borrowed. */
typedef struct rg_header {
    rg_str name;  /* borrowed for the call */
    rg_str value; /* borrowed for the call */
} rg_header;

/* The server's per-request state, opaque to the app (never defined, never dereferenced, never freed).
 * Passed back to every request-scoped host function. Valid only during the `handle` call it came in. */
typedef struct rg_call rg_call;

typedef struct rg_host rg_host;

/* The request the server hands to rg_app.handle. Every pointer in it is borrowed for that call only:
 * owned by the server, valid until `handle` returns, never to be freed or kept by the app. */
typedef struct rg_request {
    /* sizeof(rg_request) as the server built it; fields past it do not exist. */
    uint32_t size;
    /* RG_REQ_* bits. */
    uint32_t flags;
    /* The host functions; the same table as given to `init`. Owned by the server. */
    const rg_host *host;
    /* This request's handle for the request-scoped host functions. Owned by the server; valid until
     * `handle` returns. */
    rg_call *call;
    /* The method, e.g. GET. Borrowed for the call. */
    rg_str method;
    /* The raw request-target as sent: /a%20b?x=1, http://h/p, *, host:443. Borrowed for the call. */
    rg_str target;
    /* The path component of the target, raw (still percent-encoded), without scheme and authority.
     * Borrowed for the call. */
    rg_str path_raw;
    /* path_raw percent-decoded (may contain any byte, including / from %2F). Borrowed for the call. */
    rg_str path;
    /* The query string without the ?; empty when there is none. Borrowed for the call. */
    rg_str query;
    /* HTTP/1.0 or HTTP/1.1. Borrowed for the call. */
    rg_str version;
    /* The header fields in arrival order, duplicates kept, raw bytes (values without surrounding
     * whitespace). `headers_len` entries; the array and every string in it are borrowed for the call. */
    const rg_header *headers;
    size_t headers_len;
    /* The body length from Content-Length, or -1 when the body is chunked. */
    int64_t content_length;
    /* The client's address as text (127.0.0.1, ::1; empty for a unix-socket peer). Borrowed for the call. */
    rg_str peer_addr;
    /* The address of the socket that accepted the connection, as text (or the unix socket's path).
     * Borrowed for the call. */
    rg_str server_addr;
    /* The client's port (0 for a unix-socket peer). */
    uint16_t peer_port;
    /* The listening port (0 for a unix socket). */
    uint16_t server_port;
    /* The worker's id (1-based, stable across respawns of the same slot). */
    uint32_t worker_id;
    /* http or https. Borrowed for the call. */
    rg_str url_scheme;
} rg_request;

/* A pull-mode response body: the server calls `next` whenever the socket can take more, until it returns
 * 0 (end) or a negative status (abort), then calls `close` exactly once however the response ended.
 * Registered with rg_host.set_body; the state is owned by the app. */
typedef struct rg_body_source {
    /* Owned by the app; the server only passes it back to `next` and `close`. */
    void *state;
    /* Fill up to `cap` bytes at `buf`; return the count (> 0), 0 at the end, or RG_E_* / RG_ERROR.
     * `buf` is owned by the server and valid only during that call. */
    int64_t (*next)(void *state, uint8_t *buf, size_t cap);
    /* Release `state`. Called exactly once, on the thread of the last `next`. Optional (may be NULL). */
    void (*close)(void *state);
} rg_body_source;

/* An event of a call that outlived `handle` (ABI 1.3), passed to rg_app.on_event on the worker's
 * event-loop thread. Borrowed for the callback, `data` included. */
typedef struct rg_event {
    /* sizeof(rg_event) as the server built it. */
    uint32_t size;
    /* RG_EV_*. */
    uint32_t kind;
    /* The call the event belongs to: the handle `handle` received. */
    rg_call *call;
    /* RG_EV_WS_MESSAGE: RG_WS_TEXT or RG_WS_BINARY; RG_EV_WS_CLOSE: the close code; else 0. */
    uint32_t code;
    /* RG_EV_WS_MESSAGE: the message; RG_EV_WS_CLOSE: the close reason; else empty. Borrowed. */
    rg_str data;
} rg_event;

/* A function `post` runs on the event-loop thread (ABI 1.3). */
typedef void (*rg_post_fn)(void *arg);

/* The host functions. Request-scoped ones take the `call` from the request and may only be used during
 * that `handle` call, on its thread -- or, for a call that outlived `handle` (RG_PENDING), on the
 * event-loop thread until the call ends. The table is owned by the server; the app never frees it. */
struct rg_host {
    /* sizeof(rg_host) as the server built it. */
    uint32_t size;
    uint16_t abi_major;
    uint16_t abi_minor;
    /* Read up to `cap` bytes of the decoded request body into `buf` (owned by the app). Returns the count
     * (> 0), 0 at the end of the body, or a negative RG_E_*. The first call sends 100 Continue when the
     * client asked for it. On a pending call (ABI 1.3), RG_E_AGAIN when no decoded bytes are ready: wait
     * for RG_EV_READABLE. */
    int64_t (*read_body)(rg_call *call, uint8_t *buf, size_t cap);
    /* Record the response status and headers (WSGI's start_response). Nothing is sent until the first
     * body byte or the end of `handle`. `reason` may be empty (the standard phrase is used). Returns
     * RG_OK, RG_E_INVALID (bad status or header bytes) or RG_E_STATE.
     * `reason` and `headers` (`headers_len` entries) are borrowed for this call: the server copies them. */
    int32_t (*start_response)(rg_call *call, uint32_t status, rg_str reason, const rg_header *headers,
                              size_t headers_len, uint32_t flags);
    /* Send body bytes (after start_response). Returns RG_OK, RG_E_STATE or RG_E_CLOSED; on a pending call
     * (ABI 1.3) also RG_E_AGAIN while the output queue is above its high-water mark (nothing was taken:
     * wait for RG_EV_WRITABLE).
     * `data` is borrowed for this call: the server copies or sends it before returning. */
    int32_t (*write)(rg_call *call, const uint8_t *data, size_t len);
    /* Register a pull-mode body, read after `handle` returns. The server copies the struct (so `source`
     * itself is borrowed for this call); `source->state` stays owned by the app until `close`. */
    int32_t (*set_body)(rg_call *call, const rg_body_source *source);
    /* The CGI/WSGI environ of this request, built on first use: *out points at *out_len entries valid
     * until `handle` returns. The entries are owned by the server. */
    int32_t (*environ)(rg_call *call, const rg_header **out, size_t *out_len);
    /* Write a line to the server's error log (WSGI's wsgi.errors). Usable from `init` too.
     * `msg` is borrowed for this call. */
    void (*log)(int32_t level, rg_str msg);
    /* ---- ABI 1.1 ---- */
    /* Send up to `len` bytes of the open file `fd`, starting at `offset`, as body bytes (after
     * start_response), through the server's file-sending path. The file stays the app's (the server
     * neither moves its offset nor closes it). Returns the count sent (less than `len` only when the file
     * ended), or RG_E_STATE, RG_E_INVALID (`fd` is not readable) or RG_E_CLOSED. */
    int64_t (*send_file)(rg_call *call, int32_t fd, uint64_t offset, uint64_t len);
    /* ---- ABI 1.3 ---- */
    /* Accept the WebSocket this request asks for (RG_REQ_WEBSOCKET), during `handle` and before any
     * response: the server answers 101 with Sec-WebSocket-Accept, the negotiated compression, the
     * `subprotocol` when not empty (one the client offered) and `headers`; `handle` then returns
     * RG_PENDING. Also on a pending call (after `handle` returned RG_PENDING without accepting), before
     * any response: the 101 goes out then, and RG_EV_WS_OPEN follows. Returns RG_OK, RG_E_STATE (not a
     * WebSocket request, not an async app, a response
     * already recorded) or RG_E_INVALID (a subprotocol the client did not offer, bad header bytes). */
    int32_t (*accept_websocket)(rg_call *call, rg_str subprotocol, const rg_header *headers,
                                size_t headers_len);
    /* Send one WebSocket message (RG_WS_TEXT, which must be valid UTF-8, or RG_WS_BINARY) after
     * RG_EV_WS_OPEN. `data` is borrowed for this call. Returns RG_OK, RG_E_AGAIN (the queue is above its
     * high-water mark: nothing was taken; wait for RG_EV_WRITABLE), RG_E_INVALID, RG_E_CLOSED (closing
     * or closed) or RG_E_STATE. */
    int32_t (*ws_send)(rg_call *call, uint32_t kind, const uint8_t *data, size_t len);
    /* Start the closing handshake with `code` (1000, 1001, 1003, 1007-1011 or 3000-4999) and a UTF-8
     * `reason` of at most 123 bytes. RG_EV_WS_CLOSE follows when the peer answers (or the wait for it
     * ends). Returns RG_OK, RG_E_INVALID, RG_E_CLOSED or RG_E_STATE. */
    int32_t (*ws_close)(rg_call *call, uint32_t code, rg_str reason);
    /* End a call that outlived `handle`. A pending HTTP response ends (RG_OK; any other status is the app
     * failing: a 500 when nothing was sent, else the connection is cut); a WebSocket closes with 1000 for
     * RG_OK, else 1011. No event follows, and the handle is stale on return. Returns RG_OK or
     * RG_E_STATE. */
    int32_t (*complete)(rg_call *call, int32_t status);
    /* Run `f(arg)` on the worker's event-loop thread soon (at its next wake-up, which this causes). The one
     * host function safe from any thread: a thread of the app's hands its results to the loop this way,
     * and makes its host calls from `f`. Returns RG_OK, or RG_E_STATE when the worker is not an
     * event-loop worker or has stopped (`f` is then never called). */
    int32_t (*post)(rg_post_fn f, void *arg);
    /* Add trailer fields to the response: they follow the last chunk of a chunked body when the request
     * said `TE: trailers`, and are dropped otherwise (a body framed by Content-Length, HTTP/1.0, a
     * client that did not ask). Call after start_response, before the response ends; each call adds to
     * those before. Returns RG_OK, RG_E_INVALID (bad bytes, or a field a trailer may not carry:
     * framing, routing, authentication, content metadata) or RG_E_STATE. */
    int32_t (*trailers)(rg_call *call, const rg_header *headers, size_t headers_len);
};

/* The worker's event loop as an app that owns the thread sees it (rg_app.run, ABI 1.3). Owned by the
 * server; valid during `run`. */
typedef struct rg_loop {
    /* sizeof(rg_loop) as the server built it. */
    uint32_t size;
    /* Readable whenever the loop has work (a connection, a signal, a post, host calls made outside
     * `step`): watch it with epoll, poll or select, and call `step` when it is. */
    int32_t fd;
    /* The server's; passed back to `step`. */
    void *host;
    /* Does what is ready without waiting (accepts, reads, calls `handle` and `on_event`, writes) and
     * returns the milliseconds within which it wants to be called again even if `fd` stays quiet
     * (timeouts, pings), or RG_LOOP_DONE once the worker has stopped. Loop thread only; not from inside
     * `handle` or `on_event` (RG_E_STATE). */
    int32_t (*step)(void *host);
} rg_loop;

/* What `init` receives, once per worker after fork. Owned by the server; valid only during `init`. */
typedef struct rg_init {
    /* sizeof(rg_init) as the server built it. */
    uint32_t size;
    /* The worker's id (1-based). */
    uint32_t worker_id;
    /* The arguments given after -- on the command line. `args_len` entries; the array and the strings are
     * borrowed for the `init` call (copy what you keep). */
    const rg_str *args;
    size_t args_len;
    /* RG_REQ_MULTITHREAD / RG_REQ_MULTIPROCESS as the worker class will set them on requests. */
    uint32_t flags;
    /* On failure the app may write a UTF-8 message into `error_buf` (at most `error_cap` bytes) and set
     * `error_len`; the server prints it in its one-line boot error. `error_buf` is owned by the server and
     * valid only during `init`. */
    uint32_t error_len;
    uint8_t *error_buf;
    size_t error_cap;
} rg_init;

/* init: returns RG_OK, or anything else to refuse to boot (the worker exits, the server halts).
 * `host` is the same table every request carries; `init` is borrowed for the call. Store the app's
 * state in `*app_state` (set it even if you have none): it is owned by the app and passed as is to
 * `handle` and `shutdown`. */
typedef int32_t (*rg_init_fn)(const rg_host *host, rg_init *init, void **app_state);
/* handle: serve one request. Returns RG_OK or an error status. `request` is borrowed for the call. */
typedef int32_t (*rg_handle_fn)(void *app_state, const rg_request *request);
/* shutdown: called once before the worker exits gracefully. */
typedef void (*rg_shutdown_fn)(void *app_state);
/* preload (ABI 1.1): called once in the master under --preload, before any worker is forked, with
 * `worker_id` 0. What it sets up is shared copy-on-write by every worker; `init` still runs in each.
 * Returns RG_OK, or anything else to refuse to boot (the message goes in `init->error_buf`). */
typedef int32_t (*rg_preload_fn)(const rg_host *host, rg_init *init);
/* on_event (ABI 1.3): an event of a call that outlived `handle`, on the event-loop thread. The app may
 * call host functions for this and any other live call from it. `event` is borrowed for the call. */
typedef void (*rg_event_fn)(void *app_state, const rg_event *event);
/* run (ABI 1.3, RG_APP_ASYNC apps): the app's own event loop takes the worker's thread (asyncio, libuv).
 * Called once, after `init`, instead of the server's loop: the app watches `host_loop->fd`, calls
 * `host_loop->step` when it is readable and when the time `step` returned has passed, and returns once
 * `step` returned RG_LOOP_DONE (RG_OK, or an error status, which is logged). */
typedef int32_t (*rg_run_fn)(void *app_state, const rg_loop *host_loop);

/* The descriptor an app exports. The first four fields are frozen for every major version.
 * Owned by the app (static storage); the server reads it and never writes or frees it. */
typedef struct rg_app {
    /* RG_MAGIC. */
    uint32_t magic;
    uint16_t abi_major;
    uint16_t abi_minor;
    /* sizeof(rg_app) as the app was built. */
    uint32_t size;
    /* RG_APP_* bits. */
    uint32_t flags;
    /* Optional per-worker setup (may be NULL); its app_state result is passed to `handle` and `shutdown`. */
    rg_init_fn init;
    /* Required (not NULL). */
    rg_handle_fn handle;
    /* Optional per-worker teardown (may be NULL). */
    rg_shutdown_fn shutdown;
    /* ---- ABI 1.1 ---- */
    /* Optional set-up in the master before fork, under --preload (may be NULL). */
    rg_preload_fn preload;
    /* ---- ABI 1.3 ---- */
    /* Events of calls that outlived `handle`; required with RG_APP_ASYNC (may be NULL otherwise). */
    rg_event_fn on_event;
    /* Optional with RG_APP_ASYNC (may be NULL): the app's loop drives the worker's (rg_run_fn). */
    rg_run_fn run;
} rg_app;

/* ---- Conveniences (not part of the binary ABI) ------------------------------------------------------ */

/* An initializer for a descriptor with the given flags and entry points, without `preload`,
 * `on_event` and `run` (like RgApp::new in Rust):
 *
 *     RG_EXPORT const rg_app app = RG_APP_DESCRIPTOR(RG_APP_THREAD_SAFE, my_init, my_handle, NULL);
 */
#define RG_APP_DESCRIPTOR(flags, init, handle, shutdown)                                                   \
    { RG_MAGIC, RG_ABI_MAJOR, RG_ABI_MINOR, (uint32_t)sizeof(rg_app), (flags), (init), (handle), (shutdown), NULL, NULL, NULL }

/* ---- Server hooks (rg_hooks version 1) --------------------------------------------------------------- */

/* The version of rg_hooks this header describes. */
#define RG_HOOKS_VERSION 1u
/* rg_hook_ctx.hook: gunicorn's server hooks (see rustgun_abi for when each runs, and in which process). */
#define RG_HOOK_ON_STARTING 0u
#define RG_HOOK_ON_RELOAD 1u
#define RG_HOOK_WHEN_READY 2u
#define RG_HOOK_PRE_FORK 3u
#define RG_HOOK_POST_FORK 4u
#define RG_HOOK_POST_WORKER_INIT 5u
#define RG_HOOK_WORKER_INT 6u
#define RG_HOOK_WORKER_ABORT 7u
#define RG_HOOK_PRE_EXEC 8u
#define RG_HOOK_PRE_REQUEST 9u
#define RG_HOOK_POST_REQUEST 10u
#define RG_HOOK_CHILD_EXIT 11u
#define RG_HOOK_WORKER_EXIT 12u
#define RG_HOOK_NWORKERS_CHANGED 13u
#define RG_HOOK_ON_EXIT 14u

/* One moment for rg_hooks.call: which hook, and the server and worker it is about. */
typedef struct rg_hook_ctx {
    uint32_t size;        /* sizeof(rg_hook_ctx) as the server built it */
    uint32_t hook;        /* RG_HOOK_* */
    int32_t master_pid;
    int32_t worker_pid;   /* 0 when there is none yet (pre_fork) or no worker is concerned */
    uint32_t worker_id;   /* 1-based slot, 0 when no worker is concerned */
    uint32_t worker_age;  /* how many workers the master forked before this one */
    uint32_t workers;     /* the worker count the master keeps (nworkers_changed's new value) */
    uint32_t old_workers; /* nworkers_changed's old value; else equal to `workers` */
} rg_hook_ctx;

/* Exported as `rustgun_hooks` by a bridge that runs a configuration file's server hooks. */
typedef struct rg_hooks {
    uint32_t magic;   /* RG_MAGIC */
    uint32_t version; /* RG_HOOKS_VERSION */
    uint32_t size;    /* sizeof(rg_hooks) as the bridge was built */
    /* Runs the configuration file in the master: init->args[0] names it, the rest are the bridge's
     * arguments. Called again on each reload. RG_OK, or a refusal with its message in init->error_buf. */
    rg_preload_fn load;
    /* Which hooks the loaded file defines: bit (1 << RG_HOOK_*) each. */
    uint64_t (*defined)(void);
    /* Runs one hook: RG_OK, or RG_ERROR when it failed (the bridge logged why). */
    int32_t (*call)(const rg_hook_ctx *ctx);
} rg_hooks;

/* Put before the descriptor's definition: C linkage (needed in C++, where a namespace-scope const object
 * would otherwise have internal linkage and a mangled name) and default visibility (so the symbol is
 * exported even when building with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define RG_VISIBLE __attribute__((visibility("default")))
#else
#define RG_VISIBLE
#endif
#ifdef __cplusplus
#define RG_EXPORT extern "C" RG_VISIBLE
#else
#define RG_EXPORT RG_VISIBLE
#endif

/* A brace initializer for an rg_str from a string literal (or a char array), without its NUL:
 *     static const rg_header h = { RG_STR_INIT("Content-Type"), RG_STR_INIT("text/plain") };
 * Usable in static initializers. */
#define RG_STR_INIT(lit) { (const uint8_t *)(lit), sizeof(lit) - 1 }

/* An rg_str value borrowing `len` bytes at `ptr` (for function arguments). */
static inline rg_str rg_str_make(const void *ptr, size_t len) {
    rg_str s;
    s.ptr = (const uint8_t *)ptr;
    s.len = len;
    return s;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RUSTGUN_H */

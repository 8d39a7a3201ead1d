/*
 * hello_c: the hello app in C against include/rustgun.h.
 * Every request gets `200 OK`, `Content-Type: text/plain`, `Content-Length: 13`, `Hello, World!`.
 *
 *   cc -std=c99 -Wall -Wextra -Werror -O2 -fPIC -shared -Iinclude \
 *      -o target/release/libhello_c.so apps/hello_c/hello.c
 *   rustgun ./target/release/libhello_c.so:app
 */
#include "rustgun.h"

static const uint8_t body[] = "Hello, World!";

static const rg_header headers[] = {
    {RG_STR_INIT("Content-Type"), RG_STR_INIT("text/plain")},
    {RG_STR_INIT("Content-Length"), RG_STR_INIT("13")},
};

/* Optional: runs once per worker after fork. This app keeps no state. */
static int32_t hello_init(const rg_host *host, rg_init *init, void **app_state) {
    static const char msg[] = "hello_c: worker ready";
    (void)init;
    *app_state = NULL;
    host->log(RG_LOG_DEBUG, rg_str_make(msg, sizeof msg - 1));
    return RG_OK;
}

/* Runs for every request; touches nothing shared, so it is thread-safe. */
static int32_t hello_handle(void *app_state, const rg_request *req) {
    const rg_host *host = req->host;
    int32_t rc;
    (void)app_state;
    rc = host->start_response(req->call, 200, rg_str_make("OK", 2), headers,
                              sizeof headers / sizeof headers[0], 0);
    if (rc != RG_OK) {
        return rc;
    }
    return host->write(req->call, body, sizeof body - 1);
}

RG_EXPORT const rg_app app = RG_APP_DESCRIPTOR(RG_APP_THREAD_SAFE, hello_init, hello_handle, NULL);

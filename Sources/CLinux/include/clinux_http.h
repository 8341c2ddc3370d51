#ifndef CLINUX_HTTP_H
#define CLINUX_HTTP_H

#include <stddef.h>
#include <stdint.h>

/// Receives body bytes; return 0 to go on, anything else aborts the transfer.
typedef int (*wisp_http_write_fn)(void *context, const void *data, size_t size);
/// Progress: bytes received so far and the total (0 when the server did not say);
/// return 0 to go on, anything else aborts the transfer.
typedef int (*wisp_http_progress_fn)(void *context, uint64_t done, uint64_t total);

/// GETs `url` (http or https; redirects followed, to http or https only) with the system's
/// libcurl, loaded with dlopen on first use so that processes which never download do not
/// pay for loading libcurl and its ~30 libraries. Returns 0 on success; otherwise writes a
/// sentence to `error` and returns -1 (libcurl missing) or libcurl's error code.
/// `http_status` gets the last response's status code (0 when there was none).
int wisp_http_get(const char *url, void *context, wisp_http_write_fn write,
                  wisp_http_progress_fn progress, long *http_status,
                  char *error, size_t error_size);

/// `wisp_http_get` that asks for the body from byte `offset` on (an HTTP Range request when
/// `offset` > 0; libcurl answers CURLE_RANGE_ERROR, 33, when the server ignores it) and
/// gives up when under 1 byte/s arrives for `stall_seconds` (60 when 0).
int wisp_http_get_from(const char *url, uint64_t offset, long stall_seconds, void *context,
                       wisp_http_write_fn write, wisp_http_progress_fn progress, long *http_status,
                       char *error, size_t error_size);

/// Receives each response header line as sent (status lines included, with CRLF);
/// return 0 to go on, anything else aborts the transfer.
typedef int (*wisp_http_header_fn)(void *context, const char *line, size_t size);

/// One request as `wisp_http_request` sends it.
struct wisp_http_request {
    const char *url;
    /// "GET" (or NULL), "HEAD", "POST" or "PUT".
    const char *method;
    /// Extra request headers, each "Name: value".
    const char *const *headers;
    size_t header_count;
    /// 0 skips certificate and host name checks (the user's explicit choice).
    int verify_tls;
    /// Seconds to connect (0: 30).
    long connect_timeout;
    /// Seconds under 1 byte/s before the transfer fails (0: 60).
    long stall_timeout;
    /// Seconds for the whole transfer (0: no limit).
    long total_timeout;
    /// The request body for POST and PUT: `body_size` bytes, from `body` when it is not
    /// NULL, else read with pread from `body_fd` starting at offset 0 (streamed, never
    /// held in memory). Sent with Content-Length, never chunked.
    const void *body;
    int body_fd;
    uint64_t body_size;
};

/// One HTTP(S) request with the caller's headers; redirects are NOT followed (the caller
/// sees the 3xx and its Location header, so it can decide what credentials go where).
/// Response headers go to `header`, the body to `write`. Any status is a success at this
/// level: `http_status` says which. Returns 0, or -1 / libcurl's code with a sentence in
/// `error` when no complete response arrived (connection refused, timeout, aborted).
int wisp_http_request(const struct wisp_http_request *request, void *context,
                      wisp_http_header_fn header, wisp_http_write_fn write,
                      wisp_http_progress_fn progress, long *http_status,
                      char *error, size_t error_size);

#endif

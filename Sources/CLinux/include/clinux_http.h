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

#endif

// A thin, lazily loaded binding to the system's libcurl (see clinux_http.h for why lazily).
#include "clinux_http.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

struct curl_api {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    char load_error[256];
    int loaded;
};

static struct curl_api api;
static pthread_once_t api_once = PTHREAD_ONCE_INIT;

static void load_api(void) {
    const char *names[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so"};
    void *handle = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && handle == NULL; i++) {
        handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    }
    if (handle == NULL) {
        snprintf(api.load_error, sizeof api.load_error,
                 "downloading needs libcurl, which is not installed (apt install libcurl4): %s", dlerror());
        return;
    }
#define LOAD(field, symbol)                                                                       \
    do {                                                                                          \
        *(void **)(&api.field) = dlsym(handle, symbol);                                           \
        if (api.field == NULL) {                                                                  \
            snprintf(api.load_error, sizeof api.load_error, "libcurl has no %s", symbol);        \
            return;                                                                               \
        }                                                                                         \
    } while (0)
    LOAD(global_init, "curl_global_init");
    LOAD(easy_init, "curl_easy_init");
    LOAD(easy_setopt, "curl_easy_setopt");
    LOAD(easy_perform, "curl_easy_perform");
    LOAD(easy_getinfo, "curl_easy_getinfo");
    LOAD(easy_cleanup, "curl_easy_cleanup");
    LOAD(easy_strerror, "curl_easy_strerror");
    LOAD(slist_append, "curl_slist_append");
    LOAD(slist_free_all, "curl_slist_free_all");
#undef LOAD
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(api.load_error, sizeof api.load_error, "libcurl failed to initialise");
        return;
    }
    api.loaded = 1;
}

struct transfer {
    void *context;
    wisp_http_write_fn write;
    wisp_http_progress_fn progress;
    CURL *curl;
    int sized;
};

static size_t on_body(char *data, size_t size, size_t count, void *user) {
    struct transfer *t = user;
    size_t bytes = size * count;
    // The body's size, before its first byte is written: libcurl's progress callback may
    // first run only after a megabyte has arrived, too late to refuse a download that
    // cannot fit before writing any of it.
    if (!t->sized && t->curl != NULL && t->progress != NULL) {
        t->sized = 1;
        curl_off_t length = -1;
        if (api.easy_getinfo(t->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK && length > 0 &&
            t->progress(t->context, 0, (uint64_t)length) != 0) {
            return 0;
        }
    }
    return t->write(t->context, data, bytes) == 0 ? bytes : 0;
}

static int on_progress(void *user, curl_off_t total, curl_off_t done, curl_off_t up_total, curl_off_t up_done) {
    (void)up_total;
    (void)up_done;
    struct transfer *t = user;
    if (t->progress == NULL) return 0;
    return t->progress(t->context, done > 0 ? (uint64_t)done : 0, total > 0 ? (uint64_t)total : 0);
}

int wisp_http_get(const char *url, void *context, wisp_http_write_fn write,
                  wisp_http_progress_fn progress, long *http_status,
                  char *error, size_t error_size) {
    return wisp_http_get_from(url, 0, 0, context, write, progress, http_status, error, error_size);
}

int wisp_http_get_from(const char *url, uint64_t offset, long stall_seconds, void *context,
                       wisp_http_write_fn write, wisp_http_progress_fn progress, long *http_status,
                       char *error, size_t error_size) {
    *http_status = 0;
    if (error_size > 0) error[0] = '\0';
    pthread_once(&api_once, load_api);
    if (!api.loaded) {
        snprintf(error, error_size, "%s", api.load_error);
        return -1;
    }
    CURL *curl = api.easy_init();
    if (curl == NULL) {
        snprintf(error, error_size, "libcurl could not start a transfer");
        return -1;
    }
    char curl_error[CURL_ERROR_SIZE] = {0};
    struct transfer t = {context, write, progress, curl, 0};
    api.easy_setopt(curl, CURLOPT_URL, url);
    api.easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
    // http and https only, redirects included. The string options are libcurl 7.85+; the
    // loaded library may be older than the headers, so fall back to the bitmask ones.
    if (api.easy_setopt(curl, (CURLoption)10318 /* CURLOPT_PROTOCOLS_STR */, "http,https") != CURLE_OK ||
        api.easy_setopt(curl, (CURLoption)10319 /* CURLOPT_REDIR_PROTOCOLS_STR */, "http,https") != CURLE_OK) {
        api.easy_setopt(curl, (CURLoption)181 /* CURLOPT_PROTOCOLS */, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
        api.easy_setopt(curl, (CURLoption)182 /* CURLOPT_REDIR_PROTOCOLS */, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    }
    api.easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    api.easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    api.easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    api.easy_setopt(curl, CURLOPT_USERAGENT, "wisp");
    api.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    // Never hang on a stalled server: fail when under 1 byte/s for a minute.
    api.easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    api.easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall_seconds > 0 ? stall_seconds : 60L);
    if (offset > 0) api.easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)offset);
    api.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    api.easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    api.easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    api.easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    api.easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
    CURLcode code = api.easy_perform(curl);
    api.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, http_status);
    if (code != CURLE_OK) {
        snprintf(error, error_size, "%s", curl_error[0] ? curl_error : api.easy_strerror(code));
    }
    api.easy_cleanup(curl);
    return code == CURLE_OK ? 0 : (int)code;
}

struct request_transfer {
    void *context;
    wisp_http_header_fn header;
    wisp_http_write_fn write;
    wisp_http_progress_fn progress;
    const struct wisp_http_request *request;
    uint64_t sent;
};

// The request body, from memory or from the file at increasing offsets; a short file
// (truncated while sending) aborts rather than sending fewer bytes than announced.
static size_t on_request_read(char *buffer, size_t size, size_t count, void *user) {
    struct request_transfer *t = user;
    uint64_t left = t->request->body_size - t->sent;
    size_t wanted = size * count;
    if ((uint64_t)wanted > left) wanted = (size_t)left;
    if (wanted == 0) return 0;
    if (t->request->body != NULL) {
        memcpy(buffer, (const char *)t->request->body + t->sent, wanted);
        t->sent += wanted;
        return wanted;
    }
    ssize_t got;
    do {
        got = pread(t->request->body_fd, buffer, wanted, (off_t)t->sent);
    } while (got < 0 && errno == EINTR);
    if (got <= 0) return CURL_READFUNC_ABORT;
    t->sent += (uint64_t)got;
    return (size_t)got;
}

static size_t on_request_header(char *data, size_t size, size_t count, void *user) {
    struct request_transfer *t = user;
    size_t bytes = size * count;
    if (t->header == NULL) return bytes;
    return t->header(t->context, data, bytes) == 0 ? bytes : 0;
}

static size_t on_request_body(char *data, size_t size, size_t count, void *user) {
    struct request_transfer *t = user;
    size_t bytes = size * count;
    return t->write(t->context, data, bytes) == 0 ? bytes : 0;
}

static int on_request_progress(void *user, curl_off_t total, curl_off_t done, curl_off_t up_total, curl_off_t up_done) {
    (void)up_total;
    (void)up_done;
    struct request_transfer *t = user;
    if (t->progress == NULL) return 0;
    return t->progress(t->context, done > 0 ? (uint64_t)done : 0, total > 0 ? (uint64_t)total : 0);
}

int wisp_http_request(const struct wisp_http_request *request, void *context,
                      wisp_http_header_fn header, wisp_http_write_fn write,
                      wisp_http_progress_fn progress, long *http_status,
                      char *error, size_t error_size) {
    *http_status = 0;
    if (error_size > 0) error[0] = '\0';
    pthread_once(&api_once, load_api);
    if (!api.loaded) {
        snprintf(error, error_size, "%s", api.load_error);
        return -1;
    }
    CURL *curl = api.easy_init();
    if (curl == NULL) {
        snprintf(error, error_size, "libcurl could not start a transfer");
        return -1;
    }
    struct curl_slist *headers = NULL;
    for (size_t i = 0; i < request->header_count; i++) {
        struct curl_slist *grown = api.slist_append(headers, request->headers[i]);
        if (grown == NULL) {
            api.slist_free_all(headers);
            api.easy_cleanup(curl);
            snprintf(error, error_size, "out of memory for request headers");
            return -1;
        }
        headers = grown;
    }
    char curl_error[CURL_ERROR_SIZE] = {0};
    struct request_transfer t = {context, header, write, progress, request, 0};
    api.easy_setopt(curl, CURLOPT_URL, request->url);
    api.easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
    if (api.easy_setopt(curl, (CURLoption)10318 /* CURLOPT_PROTOCOLS_STR */, "http,https") != CURLE_OK) {
        api.easy_setopt(curl, (CURLoption)181 /* CURLOPT_PROTOCOLS */, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    }
    // Redirects are the caller's: it decides per hop whether credentials may follow.
    api.easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    if (request->method != NULL && strcmp(request->method, "HEAD") == 0) api.easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (request->method != NULL && (strcmp(request->method, "PUT") == 0 || strcmp(request->method, "POST") == 0)) {
        // UPLOAD is libcurl's PUT; a POST is the same upload under another method name.
        api.easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        api.easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)request->body_size);
        api.easy_setopt(curl, CURLOPT_READFUNCTION, on_request_read);
        api.easy_setopt(curl, CURLOPT_READDATA, &t);
        if (strcmp(request->method, "POST") == 0) api.easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "POST");
    }
    if (headers != NULL) api.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    api.easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, request->verify_tls ? 1L : 0L);
    api.easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, request->verify_tls ? 2L : 0L);
    api.easy_setopt(curl, CURLOPT_USERAGENT, "wisp");
    api.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, request->connect_timeout > 0 ? request->connect_timeout : 30L);
    api.easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    api.easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, request->stall_timeout > 0 ? request->stall_timeout : 60L);
    if (request->total_timeout > 0) api.easy_setopt(curl, CURLOPT_TIMEOUT, request->total_timeout);
    api.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    api.easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_request_header);
    api.easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    api.easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_request_body);
    api.easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    api.easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    api.easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_request_progress);
    api.easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
    CURLcode code = api.easy_perform(curl);
    api.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, http_status);
    if (code != CURLE_OK) {
        snprintf(error, error_size, "%s", curl_error[0] ? curl_error : api.easy_strerror(code));
    }
    api.slist_free_all(headers);
    api.easy_cleanup(curl);
    return code == CURLE_OK ? 0 : (int)code;
}

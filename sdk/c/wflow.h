/*
 * wflow.h: the C guest SDK of wflow, ABI v1 (docs/abi.md).
 *
 * Build a workflow module with Debian's clang, lld and wasi-libc:
 *
 *   clang --target=wasm32-wasi -O2 -I sdk/c -o workflow.wasm main.c
 *
 * The raw host functions are declared first (wflow_v1_*); the helpers after
 * them allocate answers with malloc and return NUL-terminated JSON that the
 * caller frees. Every raw function returns a wflow_errno_t; on failure,
 * wflow_last_error() returns the host's JSON message.
 */
#ifndef WFLOW_H
#define WFLOW_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WFLOW_ABI_MODULE "wflow_v1"

typedef uint32_t wflow_errno_t;
typedef uint32_t wflow_handle_t;

/* Return codes: the values of abi.Errno. */
enum {
  WFLOW_OK = 0,
  WFLOW_ERR_FAULT = 1,
  WFLOW_ERR_TOO_LARGE = 2,
  WFLOW_ERR_INVALID_JSON = 3,
  WFLOW_ERR_INVALID_STEP = 4,
  WFLOW_ERR_BUFFER_TOO_SMALL = 5,
  WFLOW_ERR_UNKNOWN_HANDLE = 6,
  WFLOW_ERR_PENDING = 7,
  WFLOW_ERR_LIMIT = 8,
  WFLOW_ERR_INVALID_ARGUMENT = 9,
  WFLOW_ERR_CANCELLED = 10,
  WFLOW_ERR_TIMEOUT = 11,        /* ABI v1.2: wflow_v1_step_wait_timeout's timeout passed */
  WFLOW_ERR_SERVICE_FAILED = 12, /* ABI v1.2: a service did not start or was not ready */
};

/* Log levels of wflow_v1_log_write. */
enum { WFLOW_LOG_DEBUG = 0, WFLOW_LOG_INFO = 1, WFLOW_LOG_WARN = 2, WFLOW_LOG_ERROR = 3 };

#define WFLOW_IMPORT(name) __attribute__((import_module(WFLOW_ABI_MODULE), import_name(name)))

/* The run directory is preopened at /wflow. Go's wasip1 port starts in it
 * ($PWD); wasi-libc starts in "/", so this constructor moves there before
 * main, and relative paths name files of the run directory in C too. */
__attribute__((constructor)) static void wflow__chdir_rundir(void) { chdir("/wflow"); }

/* ---- The host functions (docs/abi.md) ---- */

WFLOW_IMPORT("params_get")
wflow_errno_t wflow_v1_params_get(char *buf, uint32_t buf_cap, uint32_t *len);

WFLOW_IMPORT("step_submit")
wflow_errno_t wflow_v1_step_submit(const char *spec, uint32_t spec_len, wflow_handle_t *handle);

WFLOW_IMPORT("step_run")
wflow_errno_t wflow_v1_step_run(const char *spec, uint32_t spec_len, wflow_handle_t *handle);

WFLOW_IMPORT("step_wait")
wflow_errno_t wflow_v1_step_wait(const wflow_handle_t *handles, uint32_t count, wflow_handle_t *ready);

WFLOW_IMPORT("step_result")
wflow_errno_t wflow_v1_step_result(wflow_handle_t handle, char *buf, uint32_t buf_cap, uint32_t *len);

WFLOW_IMPORT("log_write")
wflow_errno_t wflow_v1_log_write(uint32_t level, const char *msg, uint32_t msg_len);

WFLOW_IMPORT("output_set")
wflow_errno_t wflow_v1_output_set(const char *json, uint32_t json_len);

WFLOW_IMPORT("error_get")
wflow_errno_t wflow_v1_error_get(char *buf, uint32_t buf_cap, uint32_t *len);

WFLOW_IMPORT("notebook_submit")
wflow_errno_t wflow_v1_notebook_submit(const char *spec, uint32_t spec_len, wflow_handle_t *handle);

WFLOW_IMPORT("notebook_run")
wflow_errno_t wflow_v1_notebook_run(const char *spec, uint32_t spec_len, wflow_handle_t *handle);

WFLOW_IMPORT("notebook_build")
wflow_errno_t wflow_v1_notebook_build(const char *spec, uint32_t spec_len, wflow_handle_t *handle);

/* ABI v1.2: a module that calls these is refused, by name, by a wflow older
 * than v1.2; one that does not call them runs on every v1 wflow. */

WFLOW_IMPORT("step_cancel")
wflow_errno_t wflow_v1_step_cancel(wflow_handle_t handle);

WFLOW_IMPORT("step_wait_timeout")
wflow_errno_t wflow_v1_step_wait_timeout(const wflow_handle_t *handles, uint32_t count, uint32_t timeout_ms,
                                         wflow_handle_t *ready);

WFLOW_IMPORT("service_start")
wflow_errno_t wflow_v1_service_start(const char *spec, uint32_t spec_len, uint32_t *service);

WFLOW_IMPORT("service_exec")
wflow_errno_t wflow_v1_service_exec(uint32_t service, const char *spec, uint32_t spec_len, wflow_handle_t *handle);

WFLOW_IMPORT("service_stop")
wflow_errno_t wflow_v1_service_stop(uint32_t service);

/* ---- Helpers ---- */

/* The buffer protocol: call with a small buffer; on WFLOW_ERR_BUFFER_TOO_SMALL
 * the host wrote the size it needs to *len, so allocate that and call again.
 * Returns a malloc'ed NUL-terminated string, or NULL with *err set. */
#define WFLOW__READ(call_with_buf_cap_len, err)                               \
  do {                                                                        \
    uint32_t cap_ = 1024, len_ = 0;                                           \
    for (;;) {                                                                \
      char *buf = (char *)malloc(cap_ + 1);                                   \
      uint32_t buf_cap = cap_;                                                \
      uint32_t *len = &len_;                                                  \
      if (!buf) { *(err) = WFLOW_ERR_LIMIT; return NULL; }                    \
      wflow_errno_t e_ = (call_with_buf_cap_len);                             \
      if (e_ == WFLOW_OK) { buf[len_] = 0; *(err) = WFLOW_OK; return buf; }   \
      free(buf);                                                              \
      if (e_ != WFLOW_ERR_BUFFER_TOO_SMALL) { *(err) = e_; return NULL; }     \
      cap_ = len_;                                                            \
    }                                                                         \
  } while (0)

/* The run's parameters as a JSON object. */
static inline char *wflow_params(wflow_errno_t *err) {
  WFLOW__READ(wflow_v1_params_get(buf, buf_cap, len), err);
}

/* The JSON message of the last failed call:
 * {"errno":N,"name":"...","function":"...","message":"..."}. */
static inline char *wflow_last_error(void) {
  wflow_errno_t err;
  WFLOW__READ(wflow_v1_error_get(buf, buf_cap, len), &err);
}

/* The ExecResult JSON of a finished step; frees its handle. */
static inline char *wflow_result(wflow_handle_t handle, wflow_errno_t *err) {
  WFLOW__READ(wflow_v1_step_result(handle, buf, buf_cap, len), err);
}

/* Calls a blocking host function that takes a spec and gives a handle
 * (step_run, notebook_run, notebook_build) and reads the handle's result. */
static inline char *wflow__call(wflow_errno_t (*fn)(const char *, uint32_t, wflow_handle_t *), const char *spec,
                                wflow_errno_t *err) {
  wflow_handle_t h = 0;
  *err = fn(spec, (uint32_t)strlen(spec), &h);
  if (*err != WFLOW_OK) return NULL;
  return wflow_result(h, err);
}

/* Runs a step (spec: JSON, docs/abi.md) and returns its ExecResult JSON. */
static inline char *wflow_run(const char *spec, wflow_errno_t *err) {
  return wflow__call(wflow_v1_step_run, spec, err);
}

/* Runs a notebook step (spec: JSON, docs/abi.md) and returns its ExecResult JSON. */
static inline char *wflow_notebook_run(const char *spec, wflow_errno_t *err) {
  return wflow__call(wflow_v1_notebook_run, spec, err);
}

/* Starts a notebook step in the background; its handle goes to *handle. */
static inline wflow_errno_t wflow_notebook_submit(const char *spec, wflow_handle_t *handle) {
  return wflow_v1_notebook_submit(spec, (uint32_t)strlen(spec), handle);
}

/* Builds (or finds) a notebook image: spec {"name","base","requirements"};
 * returns the ExecResult JSON, whose "image" names it. */
static inline char *wflow_notebook_build(const char *spec, wflow_errno_t *err) {
  return wflow__call(wflow_v1_notebook_build, spec, err);
}

/* Starts a step in the background; its handle goes to *handle. */
static inline wflow_errno_t wflow_submit(const char *spec, wflow_handle_t *handle) {
  return wflow_v1_step_submit(spec, (uint32_t)strlen(spec), handle);
}

/* Waits for the first of the handles to finish and returns its ExecResult
 * JSON; *ready says which handle it was (now freed). */
static inline char *wflow_wait(const wflow_handle_t *handles, uint32_t count, wflow_handle_t *ready,
                               wflow_errno_t *err) {
  *err = wflow_v1_step_wait(handles, count, ready);
  if (*err != WFLOW_OK) return NULL;
  return wflow_result(*ready, err);
}

/* wflow_wait giving up after timeout_ms milliseconds: NULL with *err set to
 * WFLOW_ERR_TIMEOUT when none of the handles finished by then (they stay
 * open). ABI v1.2. */
static inline char *wflow_wait_timeout(const wflow_handle_t *handles, uint32_t count, uint32_t timeout_ms,
                                       wflow_handle_t *ready, wflow_errno_t *err) {
  *err = wflow_v1_step_wait_timeout(handles, count, timeout_ms, ready);
  if (*err != WFLOW_OK) return NULL;
  return wflow_result(*ready, err);
}

/* Cancels a queued or running step and returns at once; its result (with
 * "error_kind":"cancelled" unless it had finished) is read as any other.
 * ABI v1.2. */
static inline wflow_errno_t wflow_cancel(wflow_handle_t handle) { return wflow_v1_step_cancel(handle); }

/* Starts a service (docs/services.md) and returns once it is ready; its id
 * goes to *service. On WFLOW_ERR_SERVICE_FAILED, wflow_last_error() says
 * why. ABI v1.2. */
static inline wflow_errno_t wflow_service_start(const char *spec, uint32_t *service) {
  return wflow_v1_service_start(spec, (uint32_t)strlen(spec), service);
}

/* Runs an exec spec in a service's container and returns its ExecResult
 * JSON once it has finished. ABI v1.2. */
static inline char *wflow_service_exec(uint32_t service, const char *spec, wflow_errno_t *err) {
  wflow_handle_t h, ready;
  *err = wflow_v1_service_exec(service, spec, (uint32_t)strlen(spec), &h);
  if (*err != WFLOW_OK) return NULL;
  return wflow_wait(&h, 1, &ready, err);
}

/* Stops a service and removes its container. ABI v1.2. */
static inline wflow_errno_t wflow_service_stop(uint32_t service) { return wflow_v1_service_stop(service); }

/* Writes an info line to the run's log. */
static inline void wflow_log(const char *msg) {
  wflow_v1_log_write(WFLOW_LOG_INFO, msg, (uint32_t)strlen(msg));
}

/* Sets the workflow's output (a JSON value) for the run report. */
static inline wflow_errno_t wflow_set_output(const char *json) {
  return wflow_v1_output_set(json, (uint32_t)strlen(json));
}

/* ---- Parameters ---- */

/* wflow__skip_string returns the byte after the JSON string starting at p
 * (at its opening quote), or NULL when it does not end. */
static inline const char *wflow__skip_string(const char *p) {
  for (p++; *p; p++) {
    if (*p == '\\' && p[1]) p++;
    else if (*p == '"') return p + 1;
  }
  return NULL;
}

/* wflow__skip_value returns the ',' or '}' that follows the JSON value at p
 * (a string, object, array, number or literal), or NULL when there is none. */
static inline const char *wflow__skip_value(const char *p) {
  int depth = 0;
  while (p && *p) {
    if (*p == '"') {
      p = wflow__skip_string(p);
      if (!p) return NULL;
    } else if (*p == '{' || *p == '[') {
      depth++, p++;
    } else if (*p == '}' || *p == ']') {
      if (depth == 0) return p;
      depth--, p++;
    } else {
      p++;
    }
    if (depth == 0 && (*p == ',' || *p == '}')) return p;
  }
  return NULL;
}

/* wflow__field returns the value of the top-level field `key` of a JSON
 * object (a pointer into json, at the value's first byte), or NULL when the
 * object has no such field. Nested objects are skipped, not searched. */
static inline const char *wflow__field(const char *json, const char *key) {
  size_t klen = strlen(key);
  const char *p = json;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p != '{') return NULL;
  while (p && *p && *p != '}') {
    p++; /* past '{' or ',' */
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p != '"') return NULL;
    const char *k = p + 1, *end = wflow__skip_string(p);
    if (!end) return NULL;
    int match = (size_t)(end - 1 - k) == klen && strncmp(k, key, klen) == 0;
    p = end;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (match) return p;
    p = wflow__skip_value(p);
  }
  return NULL;
}

/* wflow_json_int reads the top-level integer field `key` of a JSON object,
 * e.g. an ExecResult's "returncode", "handle" or "duration_ms"; dflt when
 * it is absent or not a number. */
static inline long wflow_json_int(const char *json, const char *key, long dflt) {
  const char *v = wflow__field(json, key);
  if (!v || (*v != '-' && (*v < '0' || *v > '9'))) return dflt;
  return strtol(v, NULL, 10);
}

/* wflow__utf8 writes code point c as UTF-8 at o and returns the byte after. */
static inline char *wflow__utf8(char *o, unsigned c) {
  if (c < 0x80) *o++ = (char)c;
  else if (c < 0x800) { *o++ = (char)(0xc0 | c >> 6); *o++ = (char)(0x80 | (c & 0x3f)); }
  else if (c < 0x10000) { *o++ = (char)(0xe0 | c >> 12); *o++ = (char)(0x80 | ((c >> 6) & 0x3f)); *o++ = (char)(0x80 | (c & 0x3f)); }
  else { *o++ = (char)(0xf0 | c >> 18); *o++ = (char)(0x80 | ((c >> 12) & 0x3f)); *o++ = (char)(0x80 | ((c >> 6) & 0x3f)); *o++ = (char)(0x80 | (c & 0x3f)); }
  return o;
}

/* wflow__hex4 reads four hex digits at p; -1 when they are not. */
static inline long wflow__hex4(const char *p) {
  long c = 0;
  for (int i = 0; i < 4; i++) {
    char h = p[i];
    int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
    if (d < 0) return -1;
    c = c * 16 + d;
  }
  return c;
}

/* wflow_json_string returns the top-level string field `key` of a JSON
 * object, decoded (escapes, \uXXXX as UTF-8), as a malloc'ed
 * NUL-terminated string the caller frees; NULL when it is absent or not a
 * string. */
static inline char *wflow_json_string(const char *json, const char *key) {
  const char *v = wflow__field(json, key);
  if (!v || *v != '"') return NULL;
  const char *end = wflow__skip_string(v);
  if (!end) return NULL;
  char *out = malloc((size_t)(end - v) + 1), *o = out;
  if (!out) return NULL;
  for (const char *p = v + 1; p < end - 1; p++) {
    if (*p != '\\') { *o++ = *p; continue; }
    switch (*++p) {
      case 'n': *o++ = '\n'; break;
      case 't': *o++ = '\t'; break;
      case 'r': *o++ = '\r'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'u': {
        long c = end - p > 4 ? wflow__hex4(p + 1) : -1;
        if (c < 0) { free(out); return NULL; }
        p += 4;
        if (c >= 0xd800 && c < 0xdc00 && end - p > 6 && p[1] == '\\' && p[2] == 'u') {
          long lo = wflow__hex4(p + 3);
          if (lo >= 0xdc00 && lo < 0xe000) { c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00); p += 6; }
        }
        if (c >= 0xd800 && c < 0xe000) c = 0xfffd; /* a lone surrogate is no character */
        o = wflow__utf8(o, (unsigned)c);
        break;
      }
      default: *o++ = *p; /* \" \\ \/ */
    }
  }
  *o = 0;
  return out;
}

/* wflow_param returns the string parameter `name` (-p name=value, or a
 * string in --params), decoded, as a malloc'ed NUL-terminated string the
 * caller frees; NULL when the parameter is missing or not a string. */
static inline char *wflow_param(const char *name) {
  wflow_errno_t err;
  char *params = wflow_params(&err);
  if (!params) return NULL;
  char *value = wflow_json_string(params, name);
  free(params);
  return value;
}

#endif /* WFLOW_H */

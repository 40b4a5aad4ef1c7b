/*
 * wflow_policy.h: the C SDK for wflow policy modules, policy ABI v1
 * (docs/policies.md). A policy is a WASI command: its main reads the
 * request with wflow_policy_input() and answers once with
 * wflow_policy_allow(), wflow_policy_deny() or wflow_policy_amend().
 *
 *   clang --target=wasm32-wasi -O2 -I sdk/c -o policy.wasm policy.c
 */
#ifndef WFLOW_POLICY_H
#define WFLOW_POLICY_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WFLOW_POLICY_IMPORT(name) __attribute__((import_module("wflow_policy_v1"), import_name(name)))

WFLOW_POLICY_IMPORT("input_get")
uint32_t wflow_policy_v1_input_get(char *buf, uint32_t buf_cap, uint32_t *len);

WFLOW_POLICY_IMPORT("decide")
uint32_t wflow_policy_v1_decide(const char *json, uint32_t json_len);

/* The request as a malloc'ed NUL-terminated JSON string, or NULL:
 * {"policy_abi":"wflow_policy_v1","kind":"container","step":{...},"run":{...}} */
static inline char *wflow_policy_input(void) {
  uint32_t cap = 4096, len = 0;
  for (;;) {
    char *buf = (char *)malloc(cap + 1);
    if (!buf) return NULL;
    uint32_t err = wflow_policy_v1_input_get(buf, cap, &len);
    if (err == 0) { buf[len] = 0; return buf; }
    free(buf);
    if (err != 5 /* buffer_too_small */) return NULL;
    cap = len;
  }
}

static inline uint32_t wflow_policy_decide(const char *json) {
  return wflow_policy_v1_decide(json, (uint32_t)strlen(json));
}

/* Lets the step run as it is. */
static inline uint32_t wflow_policy_allow(void) { return wflow_policy_decide("{\"verdict\":\"allow\"}"); }

/* Refuses the step. reason must not contain '"' or '\\'. */
static inline uint32_t wflow_policy_deny(const char *reason) {
  size_t n = strlen(reason) + 40;
  char *json = (char *)malloc(n);
  if (!json) return 1;
  snprintf(json, n, "{\"verdict\":\"deny\",\"reason\":\"%s\"}", reason);
  uint32_t err = wflow_policy_decide(json);
  free(json);
  return err;
}

/* Lets the step run as step_json (the whole amended step spec). reason must
 * not contain '"' or '\\'. */
static inline uint32_t wflow_policy_amend(const char *step_json, const char *reason) {
  size_t n = strlen(step_json) + strlen(reason) + 60;
  char *json = (char *)malloc(n);
  if (!json) return 1;
  snprintf(json, n, "{\"verdict\":\"amend\",\"reason\":\"%s\",\"step\":%s}", reason, step_json);
  uint32_t err = wflow_policy_decide(json);
  free(json);
  return err;
}

#endif /* WFLOW_POLICY_H */

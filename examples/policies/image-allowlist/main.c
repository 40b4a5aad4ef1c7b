/*
 * image-allowlist: an example policy in C. It allows a step only when its
 * image starts with one of the allowed prefixes below, and refuses it
 * otherwise, saying which image and why.
 *
 *   clang --target=wasm32-wasi -O2 -I sdk/c -o image-allowlist.wasm examples/policies/image-allowlist/main.c
 *   wflow policy test image-allowlist.wasm --step step.json
 */
#include <stdio.h>
#include <string.h>

#include "wflow_policy.h"

static const char *allowed[] = {"wflow-test/", "registry.example.com/approved/"};

int main(void) {
  char *req = wflow_policy_input();
  if (!req) return 1; /* no decision: wflow refuses the step (fail-closed) */
  /* The host writes "image":"<ref>" inside "step"; the request holds no other "image" key. */
  const char *p = strstr(req, "\"image\":\"");
  if (!p) {
    wflow_policy_deny("the step has no image");
    return 0;
  }
  p += strlen("\"image\":\"");
  size_t n = strcspn(p, "\"\\");
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
    if (n >= strlen(allowed[i]) && strncmp(p, allowed[i], strlen(allowed[i])) == 0) {
      wflow_policy_allow();
      return 0;
    }
  }
  char reason[300];
  snprintf(reason, sizeof reason, "image %.*s is not on the allow-list (wflow-test/*, registry.example.com/approved/*)",
           (int)(n > 200 ? 200 : n), p);
  wflow_policy_deny(reason);
  return 0;
}

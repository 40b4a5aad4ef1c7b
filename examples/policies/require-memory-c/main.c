/*
 * require-memory-c: the "every step needs a memory limit" example policy in
 * C (examples/policies/require-memory is the same in Go): a step without a
 * memory limit is amended to 256m.
 *
 *   clang --target=wasm32-wasi -O2 -I sdk/c -o require-memory.wasm examples/policies/require-memory-c/main.c
 */
#include <stdio.h>
#include <string.h>

#include "wflow_policy.h"

int main(void) {
  char *req = wflow_policy_input();
  if (!req) return 1; /* no decision: the step is refused (fail-closed) */
  /* The host writes the request as {"policy_abi":...,"kind":...,"step":{...},"run":{...}}
   * with no spaces, and field names of a step never occur inside its strings unescaped. */
  char *step = strstr(req, "\"step\":{");
  char *run = strstr(req, ",\"run\":{");
  if (!step || !run || run < step) {
    wflow_policy_deny("the request is not as documented");
    return 0;
  }
  step += strlen("\"step\":");
  *run = 0; /* step now holds exactly the step object */
  if (strstr(step, "\"memory\":")) {
    wflow_policy_allow();
    return 0;
  }
  /* Insert "memory":"256m" right after the opening brace. */
  size_t n = strlen(step) + 32;
  char *amended = malloc(n);
  if (!amended) return 1;
  snprintf(amended, n, "{\"memory\":\"256m\",%s", step + 1);
  wflow_policy_amend(amended, "every step needs a memory limit: set 256m");
  return 0;
}

/*
 * c-branch: an example workflow in C. It runs a step that looks for
 * data.csv in the run directory and branches on its ExecResult: when the
 * file is missing it runs a step that generates it; then it summarizes it.
 *
 *   clang --target=wasm32-wasi -O2 -I sdk/c -o c-branch.wasm examples/c-branch/main.c
 *   wflow run c-branch.wasm
 *
 * Parameter: image (default wflow-test/busybox).
 */
#include <stdio.h>
#include <string.h>

#include "wflow.h"

static char image[256] = "wflow-test/busybox";

/* run_step runs one step and returns its return code (or -1 when the host
 * refused the call), printing the host's message on failure. */
static long run_step(const char *name, const char *commands_json, char **result_out) {
  char spec[1024];
  snprintf(spec, sizeof spec, "{\"name\":\"%s\",\"image\":\"%s\",\"commands\":%s}", name, image,
           commands_json);
  wflow_errno_t err;
  char *result = wflow_run(spec, &err);
  if (!result) {
    char *msg = wflow_last_error();
    fprintf(stderr, "step %s: host error %u: %s\n", name, err, msg ? msg : "?");
    free(msg);
    return -1;
  }
  long rc = wflow_json_int(result, "returncode", -1);
  if (result_out)
    *result_out = result;
  else
    free(result);
  return rc;
}

int main(void) {
  wflow_errno_t err;
  char *params = wflow_params(&err);
  /* A tiny lookup of "image":"..." in the parameter object. */
  const char *p = params ? strstr(params, "\"image\":\"") : NULL;
  if (p) {
    p += 9;
    size_t n = strcspn(p, "\"");
    if (n > 0 && n < sizeof image) {
      memcpy(image, p, n);
      image[n] = 0;
    }
  }
  free(params);

  long rc = run_step("check", "[[\"test\",\"-s\",\"data.csv\"]]", NULL);
  if (rc < 0) return 2;
  const char *branch;
  if (rc == 0) {
    branch = "found";
    wflow_log("data.csv is present: summarizing it");
  } else {
    branch = "generated";
    wflow_log("data.csv is missing: generating it");
    if (run_step("generate", "[\"seq 1 10 | sed 's/$$/,x/' > data.csv\"]", NULL) != 0) {
      wflow_log("generate failed: stopping");
      return 1;
    }
  }

  char *result = NULL;
  rc = run_step("summarize", "[\"wc -l < data.csv\"]", &result);
  if (rc != 0) {
    free(result);
    return 1;
  }
  /* stdout of wc: the number of lines, as text in the ExecResult. */
  long lines = -1;
  const char *s = strstr(result, "\"stdout\":\"");
  if (s) lines = strtol(s + 10, NULL, 10);
  free(result);

  char out[128];
  snprintf(out, sizeof out, "{\"branch\":\"%s\",\"lines\":%ld}", branch, lines);
  if (wflow_set_output(out) != WFLOW_OK) return 1;
  return 0;
}

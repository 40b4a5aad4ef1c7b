/* A test guest of ABI v1.2 through sdk/c/wflow.h: a wait that times out
 * (wflow_wait_timeout), then wflow_cancel of the running step. Its output
 * is the errno of the wait, the cancelled step's error_kind, and whether
 * the step's handle was the one the last wait returned. */
#include <stdio.h>
#include "wflow.h"

int main(void) {
  wflow_handle_t h, ready = 0;
  if (wflow_submit("{\"name\":\"long\",\"image\":\"wflow-test/busybox\",\"commands\":[\"sleep 60\"]}", &h) != WFLOW_OK) return 1;
  wflow_errno_t err;
  char *res = wflow_wait_timeout(&h, 1, 500, &ready, &err);
  wflow_errno_t waited = err;
  if (res != NULL) return 2; /* a 60 s step finished within 500 ms */
  if (wflow_cancel(h) != WFLOW_OK) return 3;
  res = wflow_wait(&h, 1, &ready, &err);
  if (res == NULL) return 4;
  char *kind = wflow_json_string(res, "error_kind");
  char out[256];
  snprintf(out, sizeof out, "{\"wait_errno\":%u,\"kind\":\"%s\",\"same\":%s}", (unsigned)waited, kind ? kind : "",
           ready == h ? "true" : "false");
  return wflow_set_output(out) != 0;
}

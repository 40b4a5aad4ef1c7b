/* replayable-c: a test guest of wflow replay in C. It reads the wall clock
 * and random bytes (WASI clock_time_get and random_get, through wasi-libc)
 * and puts them in a step's command, logs them and sets them as its output:
 * a replay that fed it other values would see another step spec. Results
 * are read with the C SDK's 1 KiB first buffer, so a long one is asked for
 * twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wflow.h"

int main(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  unsigned char r[4];
  arc4random_buf(r, sizeof r);
  char token[16];
  snprintf(token, sizeof token, "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);

  char spec[256];
  snprintf(spec, sizeof spec,
           "{\"name\":\"c-clock\",\"image\":\"wflow-test/busybox\",\"commands\":[\"echo %lld %s; seq 1 500\"]}",
           (long long)ts.tv_sec, token);
  wflow_errno_t err;
  char *res = wflow_run(spec, &err);
  if (!res) return 1;
  char msg[96];
  snprintf(msg, sizeof msg, "clock %lld, token %s, result of %zu bytes", (long long)ts.tv_sec, token, strlen(res));
  wflow_log(msg);
  char out[128];
  snprintf(out, sizeof out, "{\"t\":%lld,\"token\":\"%s\",\"ok\":%s}", (long long)ts.tv_sec, token,
           strstr(res, "\"returncode\":0") ? "true" : "false");
  free(res);
  return wflow_set_output(out) == WFLOW_OK ? 0 : 1;
}

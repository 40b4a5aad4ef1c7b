/* hostcall-c: a benchmark guest in C: it times n calls of a wflow host
 * function (params_get) and, as the baseline, n calls of WASI's sched_yield,
 * and sets both as its output in ns per call. */
#include <sched.h>
#include <stdio.h>
#include <time.h>

#include "wflow.h"

#define N 1000000

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(void) {
  static char buf[64];
  uint32_t len;
  double t0 = now_ns();
  for (int i = 0; i < N; i++) wflow_v1_params_get(buf, sizeof buf, &len);
  double t1 = now_ns();
  for (int i = 0; i < N; i++) sched_yield();
  double t2 = now_ns();
  char out[128];
  snprintf(out, sizeof out, "{\"wflow_ns\":%.2f,\"baseline_ns\":%.2f}", (t1 - t0) / N, (t2 - t1) / N);
  return wflow_set_output(out) == WFLOW_OK ? 0 : 1;
}

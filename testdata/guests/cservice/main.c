/* A test guest of services through sdk/c/wflow.h: a job container with no
 * network, two commands run in it with exec (the second reads what the
 * first wrote in the container, outside the run directory), then stopped.
 * Its output is the second exec's stdout and whether stop succeeded. */
#include <stdio.h>
#include "wflow.h"

int main(void) {
  uint32_t job;
  if (wflow_service_start("{\"name\":\"cjob\",\"image\":\"wflow-test/busybox\",\"command\":[\"sleep\",\"86400\"],"
                          "\"network\":\"none\"}", &job) != WFLOW_OK) {
    wflow_log(wflow_last_error());
    return 1;
  }
  wflow_errno_t err;
  char *res = wflow_service_exec(job, "{\"name\":\"write\",\"commands\":[\"echo kept > /tmp/state\"]}", &err);
  if (res == NULL) return 2;
  res = wflow_service_exec(job, "{\"name\":\"read\",\"commands\":[[\"cat\",\"/tmp/state\"]]}", &err);
  if (res == NULL) return 3;
  char *out = wflow_json_string(res, "stdout");
  char *service = wflow_json_string(res, "service");
  wflow_errno_t stopped = wflow_service_stop(job);
  wflow_errno_t again = wflow_service_stop(job);
  char json[256];
  snprintf(json, sizeof json, "{\"stdout\":\"%s\",\"service\":\"%s\",\"stop\":%u,\"stop_again\":%u}",
           out && out[0] ? "kept" : "", service ? service : "", (unsigned)stopped, (unsigned)again);
  return wflow_set_output(json) != 0;
}

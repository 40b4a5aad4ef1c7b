/* c-notebook: a test guest in C for the notebook helpers of wflow.h. It
 * writes a notebook into the run directory, builds its image, runs it with a
 * typed parameter, and reads back what the notebook wrote. */
#include <stdio.h>
#include <string.h>

#include "wflow.h"

static const char *notebook =
    "{\"nbformat\":4,\"nbformat_minor\":5,\"metadata\":{\"kernelspec\":{\"name\":\"python3\"}},\"cells\":["
    "{\"cell_type\":\"code\",\"id\":\"p\",\"metadata\":{\"tags\":[\"parameters\"]},\"execution_count\":null,\"outputs\":[],\"source\":\"x = 0\"},"
    "{\"cell_type\":\"code\",\"id\":\"w\",\"metadata\":{},\"execution_count\":null,\"outputs\":[],"
    "\"source\":\"open('c-result.txt', 'w').write(str(x + 1))\"}]}";

int main(void) {
  FILE *f = fopen("c.ipynb", "w") /* relative: wflow.h starts C guests in the run directory */;
  if (!f) return 2;
  fputs(notebook, f);
  fclose(f);

  wflow_errno_t err;
  char *built = wflow_notebook_build("{\"name\":\"c-image\"}", &err);
  if (!built) return 3;
  long build_rc = wflow_json_int(built, "returncode", -1);
  free(built);

  char *ran = wflow_notebook_run("{\"name\":\"c-notebook\",\"notebook\":\"c.ipynb\",\"parameters\":{\"x\":41}}", &err);
  if (!ran) return 4;
  long run_rc = wflow_json_int(ran, "returncode", -1);
  free(ran);

  char result[32] = "";
  f = fopen("c-result.txt", "r");
  if (f) {
    if (!fgets(result, sizeof result, f)) result[0] = 0;
    fclose(f);
  }
  char out[128];
  snprintf(out, sizeof out, "{\"build_rc\":%ld,\"run_rc\":%ld,\"result\":\"%s\"}", build_rc, run_rc, result);
  return wflow_set_output(out) == WFLOW_OK ? 0 : 1;
}

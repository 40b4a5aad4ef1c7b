/* {{.Name}}: a wflow workflow in C. It runs one step in a container, reads
 * the file the step wrote into the run directory, and sets the outcome as
 * the workflow's output.
 *
 *   clang --target=wasm32-wasi -O2 -o workflow.wasm main.c
 *   wflow run workflow.wasm -p image=busybox --allow-registry docker.io
 */
#include <stdio.h>
#include <string.h>

#include "wflow.h"

int main(void) {
  char *image = wflow_param("image");
  if (image && strpbrk(image, "\"\\")) {
    fprintf(stderr, "parameter image: not an image name\n");
    return 2;
  }
  char spec[1024];
  snprintf(spec, sizeof spec,
           "{\"name\":\"hello\",\"image\":\"%s\",\"commands\":[\"echo hello from C > hello.txt\"]}",
           image ? image : "busybox");
  free(image);
  wflow_errno_t err;
  char *result = wflow_run(spec, &err);
  if (!result) {
    char *msg = wflow_last_error();
    fprintf(stderr, "step_run: %s\n", msg ? msg : "?");
    return 1;
  }
  char *error = wflow_json_string(result, "error");
  int ok = wflow_json_int(result, "returncode", 1) == 0 && !error;
  free(error);
  free(result);
  /* The run directory is the module's working directory too. */
  char greeting[128] = {0};
  FILE *f = fopen("hello.txt", "r");
  if (f) {
    fgets(greeting, sizeof greeting, f);
    fclose(f);
  }
  greeting[strcspn(greeting, "\n\"\\")] = 0;
  char out[256];
  snprintf(out, sizeof out, "{\"language\":\"C\",\"step_ok\":%s,\"greeting\":\"%s\"}", ok ? "true" : "false", greeting);
  wflow_set_output(out);
  return ok ? 0 : 1;
}

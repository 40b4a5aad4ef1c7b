/* A test guest for wflow_param (sdk/c/wflow.h): it sets as its output the
 * string parameters "a" and "image", and whether "num" (a number) and
 * "missing" read as NULL. */
#include <stdio.h>
#include "wflow.h"

int main(void) {
  char *a = wflow_param("a"), *image = wflow_param("image"), *num = wflow_param("num"), *missing = wflow_param("missing");
  char out[512];
  snprintf(out, sizeof out, "{\"a\":\"%s\",\"image\":\"%s\",\"num_null\":%s,\"missing_null\":%s}",
           a ? a : "(null)", image ? image : "(null)", num ? "false" : "true", missing ? "false" : "true");
  return wflow_set_output(out) != 0;
}

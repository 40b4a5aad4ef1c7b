/* A test guest: the run directory is the working directory of a C module
 * too. It reads in.txt and writes sub/out-c.txt by relative paths. */
#include <stdio.h>
#include <sys/stat.h>

int main(void) {
  char buf[100] = {0};
  FILE *f = fopen("in.txt", "r");
  if (!f || !fgets(buf, sizeof buf, f)) { perror("in.txt"); return 1; }
  fclose(f);
  mkdir("sub", 0755);
  f = fopen("sub/out-c.txt", "w");
  if (!f) { perror("sub/out-c.txt"); return 2; }
  fputs(buf, f);
  return fclose(f) != 0;
}

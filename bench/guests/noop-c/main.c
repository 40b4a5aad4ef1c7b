/* noop-c: a benchmark guest in C that runs no step. */
int main(void) { return 0; }

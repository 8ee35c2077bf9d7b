/* mtrctl entry point (placeholder). */
#include <stdio.h>
int main(void) {
  fprintf(stderr, "usage: mtrctl [--config FILE] COMMAND ...\n");
  return 2;
}

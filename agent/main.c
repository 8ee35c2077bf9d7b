/* mtr-agent entry point (placeholder until the trace command lands). */
#include <stdio.h>
int main(void) {
  fprintf(stderr, "mtr-agent: not built yet\n");
  return 2;
}

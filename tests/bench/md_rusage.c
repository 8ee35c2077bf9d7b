/* md-rusage: run a command and print "wall_s user_s sys_s maxrss_kb" on
 * stderr-free fd 3 (or stdout with -o -), with the microsecond CPU times the
 * kernel keeps. GNU time rounds to 10 ms, too coarse for CPU per probe.
 * The child's figures include its own waited-for children (mtr's
 * mtr-packet helper), as wait4() reports them.
 *
 *   md-rusage OUTFILE CMD [ARGS...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: md-rusage OUTFILE CMD [ARGS...]\n");
    return 2;
  }
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    perror(argv[2]);
    _exit(127);
  }
  int st;
  struct rusage ru;
  if (wait4(pid, &st, 0, &ru) < 0) {
    perror("wait4");
    return 2;
  }
  double wall = now_s() - t0;
  FILE *f = fopen(argv[1], "w");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  fprintf(f, "%.3f %.6f %.6f %ld\n", wall, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
          ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss);
  fclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

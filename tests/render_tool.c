/* md-render: render a stored report (report.json) for tests and by hand.
 *   md-render REPORT.json text|json|markdown|html [OUT]   (OUT "-" or none: stdout)
 *   md-render REPORT.json bundle DIR                      (the --output bundle)
 * Exit 0, 1 when the report does not read or cannot be written (the
 * message on stderr), 2 on usage errors. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bundle.h"
#include "render.h"
#include "report_json.h"

/* Load, render, write. */
int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: md-render REPORT.json text|json|markdown|html [OUT]\n"
                    "       md-render REPORT.json bundle DIR\n");
    return 2;
  }
  char err[512];
  md_report *r = md_report_load_json_file(argv[1], err, sizeof err);
  if (!r) {
    fprintf(stderr, "md-render: %s\n", err);
    return 1;
  }
  int rc;
  if (strcmp(argv[2], "bundle") == 0) {
    if (argc != 4) {
      md_report_free(r);
      fprintf(stderr, "md-render: bundle needs a directory\n");
      return 2;
    }
    rc = md_bundle_write(r, argv[3], NULL, err, sizeof err);
    if (rc)
      fprintf(stderr, "md-render: %s\n", err);
    md_report_free(r);
    return rc ? 1 : 0;
  }
  md_format f;
  if (md_format_parse(argv[2], &f) != 0) {
    md_report_free(r);
    fprintf(stderr, "md-render: unknown format %s\n", argv[2]);
    return 2;
  }
  FILE *out = stdout;
  if (argc == 4 && strcmp(argv[3], "-") != 0) {
    out = fopen(argv[3], "w");
    if (!out) {
      fprintf(stderr, "md-render: %s: %s\n", argv[3], strerror(errno));
      md_report_free(r);
      return 1;
    }
  }
  rc = md_render(r, f, out);
  int closed = out == stdout ? fflush(out) : fclose(out);
  if (closed != 0 && rc == 0)
    rc = -EIO;
  if (rc)
    fprintf(stderr, "md-render: %s: %s\n", argc == 4 ? argv[3] : "stdout", strerror(-rc));
  md_report_free(r);
  return rc ? 1 : 0;
}

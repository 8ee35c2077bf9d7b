/* daemon: `mtr-agent --config FILE`, the agent that controllers command
 * (docs/agent.md).
 *
 * md_daemon_main() is the whole program: configuration, TLS, probe
 * sockets, listeners, the privilege drop, signals (SIGHUP reloads), the
 * loop. md_daemon_start() is the same service (without the privilege
 * drop) on a loop and configuration the caller owns, so tests can run an
 * agent and its controllers in one process:
 *
 *   md_daemon *d;
 *   md_daemon_start(loop, &cfg, NULL, &d, err, sizeof err);
 *   md_daemon_listen_addr(d, 0, &addr);     // the port, when cfg asked for 0
 *   ... uv_run(loop) with clients ...
 *   md_daemon_stop(d, NULL, NULL);          // cancel runs, close everything
 *   uv_run(loop, UV_RUN_DEFAULT);
 *   md_daemon_free(d);
 */
#ifndef MD_DAEMON_H
#define MD_DAEMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "md_addr.h"
#include "md_config.h"
#include "session.h"

/* The agent's version string (agent_version.c). */
const char *md_agent_version(void);

typedef struct md_daemon md_daemon;

typedef struct md_daemon_opts {
  unsigned prober_flags; /* md_prober_open flags: MD_PROBER_NO_RAW for tests */
  const char *user;      /* md_daemon_main: --user, over the config's `user:`; NULL: not given */
} md_daemon_opts;

/* md_daemon_start's error for unusable TLS files (certificate, key, CA);
 * the program exits 2 for it, as for a configuration error. */
#define MD_DAEMON_ETLS (-EKEYREJECTED)

/* Serve controllers on loop as cfg says (cfg must outlive the daemon):
 * TLS server context, probe sockets, a listener per cfg->listen entry
 * (IPv6 ones IPv6-only, so 0.0.0.0 and :: may share a port). opts may be
 * NULL. 0, or a negative errno with a sentence in err: MD_DAEMON_ETLS,
 * the prober's error, or the listener's (-EADDRINUSE...). On failure
 * nothing is left but handles closing on the loop (run it, or exit). */
int md_daemon_start(uv_loop_t *loop, const md_agent_config *cfg, const md_daemon_opts *opts,
                    md_daemon **out, char *err, size_t errlen);

/* Stop: close the listeners, cancel every run (each controller gets its
 * RunResult CANCELLED), close every connection, close the probe sockets.
 * done (optional) is called once all of it is closed; then md_daemon_free. */
void md_daemon_stop(md_daemon *d, void (*done)(md_daemon *d, void *ud), void *ud);
/* Release the daemon after its stop finished (or after a failed start's
 * handles closed, which happens on the next loop run). NULL is fine. */
void md_daemon_free(md_daemon *d);

/* Reload (SIGHUP): from now on, new connections get a TLS server context
 * made from cfg's certificate, key and CA, and every check reads cfg:
 * allowed_controllers for new connections, the whole policy
 * (allow_targets, limits, timeouts) for new RunRequests, `name` for new
 * HelloAcks and runs. Connections and runs in flight go on undisturbed
 * (an accepted run is never re-checked). `listen` and `user` take effect
 * at the next start only (a warning says so when they changed).
 * On success the daemon takes over cfg's contents (and zeroes *cfg);
 * the configuration it replaces is released once nothing can point into
 * it (the caller's own, given to md_daemon_start, is never freed here).
 * On failure nothing changes and *cfg stays the caller's: MD_DAEMON_ETLS
 * (the new TLS files are unusable), -ESHUTDOWN (stopping), -ENOMEM. */
int md_daemon_reload(md_daemon *d, md_agent_config *cfg, char *err, size_t errlen);
/* Load path (md_agent_config_load) and md_daemon_reload it, logging the
 * outcome; a configuration error is returned as the loader's (-EINVAL...). */
int md_daemon_reload_file(md_daemon *d, const char *path, char *err, size_t errlen);
/* The configuration in force (the last successful reload's, or the start's). */
const md_agent_config *md_daemon_config(const md_daemon *d);

/* Runs scheduled or probing now, over all sessions. */
unsigned md_daemon_active_runs(const md_daemon *d);
/* Controller connections open now. */
unsigned md_daemon_sessions(const md_daemon *d);
void md_daemon_get_stats(const md_daemon *d, md_agent_stats *out);
/* Listeners (one per cfg->listen entry) and the address each is bound to,
 * with the port the kernel chose when the configuration said 0. */
size_t md_daemon_n_listeners(const md_daemon *d);
int md_daemon_listen_addr(const md_daemon *d, size_t i, md_addr *out);

/* The program: load config_path, start, drop privileges (privdrop.h:
 * the service user, no capabilities), serve until SIGTERM or SIGINT,
 * reload on SIGHUP, and return the exit status (0 clean stop, 2
 * configuration or TLS file error or unknown user, 1 anything else, such
 * as a listen address in use or a privilege drop that failed). */
int md_daemon_main(const char *config_path, const md_daemon_opts *opts);

/* Load config_path and the TLS files, resolve the user, print what would
 * be served, and return the exit status (0 or 2), without listening
 * (`--check-config`). opts may be NULL. */
int md_daemon_check_config(const char *config_path, const md_daemon_opts *opts);

#endif

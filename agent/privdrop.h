/* privdrop: least privilege for the agent daemon (docs/security.md).
 *
 * The agent needs CAP_NET_RAW only to open its raw sockets, and root (if
 * it was started as root) for nothing at all. Once the prober, the TLS
 * context and the listeners exist, md_privdrop_apply() gives up both:
 *
 *   md_privdrop_plan p;
 *   md_privdrop_resolve(user, geteuid(), &p, err, sizeof err); // before start; error: exit 2
 *   md_daemon_start(...);                                       // raw sockets, TLS, listeners
 *   md_privdrop_apply(&p, err, sizeof err);                     // error: stop, exit 1
 *
 * Who the process becomes:
 *   started as root, user given (--user, config `user:`)  that user (unknown user: an error)
 *   started as root, no user given                         "mtr-agent" when it exists; else it
 *                                                          stays root, with a warning
 *   started as another user (systemd User=, ambient        itself: it never calls setuid; a
 *   CAP_NET_RAW)                                           different user given is an error
 *
 * Then, in every case: no capabilities (permitted, effective, inheritable,
 * ambient all empty; the bounding set emptied too when the process may),
 * PR_SET_NO_NEW_PRIVS (no exec can gain any), not dumpable (no core file
 * with the TLS key, no ptrace by the same user). The result is checked
 * with getresuid/getresgid/capget; any failure is an error: the agent does
 * not run half-dropped.
 */
#ifndef MD_PRIVDROP_H
#define MD_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The service user taken by default when the agent is started as root. */
#define MD_PRIVDROP_DEFAULT_USER "mtr-agent"

/* The most groups the service user may belong to (its primary one included). */
#define MD_PRIVDROP_MAX_GROUPS 64

typedef struct md_privdrop_plan {
  bool switch_user; /* setgroups/setgid/setuid to uid/gid (started as root) */
  bool stay_root;   /* started as root with no user to become: warn */
  bool root_asked;  /* ... because root itself was asked for (--user root) */
  uid_t uid;        /* the user the agent runs as after the drop */
  gid_t gid;        /* its primary group */
  char user[65];    /* its name ("" when it has none in the user database) */
  bool quiet;       /* md_privdrop_apply logs nothing (mtr-agent trace: a command, not a service) */
  int ngroups;      /* its groups, set with setgroups (the user database's, read by resolve) */
  gid_t groups[MD_PRIVDROP_MAX_GROUPS];
} md_privdrop_plan;

/* Decide who to become. user: --user or `user:` (NULL or "": not given);
 * euid: the process's effective uid (geteuid(); a parameter for tests).
 * 0, or -ENOENT (no such user) / -EPERM (a different user asked for by a
 * process that is not root) / -E2BIG (the user is in too many groups),
 * with the reason in err. The user database is read in a short-lived child
 * process, so NSS modules are never loaded into the agent itself. */
int md_privdrop_resolve(const char *user, uid_t euid, md_privdrop_plan *p, char *err,
                        size_t errlen);

/* One line saying what md_privdrop_apply will do (--check-config). */
void md_privdrop_describe(const md_privdrop_plan *p, char *buf, size_t len);

/* Drop now (see the top of this file) and log what was done. Must run
 * before any other thread exists (capset and prctl act on one thread):
 * -EBUSY otherwise. 0, or a negative errno with the failed step in err. */
int md_privdrop_apply(const md_privdrop_plan *p, char *err, size_t errlen);

/* The capability sets of the calling thread (bit n = capability n). 0 or
 * negative errno. */
int md_privdrop_caps(uint64_t *effective, uint64_t *permitted, uint64_t *inheritable);

#endif

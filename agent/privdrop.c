/* privdrop: who the agent runs as, and the drop of root and of every
 * capability once its sockets are open. See privdrop.h; the reasons are in
 * docs/security.md. Raw capget/capset system calls, so no libcap. */
/* _GNU_SOURCE (the build defines it): getresuid, setresuid, pipe2 */
#include "privdrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "md_log.h"

#ifndef PR_CAP_AMBIENT /* headers older than Linux 4.3 */
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* What the user database says of one user. */
typedef struct md__pwinfo {
  int found; /* 1: the user exists */
  int err;   /* the lookup's errno when it failed (0: simply no such user) */
  uid_t uid;
  gid_t gid;
  char name[65];
  int ngroups; /* its groups (getgrouplist: the primary one included); -1: too many */
  gid_t groups[MD_PRIVDROP_MAX_GROUPS];
} md__pwinfo;

/* The lookup itself: by name, or by uid when name is NULL; with the
 * user's groups when asked. */
static void pw_lookup(const char *name, uid_t uid, bool with_groups, md__pwinfo *out) {
  struct passwd pw, *res = NULL;
  char buf[4096];
  memset(out, 0, sizeof *out);
  int e = name ? getpwnam_r(name, &pw, buf, sizeof buf, &res)
               : getpwuid_r(uid, &pw, buf, sizeof buf, &res);
  if (!res) {
    out->err = e;
    return;
  }
  out->found = 1;
  out->uid = res->pw_uid;
  out->gid = res->pw_gid;
  snprintf(out->name, sizeof out->name, "%s", res->pw_name);
  if (!with_groups)
    return;
  int n = MD_PRIVDROP_MAX_GROUPS;
  out->ngroups = getgrouplist(res->pw_name, res->pw_gid, out->groups, &n) < 0 ? -1 : n;
}

/* The same lookup in a short-lived child process. NSS modules (systemd,
 * sss, ldap...) are shared libraries that glibc loads into the process that
 * asks and never unloads; asked here, they would sit in the long-running,
 * network-facing agent for the rest of its life (about 0.4 MiB of RSS for
 * libnss_systemd and libcap alone). The child asks and reports through a
 * pipe; the agent itself never loads them. Falls back to asking in this
 * process when no child can be made. */
static void pw_lookup_isolated(const char *name, uid_t uid, bool with_groups, md__pwinfo *out) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    pw_lookup(name, uid, with_groups, out);
    return;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    md__pwinfo r;
    pw_lookup(name, uid, with_groups, &r);
    /* smaller than PIPE_BUF: one atomic write */
    _exit(write(fds[1], &r, sizeof r) == (ssize_t)sizeof r ? 0 : 1);
  }
  close(fds[1]);
  size_t got = 0;
  while (pid > 0 && got < sizeof *out) {
    ssize_t n = read(fds[0], (char *)out + got, sizeof *out - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fds[0]);
  if (pid > 0)
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
  if (got != sizeof *out)
    pw_lookup(name, uid, with_groups, out); /* no child, or it died: ask here */
  out->name[sizeof out->name - 1] = '\0';
}

int md_privdrop_resolve(const char *user, uid_t euid, md_privdrop_plan *p, char *err,
                        size_t errlen) {
  memset(p, 0, sizeof *p);
  bool given = user && user[0];
  const char *want = given ? user : MD_PRIVDROP_DEFAULT_USER;
  md__pwinfo pw = {0};
  if (given || euid == 0) /* not root and nothing asked: no one to look up */
    pw_lookup_isolated(want, 0, euid == 0, &pw);
  if (!pw.found && given) {
    snprintf(err, errlen, "user '%s' does not exist%s%s", want, pw.err ? ": " : "",
             pw.err ? strerror(pw.err) : "");
    return -ENOENT;
  }
  if (pw.found && euid == 0) { /* root becomes the service user */
    if (pw.ngroups < 0) {
      snprintf(err, errlen, "user '%s' belongs to more than %d groups", pw.name,
               MD_PRIVDROP_MAX_GROUPS);
      return -E2BIG;
    }
    p->uid = pw.uid;
    p->gid = pw.gid;
    p->ngroups = pw.ngroups;
    memcpy(p->groups, pw.groups, sizeof p->groups);
    snprintf(p->user, sizeof p->user, "%s", pw.name);
    p->switch_user = p->uid != 0;
    p->stay_root = p->root_asked = p->uid == 0; /* --user root */
    return 0;
  }
  if (pw.found && given && pw.uid != euid) {
    snprintf(err, errlen,
             "cannot become user '%s' (uid %u): the agent was started as uid %u, not as root; "
             "start it as root or as '%s' (systemd: User=%s)",
             want, (unsigned)pw.uid, (unsigned)euid, want, want);
    return -EPERM;
  }
  /* stay who we are: not root (systemd User=), or root with no service user */
  p->uid = euid;
  p->gid = getegid();
  if (pw.found && pw.uid == euid) {
    snprintf(p->user, sizeof p->user, "%s", pw.name);
  } else {
    pw_lookup_isolated(NULL, euid, false, &pw);
    if (pw.found)
      snprintf(p->user, sizeof p->user, "%s", pw.name);
  }
  p->stay_root = euid == 0;
  return 0;
}

void md_privdrop_describe(const md_privdrop_plan *p, char *buf, size_t len) {
  if (p->switch_user)
    snprintf(buf, len, "runs as user '%s' (uid %u, gid %u) with no capabilities", p->user,
             (unsigned)p->uid, (unsigned)p->gid);
  else if (p->stay_root && p->root_asked)
    snprintf(buf, len, "runs as root (asked for) with no capabilities");
  else if (p->stay_root)
    snprintf(buf, len,
             "runs as root with no capabilities: no user '%s' exists and none is configured "
             "(--user, user:)",
             MD_PRIVDROP_DEFAULT_USER);
  else
    snprintf(buf, len, "runs as user '%s' (uid %u) with no capabilities",
             p->user[0] ? p->user : "?", (unsigned)p->uid);
}

/* Capability sets as two 32-bit words each (version 3), into 64-bit masks. */
int md_privdrop_caps(uint64_t *effective, uint64_t *permitted, uint64_t *inheritable) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
  memset(d, 0, sizeof d);
  if (syscall(SYS_capget, &h, d) != 0)
    return -errno;
  if (effective)
    *effective = (uint64_t)d[1].effective << 32 | d[0].effective;
  if (permitted)
    *permitted = (uint64_t)d[1].permitted << 32 | d[0].permitted;
  if (inheritable)
    *inheritable = (uint64_t)d[1].inheritable << 32 | d[0].inheritable;
  return 0;
}

/* Empty permitted, effective and inheritable sets of this thread. */
static int caps_clear(void) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
  memset(d, 0, sizeof d);
  return syscall(SYS_capset, &h, d) == 0 ? 0 : -errno;
}

/* Threads of this process: capset and prctl change the calling one only. */
static int count_threads(void) {
  DIR *dir = opendir("/proc/self/task");
  if (!dir)
    return 1; /* no /proc: nothing to count with (threads are not started before this) */
  int n = 0;
  struct dirent *de;
  while ((de = readdir(dir)))
    if (de->d_name[0] != '.')
      n++;
  closedir(dir);
  return n;
}

/* Empty the bounding set (needs CAP_SETPCAP, which root has): no exec,
 * even of a file with capabilities, can gain one back. Number of
 * capabilities dropped, or negative errno. */
static int bounding_clear(void) {
  int dropped = 0;
  for (int cap = 0; cap < 64; cap++) {
    int in = prctl(PR_CAPBSET_READ, (unsigned long)cap, 0, 0, 0);
    if (in < 0)
      break; /* EINVAL: past the kernel's last capability */
    if (in == 1) {
      if (prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0, 0, 0) != 0)
        return -errno;
      dropped++;
    }
  }
  return dropped;
}

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    int e_ = errno;                                                                                \
    snprintf(err, errlen, __VA_ARGS__);                                                            \
    size_t n_ = strlen(err);                                                                       \
    snprintf(err + n_, errlen > n_ ? errlen - n_ : 0, ": %s", strerror(e_));                       \
    return e_ ? -e_ : -EPERM;                                                                      \
  } while (0)

int md_privdrop_apply(const md_privdrop_plan *p, char *err, size_t errlen) {
  int threads = count_threads();
  if (threads > 1) {
    snprintf(err, errlen, "cannot drop privileges: %d threads run already (must be 1)", threads);
    return -EBUSY;
  }
  uint64_t eff = 0, had = 0;
  int rc = md_privdrop_caps(&eff, &had, NULL);
  if (rc < 0) {
    errno = -rc;
    FAIL("capget");
  }
  /* setuid from root then clears the permitted set (no "keep caps") */
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0)
    FAIL("prctl(PR_SET_KEEPCAPS, 0)");
  bool bounding = false;
  if (eff & (UINT64_C(1) << CAP_SETPCAP)) {
    rc = bounding_clear();
    if (rc < 0) {
      errno = -rc;
      FAIL("prctl(PR_CAPBSET_DROP)");
    }
    bounding = true;
  }
  if (p->switch_user) {
    /* the groups resolve found (getgrouplist), so no user database is read here */
    if ((p->ngroups > 0 ? setgroups((size_t)p->ngroups, p->groups) : setgroups(1, &p->gid)) != 0)
      FAIL("setgroups for user '%s'", p->user);
    if (setresgid(p->gid, p->gid, p->gid) != 0)
      FAIL("setgid(%u)", (unsigned)p->gid);
    if (setresuid(p->uid, p->uid, p->uid) != 0)
      FAIL("setuid(%u)", (unsigned)p->uid);
  }
  /* lowering permitted lowers ambient too; say it anyway (EINVAL: kernel < 4.3) */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    FAIL("prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  rc = caps_clear();
  if (rc < 0) {
    errno = -rc;
    FAIL("capset (clearing every capability)");
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    FAIL("prctl(PR_SET_NO_NEW_PRIVS)");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    FAIL("prctl(PR_SET_DUMPABLE, 0)");

  /* Check the result rather than trust it. */
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  uint64_t prm = 1, inh = 1;
  eff = 1;
  if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0)
    FAIL("getresuid");
  if (ru != p->uid || eu != p->uid || su != p->uid ||
      (p->switch_user && (rg != p->gid || eg != p->gid || sg != p->gid))) {
    snprintf(err, errlen, "uids %u/%u/%u gids %u/%u/%u after the drop, expected uid %u gid %u",
             (unsigned)ru, (unsigned)eu, (unsigned)su, (unsigned)rg, (unsigned)eg, (unsigned)sg,
             (unsigned)p->uid, (unsigned)p->gid);
    return -EPERM;
  }
  if (md_privdrop_caps(&eff, &prm, &inh) != 0 || eff || prm || inh) {
    snprintf(err, errlen, "capabilities left after the drop (effective %#llx, permitted %#llx)",
             (unsigned long long)eff, (unsigned long long)prm);
    return -EPERM;
  }
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
    snprintf(err, errlen, "no_new_privs is not set after the drop");
    return -EPERM;
  }

  if (p->quiet)
    return 0;
  if (p->stay_root && p->root_asked)
    md_warn("running as root, as asked (--user or user:): every capability is dropped, but the "
            "process still owns what root owns; a dedicated user is safer (docs/security.md)");
  else if (p->stay_root)
    md_warn("running as root (no user '%s' exists and none is configured with --user or "
            "user:): every capability is dropped, but the process still owns what root owns; "
            "create the service user (docs/security.md)",
            MD_PRIVDROP_DEFAULT_USER);
  else
    md_info("%srunning as user '%s' (uid %u, gid %u), no capabilities%s, no_new_privs",
            p->switch_user || had ? "privileges dropped: " : "", p->user[0] ? p->user : "?",
            (unsigned)p->uid, (unsigned)getegid(), bounding ? " (bounding set empty)" : "");
  return 0;
}

/* md_pki: the deployment's own small CA, behind `mtrctl pki init|issue`.
 *
 * DIR/ca.crt and DIR/ca.key are the CA; DIR/NAME.crt and DIR/NAME.key a
 * leaf for an agent or a controller. Keys are EC P-256 (PKCS#8 PEM, not
 * encrypted), created with O_CREAT|O_EXCL and mode 0600; nothing is ever
 * overwritten. The leaf's subject CN is NAME (the "certificate name" that
 * tls_name and allowed_controllers refer to) and DNS:NAME is always among
 * its subjectAltNames.
 *
 * All functions return 0 or a negative errno and, on error, write a
 * sentence naming the file or the problem into err (which may be NULL).
 */
#ifndef MD_PKI_H
#define MD_PKI_H

#include <stddef.h>
#include <stdint.h>

enum md_pki_role {
  MD_PKI_AGENT,      /* extendedKeyUsage serverAuth, clientAuth */
  MD_PKI_CONTROLLER, /* extendedKeyUsage clientAuth */
};

#define MD_PKI_DEFAULT_DAYS 825 /* leaf validity */
#define MD_PKI_CA_DAYS 3650     /* CA validity */
#define MD_PKI_MAX_DAYS 36500
#define MD_PKI_BACKDATE_S 3600 /* notBefore = now - 1 h: tolerate clock skew */
#define MD_PKI_NAME_MAX 64

/* Create DIR (mode 0700) if missing, then DIR/ca.key (0600) and DIR/ca.crt:
 * a self-signed CA (basicConstraints critical CA:TRUE, pathlen 0; keyUsage
 * critical keyCertSign, cRLSign). -EEXIST if either file exists. */
int md_pki_init(const char *dir, char *err, size_t errlen);

/* Issue DIR/NAME.crt and DIR/NAME.key (0600) signed by DIR/ca.*; valid from
 * now - MD_PKI_BACKDATE_S for days_valid days (0: MD_PKI_DEFAULT_DAYS).
 * sans: extra subjectAltNames, each an IP address if it parses as one,
 * else a DNS name. -EINVAL for a bad name, SAN or days; -EEXIST if either
 * output file exists; -ENOENT etc. when the CA cannot be read. */
int md_pki_issue(const char *dir, const char *name, enum md_pki_role role, const char *const *sans,
                 size_t n_sans, int days_valid, char *err, size_t errlen);

/* md_pki_issue with an explicit validity window, in seconds relative to
 * now (both may be negative): for tests of expired and future certificates. */
int md_pki_issue_window(const char *dir, const char *name, enum md_pki_role role,
                        const char *const *sans, size_t n_sans, int64_t not_before_s,
                        int64_t not_after_s, char *err, size_t errlen);

/* A certificate name is 1..MD_PKI_NAME_MAX of [A-Za-z0-9._-], starting with
 * a letter or digit, without "..", and not "ca". 0 or -EINVAL. */
int md_pki_check_name(const char *name, char *err, size_t errlen);

/* "agent" / "controller". 0 or -EINVAL. */
int md_pki_role_parse(const char *s, enum md_pki_role *out);
const char *md_pki_role_name(enum md_pki_role role);

#endif

/* A deployment CA and its leaf certificates, built with libcrypto.
 *
 * Files are written whole from memory with open(O_CREAT|O_EXCL) and their
 * final mode, so a key is never readable by others even for an instant and
 * an existing file is never replaced. The self-signed CA carries no
 * authorityKeyIdentifier (RFC 5280 allows that and OpenSSL 3 recommends it);
 * leaves get one copied from the CA's subjectKeyIdentifier.
 */
#include "md_pki.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MD__PATH_MAX 4096

/* Printf into the caller's error buffer, which may be NULL. */
static void md__perr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void md__perr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* The oldest queued OpenSSL error as text; empties the queue. */
static const char *md__ossl_why(char *buf, size_t len) {
  unsigned long first = ERR_get_error();
  while (ERR_get_error() != 0) {
  }
  const char *r = first ? ERR_reason_error_string(first) : NULL;
  snprintf(buf, len, "%s", r ? r : "unknown OpenSSL error");
  return buf;
}

/* Refuse to prompt for a passphrase (the CA key is not encrypted). */
static int md__no_pw(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

/* DIR/NAME.EXT, or -ENAMETOOLONG. */
static int md__path(char *out, const char *dir, const char *name, const char *ext, char *err,
                    size_t errlen) {
  int n = snprintf(out, MD__PATH_MAX, "%s/%s.%s", dir, name, ext);
  if (n < 0 || n >= MD__PATH_MAX) {
    md__perr(err, errlen, "path too long: %s/%s.%s", dir, name, ext);
    return -ENAMETOOLONG;
  }
  return 0;
}

/* Fail early, before any key is generated, when an output already exists. */
static int md__must_not_exist(const char *path, char *err, size_t errlen) {
  struct stat st;
  if (lstat(path, &st) == 0) {
    md__perr(err, errlen, "%s already exists; refusing to overwrite it", path);
    return -EEXIST;
  }
  if (errno != ENOENT) {
    int e = errno;
    md__perr(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  return 0;
}

/* Create path exclusively with its final mode and write all of data. */
static int md__write_excl(const char *path, mode_t mode, const void *data, size_t len, char *err,
                          size_t errlen) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    int e = errno;
    if (e == EEXIST)
      md__perr(err, errlen, "%s already exists; refusing to overwrite it", path);
    else
      md__perr(err, errlen, "cannot create %s: %s", path, strerror(e));
    return -e;
  }
  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int e = w < 0 ? errno : EIO;
      md__perr(err, errlen, "cannot write %s: %s", path, strerror(e));
      close(fd);
      unlink(path);
      return -e;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int e = errno;
    md__perr(err, errlen, "cannot write %s: %s", path, strerror(e));
    unlink(path);
    return -e;
  }
  return 0;
}

/* Private key as PKCS#8 PEM, then the certificate, each exclusively;
 * undo the key if the certificate cannot be written. */
static int md__write_pair(const char *key_path, const char *crt_path, EVP_PKEY *key, X509 *crt,
                          char *err, size_t errlen) {
  char why[200];
  char *kd = NULL, *cd = NULL;
  int r = -ENOMEM;
  BIO *kb = BIO_new(BIO_s_mem());
  BIO *cb = BIO_new(BIO_s_mem());
  if (!kb || !cb || !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
      !PEM_write_bio_X509(cb, crt)) {
    md__perr(err, errlen, "cannot encode key or certificate: %s", md__ossl_why(why, sizeof(why)));
    goto out;
  }
  long kl = BIO_get_mem_data(kb, &kd);
  long cl = BIO_get_mem_data(cb, &cd);
  r = md__write_excl(key_path, 0600, kd, (size_t)kl, err, errlen);
  if (r == 0) {
    r = md__write_excl(crt_path, 0644, cd, (size_t)cl, err, errlen);
    if (r != 0)
      unlink(key_path);
  }
  OPENSSL_cleanse(kd, (size_t)kl);
out:
  BIO_free(kb);
  BIO_free(cb);
  return r;
}

/* EC P-256: ECDSA works with every TLS 1.3 stack and OpenSSL 3.0 build. */
static EVP_PKEY *md__new_key(char *err, size_t errlen) {
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if (!k) {
    char why[200];
    md__perr(err, errlen, "cannot generate an EC P-256 key: %s", md__ossl_why(why, sizeof(why)));
  }
  return k;
}

/* Positive random 128-bit serial (top bit cleared so DER needs no sign byte). */
static int md__set_serial(X509 *x) {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1)
    return -EIO;
  b[0] &= 0x7f;
  b[15] |= 0x01; /* never zero */
  BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
  int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
  BN_free(bn);
  return ok ? 0 : -ENOMEM;
}

/* notBefore/notAfter as offsets from now. */
static int md__set_window(X509 *x, int64_t nb_s, int64_t na_s) {
  if (!X509_time_adj_ex(X509_getm_notBefore(x), (int)(nb_s / 86400), (long)(nb_s % 86400), NULL) ||
      !X509_time_adj_ex(X509_getm_notAfter(x), (int)(na_s / 86400), (long)(na_s % 86400), NULL))
    return -EINVAL;
  return 0;
}

/* One extension from its OpenSSL config text (constant strings only). */
static int md__add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value) {
  X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, v3, nid, value);
  if (!ext)
    return -EINVAL;
  int ok = X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
  return ok ? 0 : -ENOMEM;
}

/* Certificate skeleton shared by the CA and the leaves. */
static X509 *md__new_cert(EVP_PKEY *pub, const char *o, const char *cn, int64_t nb_s,
                          int64_t na_s) {
  X509 *x = X509_new();
  if (!x)
    return NULL;
  X509_NAME *n = X509_get_subject_name(x);
  if (!X509_set_version(x, X509_VERSION_3) || md__set_serial(x) != 0 ||
      md__set_window(x, nb_s, na_s) != 0 || !X509_set_pubkey(x, pub) ||
      (o &&
       !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)o, -1, -1, 0)) ||
      !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0)) {
    X509_free(x);
    return NULL;
  }
  return x;
}

/* Validate a certificate name: it becomes a file name and a DNS SAN. */
int md_pki_check_name(const char *name, char *err, size_t errlen) {
  size_t len = name ? strlen(name) : 0;
  if (len == 0) {
    md__perr(err, errlen, "certificate name is empty");
    return -EINVAL;
  }
  if (len > MD_PKI_NAME_MAX) {
    md__perr(err, errlen, "certificate name too long (max %d): %s", MD_PKI_NAME_MAX, name);
    return -EINVAL;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)name[i];
    bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    if (i == 0 && !alnum) {
      md__perr(err, errlen, "certificate name must start with a letter or digit: %s", name);
      return -EINVAL;
    }
    if (!alnum && ch != '-' && ch != '.' && ch != '_') {
      md__perr(err, errlen, "certificate name may only contain letters, digits, '-', '.', '_': %s",
               name);
      return -EINVAL;
    }
  }
  if (strstr(name, "..")) {
    md__perr(err, errlen, "certificate name must not contain \"..\": %s", name);
    return -EINVAL;
  }
  if (strcasecmp(name, "ca") == 0) {
    md__perr(err, errlen, "certificate name \"ca\" is reserved for the CA itself");
    return -EINVAL;
  }
  return 0;
}

int md_pki_role_parse(const char *s, enum md_pki_role *out) {
  if (s && strcmp(s, "agent") == 0)
    *out = MD_PKI_AGENT;
  else if (s && strcmp(s, "controller") == 0)
    *out = MD_PKI_CONTROLLER;
  else
    return -EINVAL;
  return 0;
}

const char *md_pki_role_name(enum md_pki_role role) {
  return role == MD_PKI_AGENT ? "agent" : role == MD_PKI_CONTROLLER ? "controller" : "?";
}

/* Create the CA directory if it is missing; private by default. */
static int md__ensure_dir(const char *dir, char *err, size_t errlen) {
  struct stat st;
  if (mkdir(dir, 0700) == 0)
    return 0;
  int e = errno;
  if (e == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
    return 0;
  md__perr(err, errlen, "cannot create directory %s: %s", dir,
           e == EEXIST ? "not a directory" : strerror(e));
  return e == EEXIST ? -ENOTDIR : -e;
}

/* A new self-signed CA for one deployment. */
int md_pki_init(const char *dir, char *err, size_t errlen) {
  char kp[MD__PATH_MAX], cp[MD__PATH_MAX], why[200];
  int r;
  if (!dir || !*dir) {
    md__perr(err, errlen, "no directory given");
    return -EINVAL;
  }
  if ((r = md__path(kp, dir, "ca", "key", err, errlen)) != 0 ||
      (r = md__path(cp, dir, "ca", "crt", err, errlen)) != 0 ||
      (r = md__ensure_dir(dir, err, errlen)) != 0 ||
      (r = md__must_not_exist(kp, err, errlen)) != 0 ||
      (r = md__must_not_exist(cp, err, errlen)) != 0)
    return r;

  ERR_clear_error();
  EVP_PKEY *key = md__new_key(err, errlen);
  if (!key)
    return -EIO;
  unsigned char tag[4];
  char cn[64];
  if (RAND_bytes(tag, sizeof(tag)) != 1) {
    EVP_PKEY_free(key);
    md__perr(err, errlen, "no randomness: %s", md__ossl_why(why, sizeof(why)));
    return -EIO;
  }
  /* A distinct name per CA, so certificates of another deployment fail as
   * "unknown CA" rather than matching this CA's name. */
  snprintf(cn, sizeof(cn), "mtrdiag CA %02x%02x%02x%02x", tag[0], tag[1], tag[2], tag[3]);
  X509 *x = md__new_cert(key, "mtrdiag", cn, -MD_PKI_BACKDATE_S, (int64_t)MD_PKI_CA_DAYS * 86400);
  r = -ENOMEM;
  if (x) {
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if (X509_set_issuer_name(x, X509_get_subject_name(x)) &&
        md__add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") == 0 &&
        md__add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 &&
        md__add_ext(x, &v3, NID_subject_key_identifier, "hash") == 0 &&
        X509_sign(x, key, EVP_sha256()) > 0)
      r = 0;
  }
  if (r != 0)
    md__perr(err, errlen, "cannot build the CA certificate: %s", md__ossl_why(why, sizeof(why)));
  else
    r = md__write_pair(kp, cp, key, x, err, errlen);
  X509_free(x);
  EVP_PKEY_free(key);
  return r;
}

/* Read DIR/ca.crt and DIR/ca.key and check that they belong together. */
static int md__load_ca(const char *dir, X509 **ca, EVP_PKEY **cakey, char *err, size_t errlen) {
  char kp[MD__PATH_MAX], cp[MD__PATH_MAX], why[200];
  int r;
  *ca = NULL;
  *cakey = NULL;
  if ((r = md__path(kp, dir, "ca", "key", err, errlen)) != 0 ||
      (r = md__path(cp, dir, "ca", "crt", err, errlen)) != 0)
    return r;
  FILE *f = fopen(cp, "r");
  if (!f) {
    int e = errno;
    md__perr(err, errlen, "CA certificate %s: %s%s", cp, strerror(e),
             e == ENOENT ? " (run `mtrctl pki init` first)" : "");
    return -e;
  }
  *ca = PEM_read_X509(f, NULL, md__no_pw, NULL);
  fclose(f);
  if (!*ca) {
    md__perr(err, errlen, "CA certificate %s: cannot load: %s", cp, md__ossl_why(why, sizeof(why)));
    return -EINVAL;
  }
  if (X509_check_ca(*ca) < 1) {
    md__perr(err, errlen, "%s is not a CA certificate", cp);
    r = -EINVAL;
    goto fail;
  }
  f = fopen(kp, "r");
  if (!f) {
    int e = errno;
    md__perr(err, errlen, "CA key %s: %s", kp, strerror(e));
    r = -e;
    goto fail;
  }
  *cakey = PEM_read_PrivateKey(f, NULL, md__no_pw, NULL);
  fclose(f);
  if (!*cakey) {
    md__perr(err, errlen, "CA key %s: cannot load (encrypted keys are not supported): %s", kp,
             md__ossl_why(why, sizeof(why)));
    r = -EINVAL;
    goto fail;
  }
  if (X509_check_private_key(*ca, *cakey) != 1) {
    ERR_clear_error();
    md__perr(err, errlen, "CA key %s does not match CA certificate %s", kp, cp);
    r = -EINVAL;
    goto fail;
  }
  return 0;
fail:
  X509_free(*ca);
  EVP_PKEY_free(*cakey);
  *ca = NULL;
  *cakey = NULL;
  return r;
}

/* A DNS SAN: what a resolver would accept, no wildcards. */
static bool md__dns_ok(const char *s) {
  size_t len = strlen(s);
  if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-' || strstr(s, ".."))
    return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '.' || ch == '_'))
      return false;
  }
  return true;
}

/* Append one SAN unless an equal one is already there. */
static int md__push_san(GENERAL_NAMES *gens, int type, const void *data, size_t len) {
  for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    const ASN1_STRING *s = g->type == GEN_DNS ? g->d.dNSName : g->d.iPAddress;
    if (g->type == type && (size_t)ASN1_STRING_length(s) == len &&
        (type == GEN_DNS ? strncasecmp((const char *)ASN1_STRING_get0_data(s), data, len) == 0
                         : memcmp(ASN1_STRING_get0_data(s), data, len) == 0))
      return 0;
  }
  GENERAL_NAME *g = GENERAL_NAME_new();
  ASN1_STRING *s = type == GEN_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new();
  if (!g || !s || !ASN1_STRING_set(s, data, (int)len)) {
    GENERAL_NAME_free(g);
    ASN1_STRING_free(s);
    return -ENOMEM;
  }
  GENERAL_NAME_set0_value(g, type, s);
  if (!sk_GENERAL_NAME_push(gens, g)) {
    GENERAL_NAME_free(g);
    return -ENOMEM;
  }
  return 0;
}

/* DNS:name plus each --san; built as structures, not config text, so no
 * SAN string can inject other extension syntax. */
static int md__build_sans(const char *name, const char *const *sans, size_t n_sans,
                          GENERAL_NAMES **out, char *err, size_t errlen) {
  GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
  if (!gens)
    return -ENOMEM;
  int r = md__push_san(gens, GEN_DNS, name, strlen(name));
  for (size_t i = 0; r == 0 && i < n_sans; i++) {
    const char *s = sans[i];
    unsigned char ip[16];
    if (!s) {
      r = -EINVAL;
      md__perr(err, errlen, "empty subjectAltName");
    } else if (inet_pton(AF_INET, s, ip) == 1) {
      r = md__push_san(gens, GEN_IPADD, ip, 4);
    } else if (inet_pton(AF_INET6, s, ip) == 1) {
      r = md__push_san(gens, GEN_IPADD, ip, 16);
    } else if (md__dns_ok(s)) {
      r = md__push_san(gens, GEN_DNS, s, strlen(s));
    } else {
      r = -EINVAL;
      md__perr(err, errlen, "subjectAltName is neither an IP address nor a DNS name: \"%s\"", s);
    }
  }
  if (r != 0) {
    if (r == -ENOMEM)
      md__perr(err, errlen, "out of memory");
    GENERAL_NAMES_free(gens);
    return r;
  }
  *out = gens;
  return 0;
}

/* authorityKeyIdentifier = the CA's subjectKeyIdentifier (if it has one). */
static int md__add_akid(X509 *x, X509 *ca) {
  const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(ca);
  if (!skid)
    return 0;
  AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
  if (!akid)
    return -ENOMEM;
  akid->keyid = ASN1_OCTET_STRING_dup(skid);
  int ok = akid->keyid && X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0) == 1;
  AUTHORITY_KEYID_free(akid);
  return ok ? 0 : -ENOMEM;
}

/* Leaf issuing with an explicit window; md_pki_issue is the usual entry. */
int md_pki_issue_window(const char *dir, const char *name, enum md_pki_role role,
                        const char *const *sans, size_t n_sans, int64_t not_before_s,
                        int64_t not_after_s, char *err, size_t errlen) {
  char kp[MD__PATH_MAX], cp[MD__PATH_MAX], why[200];
  int r;
  if (!dir || !*dir) {
    md__perr(err, errlen, "no directory given");
    return -EINVAL;
  }
  if ((r = md_pki_check_name(name, err, errlen)) != 0)
    return r;
  if (role != MD_PKI_AGENT && role != MD_PKI_CONTROLLER) {
    md__perr(err, errlen, "role must be agent or controller");
    return -EINVAL;
  }
  const int64_t max_s = (int64_t)MD_PKI_MAX_DAYS * 86400;
  if (not_after_s <= not_before_s || not_before_s < -max_s || not_after_s > max_s) {
    md__perr(err, errlen, "invalid validity window");
    return -EINVAL;
  }
  GENERAL_NAMES *gens = NULL;
  if ((r = md__path(kp, dir, name, "key", err, errlen)) != 0 ||
      (r = md__path(cp, dir, name, "crt", err, errlen)) != 0 ||
      (r = md__build_sans(name, sans, n_sans, &gens, err, errlen)) != 0)
    return r;
  if ((r = md__must_not_exist(kp, err, errlen)) != 0 ||
      (r = md__must_not_exist(cp, err, errlen)) != 0) {
    GENERAL_NAMES_free(gens);
    return r;
  }
  X509 *ca = NULL;
  EVP_PKEY *cakey = NULL, *key = NULL;
  X509 *x = NULL;
  ERR_clear_error();
  if ((r = md__load_ca(dir, &ca, &cakey, err, errlen)) != 0)
    goto out;
  if (!(key = md__new_key(err, errlen))) {
    r = -EIO;
    goto out;
  }
  x = md__new_cert(key, NULL, name, not_before_s, not_after_s);
  r = -ENOMEM;
  if (x) {
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
    const char *eku = role == MD_PKI_AGENT ? "serverAuth,clientAuth" : "clientAuth";
    if (X509_set_issuer_name(x, X509_get_subject_name(ca)) &&
        md__add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
        md__add_ext(x, &v3, NID_key_usage, "critical,digitalSignature") == 0 &&
        md__add_ext(x, &v3, NID_ext_key_usage, eku) == 0 &&
        md__add_ext(x, &v3, NID_subject_key_identifier, "hash") == 0 && md__add_akid(x, ca) == 0 &&
        X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) == 1 &&
        X509_sign(x, cakey, EVP_sha256()) > 0)
      r = 0;
  }
  if (r != 0) {
    md__perr(err, errlen, "cannot build the certificate for %s: %s", name,
             md__ossl_why(why, sizeof(why)));
    goto out;
  }
  r = md__write_pair(kp, cp, key, x, err, errlen);
out:
  GENERAL_NAMES_free(gens);
  X509_free(x);
  X509_free(ca);
  EVP_PKEY_free(key);
  EVP_PKEY_free(cakey);
  return r;
}

/* `mtrctl pki issue`: a leaf valid from an hour ago for days_valid days. */
int md_pki_issue(const char *dir, const char *name, enum md_pki_role role, const char *const *sans,
                 size_t n_sans, int days_valid, char *err, size_t errlen) {
  if (days_valid == 0)
    days_valid = MD_PKI_DEFAULT_DAYS;
  if (days_valid < 0 || days_valid > MD_PKI_MAX_DAYS) {
    md__perr(err, errlen, "days must be between 1 and %d", MD_PKI_MAX_DAYS);
    return -EINVAL;
  }
  return md_pki_issue_window(dir, name, role, sans, n_sans, -MD_PKI_BACKDATE_S,
                             (int64_t)days_valid * 86400, err, errlen);
}

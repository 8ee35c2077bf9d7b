/* md_pki: real CA and leaf certificates in a temporary directory, checked
 * with libcrypto's own verifier. */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "md_pki.h"

static char g_dir[256];

/* nftw callback: remove everything below the test directory. */
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static int setup(void **state) {
  (void)state;
  umask(022);
  snprintf(g_dir, sizeof(g_dir), "/tmp/md_pki_test.XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  return nftw(g_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void path_of(char *buf, size_t len, const char *dir, const char *file) {
  int n = snprintf(buf, len, "%s/%s", dir, file);
  assert_true(n > 0 && (size_t)n < len);
}

static X509 *load_cert(const char *dir, const char *file) {
  char p[512];
  path_of(p, sizeof(p), dir, file);
  FILE *f = fopen(p, "r");
  assert_non_null(f);
  X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  assert_non_null(x);
  return x;
}

static EVP_PKEY *load_key(const char *dir, const char *file) {
  char p[512];
  path_of(p, sizeof(p), dir, file);
  FILE *f = fopen(p, "r");
  assert_non_null(f);
  EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  assert_non_null(k);
  return k;
}

static mode_t mode_of(const char *dir, const char *file) {
  char p[512];
  struct stat st;
  path_of(p, sizeof(p), dir, file);
  assert_int_equal(stat(p, &st), 0);
  return st.st_mode & 07777;
}

static bool exists(const char *dir, const char *file) {
  char p[512];
  path_of(p, sizeof(p), dir, file);
  return access(p, F_OK) == 0;
}

/* X509_verify_cert of leaf against the CA in dir; returns the verify error. */
static int verify_against(const char *ca_dir, X509 *leaf, int purpose) {
  X509 *ca = load_cert(ca_dir, "ca.crt");
  X509_STORE *store = X509_STORE_new();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  assert_true(X509_STORE_add_cert(store, ca));
  assert_true(X509_STORE_CTX_init(ctx, store, leaf, NULL));
  if (purpose)
    X509_STORE_CTX_set_purpose(ctx, purpose);
  int ok = X509_verify_cert(ctx);
  int e = X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(ca);
  return ok == 1 ? X509_V_OK : (e ? e : -1);
}

static char *make_ca(const char *sub) {
  static char d[512];
  char err[256] = "";
  snprintf(d, sizeof(d), "%s/%s", g_dir, sub);
  int r = md_pki_init(d, err, sizeof(err));
  if (r != 0)
    fail_msg("md_pki_init(%s): %d %s", d, r, err);
  return d;
}

static bool has_dns(GENERAL_NAMES *g, const char *name) {
  for (int i = 0; i < sk_GENERAL_NAME_num(g); i++) {
    GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
    if (n->type == GEN_DNS && strcmp((const char *)ASN1_STRING_get0_data(n->d.dNSName), name) == 0)
      return true;
  }
  return false;
}

static bool has_ip(GENERAL_NAMES *g, const unsigned char *ip, int len) {
  for (int i = 0; i < sk_GENERAL_NAME_num(g); i++) {
    GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
    if (n->type == GEN_IPADD && ASN1_STRING_length(n->d.iPAddress) == len &&
        memcmp(ASN1_STRING_get0_data(n->d.iPAddress), ip, (size_t)len) == 0)
      return true;
  }
  return false;
}

static bool ext_critical(X509 *x, int nid) {
  int i = X509_get_ext_by_NID(x, nid, -1);
  assert_true(i >= 0);
  return X509_EXTENSION_get_critical(X509_get_ext(x, i)) == 1;
}

static void test_init_creates_ca(void **state) {
  (void)state;
  char *d = make_ca("ca1");
  assert_true(exists(d, "ca.crt"));
  assert_true(exists(d, "ca.key"));
  assert_int_equal(mode_of(d, "ca.key"), 0600);
  X509 *ca = load_cert(d, "ca.crt");
  EVP_PKEY *k = load_key(d, "ca.key");
  assert_int_equal(X509_check_private_key(ca, k), 1);
  assert_true(EVP_PKEY_is_a(k, "EC"));
  assert_int_equal(EVP_PKEY_get_bits(k), 256);
  assert_int_equal(X509_check_ca(ca), 1);
  assert_true(ext_critical(ca, NID_basic_constraints));
  assert_true(ext_critical(ca, NID_key_usage));
  uint32_t ku = X509_get_key_usage(ca);
  assert_true(ku & KU_KEY_CERT_SIGN);
  assert_true(ku & KU_CRL_SIGN);
  assert_false(ku & KU_DIGITAL_SIGNATURE);
  assert_int_equal(X509_verify(ca, k), 1); /* self-signed */
  assert_int_equal(verify_against(d, ca, 0), X509_V_OK);
  X509_free(ca);
  EVP_PKEY_free(k);
}

static void test_init_refuses_overwrite(void **state) {
  (void)state;
  char *d = make_ca("ca2");
  X509 *before = load_cert(d, "ca.crt");
  char err[256] = "";
  assert_int_equal(md_pki_init(d, err, sizeof(err)), -EEXIST);
  assert_non_null(strstr(err, "ca.key"));
  assert_non_null(strstr(err, "refusing to overwrite"));
  X509 *after = load_cert(d, "ca.crt");
  assert_int_equal(X509_cmp(before, after), 0);
  X509_free(before);
  X509_free(after);

  /* Only the certificate left behind: still refused, nothing created. */
  char p[512];
  path_of(p, sizeof(p), d, "ca.key");
  assert_int_equal(unlink(p), 0);
  err[0] = '\0';
  assert_int_equal(md_pki_init(d, err, sizeof(err)), -EEXIST);
  assert_non_null(strstr(err, "ca.crt"));
  assert_false(exists(d, "ca.key"));
}

static void test_init_creates_private_dir(void **state) {
  (void)state;
  char *d = make_ca("newdir");
  char p[512];
  struct stat st;
  snprintf(p, sizeof(p), "%s", d);
  assert_int_equal(stat(p, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_issue_agent(void **state) {
  (void)state;
  char *d = make_ca("ca3");
  char err[256] = "";
  const char *sans[] = {"127.0.0.1", "::1", "cvm.example.net", "cvm"};
  assert_int_equal(md_pki_issue(d, "cvm", MD_PKI_AGENT, sans, 4, 0, err, sizeof(err)), 0);
  assert_true(exists(d, "cvm.crt"));
  assert_int_equal(mode_of(d, "cvm.key"), 0600);
  assert_int_equal(mode_of(d, "cvm.crt"), 0644);

  X509 *x = load_cert(d, "cvm.crt");
  EVP_PKEY *k = load_key(d, "cvm.key");
  assert_int_equal(X509_check_private_key(x, k), 1);
  assert_true(EVP_PKEY_is_a(k, "EC"));
  assert_int_equal(verify_against(d, x, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  assert_int_equal(verify_against(d, x, X509_PURPOSE_SSL_CLIENT), X509_V_OK);

  char cn[64];
  assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) >
              0);
  assert_string_equal(cn, "cvm");
  assert_int_equal(X509_check_ca(x), 0);
  assert_true(ext_critical(x, NID_basic_constraints));
  assert_true(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
  assert_false(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
  uint32_t xku = X509_get_extended_key_usage(x);
  assert_true(xku & XKU_SSL_SERVER);
  assert_true(xku & XKU_SSL_CLIENT);
  assert_non_null(X509_get0_authority_key_id(x));
  assert_non_null(X509_get0_subject_key_id(x));

  GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  assert_non_null(g);
  assert_int_equal(sk_GENERAL_NAME_num(g), 4); /* the duplicate "cvm" is dropped */
  assert_true(has_dns(g, "cvm"));
  assert_true(has_dns(g, "cvm.example.net"));
  const unsigned char v4[4] = {127, 0, 0, 1};
  const unsigned char v6[16] = {[15] = 1};
  assert_true(has_ip(g, v4, 4));
  assert_true(has_ip(g, v6, 16));
  GENERAL_NAMES_free(g);

  /* Random positive 128-bit serial; validity ~825 days. */
  const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
  BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
  assert_false(BN_is_negative(bn));
  assert_true(BN_num_bits(bn) > 64 && BN_num_bits(bn) <= 128);
  BN_free(bn);
  int days = 0, secs = 0;
  assert_true(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)));
  assert_int_equal(days, MD_PKI_DEFAULT_DAYS);
  assert_int_equal(secs, MD_PKI_BACKDATE_S);
  assert_true(X509_cmp_current_time(X509_get0_notBefore(x)) < 0);
  X509_free(x);
  EVP_PKEY_free(k);
}

static void test_issue_controller(void **state) {
  (void)state;
  char *d = make_ca("ca4");
  char err[256] = "";
  assert_int_equal(md_pki_issue(d, "ops", MD_PKI_CONTROLLER, NULL, 0, 30, err, sizeof(err)), 0);
  X509 *x = load_cert(d, "ops.crt");
  uint32_t xku = X509_get_extended_key_usage(x);
  assert_true(xku & XKU_SSL_CLIENT);
  assert_false(xku & XKU_SSL_SERVER);
  assert_int_equal(verify_against(d, x, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  assert_int_equal(verify_against(d, x, X509_PURPOSE_SSL_SERVER), X509_V_ERR_INVALID_PURPOSE);
  GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  assert_int_equal(sk_GENERAL_NAME_num(g), 1);
  assert_true(has_dns(g, "ops"));
  GENERAL_NAMES_free(g);
  int days = 0, secs = 0;
  assert_true(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)));
  assert_int_equal(days, 30);
  X509_free(x);
}

static void test_issue_refuses_overwrite(void **state) {
  (void)state;
  char *d = make_ca("ca5");
  char err[256] = "";
  assert_int_equal(md_pki_issue(d, "a1", MD_PKI_AGENT, NULL, 0, 0, err, sizeof(err)), 0);
  X509 *before = load_cert(d, "a1.crt");
  assert_int_equal(md_pki_issue(d, "a1", MD_PKI_AGENT, NULL, 0, 0, err, sizeof(err)), -EEXIST);
  assert_non_null(strstr(err, "a1.key"));
  X509 *after = load_cert(d, "a1.crt");
  assert_int_equal(X509_cmp(before, after), 0);
  X509_free(before);
  X509_free(after);
}

static void test_bad_names_refused(void **state) {
  (void)state;
  char *d = make_ca("ca6");
  const char *bad[] = {
      "",        "../x",
      "a/b",     "..",
      ".",       "a..b",
      "ca",      "CA",
      "-x",      "_x",
      ".hidden", "a b",
      "x\n",     "é",
      "a;b",     "0123456789012345678901234567890123456789012345678901234567890123456789"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char err[256] = "";
    int r = md_pki_issue(d, bad[i], MD_PKI_AGENT, NULL, 0, 0, err, sizeof(err));
    if (r != -EINVAL)
      fail_msg("name \"%s\" gave %d", bad[i], r);
    assert_true(err[0] != '\0');
  }
  assert_int_equal(md_pki_issue(d, NULL, MD_PKI_AGENT, NULL, 0, 0, NULL, 0), -EINVAL);
  char err[256] = "";
  assert_int_equal(md_pki_check_name("a/b", err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "a/b"));
  assert_int_equal(md_pki_check_name("cvm-1.prod_eu", NULL, 0), 0);

  /* Bad SANs and validity. */
  const char *sans[] = {"ok.example", "bad san"};
  assert_int_equal(md_pki_issue(d, "x1", MD_PKI_AGENT, sans, 2, 0, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "bad san"));
  assert_false(exists(d, "x1.key"));
  assert_int_equal(md_pki_issue(d, "x1", MD_PKI_AGENT, NULL, 0, -5, err, sizeof(err)), -EINVAL);
  assert_int_equal(md_pki_issue(d, "x1", (enum md_pki_role)7, NULL, 0, 0, err, sizeof(err)),
                   -EINVAL);
  assert_false(exists(d, "x1.crt"));

  enum md_pki_role role;
  assert_int_equal(md_pki_role_parse("agent", &role), 0);
  assert_int_equal(role, MD_PKI_AGENT);
  assert_int_equal(md_pki_role_parse("controller", &role), 0);
  assert_int_equal(role, MD_PKI_CONTROLLER);
  assert_int_equal(md_pki_role_parse("admin", &role), -EINVAL);
  assert_string_equal(md_pki_role_name(MD_PKI_CONTROLLER), "controller");
}

static void test_issue_without_ca(void **state) {
  (void)state;
  char d[512], err[256] = "";
  snprintf(d, sizeof(d), "%s/empty", g_dir);
  assert_int_equal(mkdir(d, 0700), 0);
  assert_int_equal(md_pki_issue(d, "cvm", MD_PKI_AGENT, NULL, 0, 0, err, sizeof(err)), -ENOENT);
  assert_non_null(strstr(err, "ca.crt"));
  assert_false(exists(d, "cvm.key"));
  assert_false(exists(d, "cvm.crt"));
}

static void test_expired_and_foreign(void **state) {
  (void)state;
  char *d1 = strdup(make_ca("ca7"));
  char *d2 = strdup(make_ca("ca8"));
  char err[256] = "";
  assert_int_equal(md_pki_issue_window(d1, "old", MD_PKI_CONTROLLER, NULL, 0, -2 * 86400, -86400,
                                       err, sizeof(err)),
                   0);
  X509 *old = load_cert(d1, "old.crt");
  assert_int_equal(verify_against(d1, old, 0), X509_V_ERR_CERT_HAS_EXPIRED);
  X509_free(old);
  assert_int_equal(md_pki_issue_window(d1, "future", MD_PKI_CONTROLLER, NULL, 0, 86400, 2 * 86400,
                                       err, sizeof(err)),
                   0);
  X509 *fut = load_cert(d1, "future.crt");
  assert_int_equal(verify_against(d1, fut, 0), X509_V_ERR_CERT_NOT_YET_VALID);
  X509_free(fut);
  assert_int_equal(md_pki_issue_window(d1, "w", MD_PKI_AGENT, NULL, 0, 10, 5, err, sizeof(err)),
                   -EINVAL);

  assert_int_equal(md_pki_issue(d2, "evil", MD_PKI_CONTROLLER, NULL, 0, 0, err, sizeof(err)), 0);
  X509 *evil = load_cert(d2, "evil.crt");
  assert_int_equal(verify_against(d1, evil, 0), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  assert_int_equal(verify_against(d2, evil, 0), X509_V_OK);
  X509_free(evil);

  /* Two CAs never share a name. */
  X509 *c1 = load_cert(d1, "ca.crt"), *c2 = load_cert(d2, "ca.crt");
  assert_int_not_equal(X509_NAME_cmp(X509_get_subject_name(c1), X509_get_subject_name(c2)), 0);
  X509_free(c1);
  X509_free(c2);
  free(d1);
  free(d2);
}

static void test_serials_distinct(void **state) {
  (void)state;
  char *d = make_ca("ca9");
  char err[256] = "";
  assert_int_equal(md_pki_issue(d, "s1", MD_PKI_AGENT, NULL, 0, 0, err, sizeof(err)), 0);
  assert_int_equal(md_pki_issue(d, "s2", MD_PKI_AGENT, NULL, 0, 0, err, sizeof(err)), 0);
  X509 *a = load_cert(d, "s1.crt"), *b = load_cert(d, "s2.crt");
  assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
  X509_free(a);
  X509_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init_creates_ca),
      cmocka_unit_test(test_init_refuses_overwrite),
      cmocka_unit_test(test_init_creates_private_dir),
      cmocka_unit_test(test_issue_agent),
      cmocka_unit_test(test_issue_controller),
      cmocka_unit_test(test_issue_refuses_overwrite),
      cmocka_unit_test(test_bad_names_refused),
      cmocka_unit_test(test_issue_without_ca),
      cmocka_unit_test(test_expired_and_foreign),
      cmocka_unit_test(test_serials_distinct),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

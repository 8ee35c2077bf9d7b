/* md_addr: numeric IPv4/IPv6 addresses. Parsing is strict: dotted-quad IPv4
 * only (no "127.1" or hex forms that inet_aton would take), IPv6 with an
 * optional "%scope", ports as plain decimal 0-65535. No name resolution. */
#include "md_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest IPv6 literal with a scope that we accept: text + '%' + ifname. */
#define ADDR_TEXT_MAX (INET6_ADDRSTRLEN + IF_NAMESIZE + 1)

/* A scope id from "eth0" or "2". Only digits, or a known interface. */
static int parse_scope(const char *s, uint32_t *out) {
  if (*s == '\0')
    return -EINVAL;
  if (strspn(s, "0123456789") == strlen(s)) {
    if (strlen(s) > 10)
      return -EINVAL;
    unsigned long v = strtoul(s, NULL, 10);
    if (v > UINT32_MAX)
      return -EINVAL;
    *out = (uint32_t)v;
    return 0;
  }
  unsigned idx = if_nametoindex(s);
  if (idx == 0)
    return -EINVAL;
  *out = idx;
  return 0;
}

/* IPv4 via inet_pton (four decimal parts only), else IPv6 with scope. */
int md_addr_parse(const char *s, md_addr *out) {
  if (!s || !out)
    return -EINVAL;
  md_addr a;
  memset(&a, 0, sizeof a);
  if (inet_pton(AF_INET, s, &a.in4.sin_addr) == 1) {
    a.in4.sin_family = AF_INET;
    *out = a;
    return 0;
  }
  size_t n = strlen(s);
  if (n == 0 || n >= ADDR_TEXT_MAX)
    return -EINVAL;
  char text[ADDR_TEXT_MAX];
  memcpy(text, s, n + 1);
  char *pct = strchr(text, '%');
  uint32_t scope = 0;
  if (pct) {
    *pct = '\0';
    if (parse_scope(pct + 1, &scope) != 0)
      return -EINVAL;
  }
  if (inet_pton(AF_INET6, text, &a.in6.sin6_addr) != 1)
    return -EINVAL;
  a.in6.sin6_family = AF_INET6;
  a.in6.sin6_scope_id = scope;
  *out = a;
  return 0;
}

/* Decimal port, 1-5 digits, at most 65535. Signs, spaces, hex: rejected. */
static int parse_port(const char *s, uint16_t *out) {
  size_t n = strlen(s);
  if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
    return -EINVAL;
  unsigned long v = strtoul(s, NULL, 10);
  if (v > 65535)
    return -EINVAL;
  *out = (uint16_t)v;
  return 0;
}

/* The forms a config file or a command line gives: "198.51.100.10:7447",
 * "[2001:db8::1]:7447", "[2001:db8::1]", or a bare literal (port 0). A bare
 * IPv6 literal has colons of its own, so a port after it needs brackets. */
int md_addr_parse_hostport(const char *s, md_addr *out) {
  if (!s || !out)
    return -EINVAL;
  size_t n = strlen(s);
  if (n == 0 || n >= ADDR_TEXT_MAX + 8)
    return -EINVAL;
  char text[ADDR_TEXT_MAX + 8];
  memcpy(text, s, n + 1);
  md_addr a;
  uint16_t port = 0;
  if (text[0] == '[') {
    char *close = strchr(text, ']');
    if (!close)
      return -EINVAL;
    *close = '\0';
    const char *rest = close + 1;
    if (*rest == ':') {
      if (parse_port(rest + 1, &port) != 0)
        return -EINVAL;
    } else if (*rest != '\0') {
      return -EINVAL;
    }
    if (md_addr_parse(text + 1, &a) != 0 || md_addr_family(&a) != AF_INET6)
      return -EINVAL;
  } else if (md_addr_parse(text, &a) == 0) {
    /* a bare literal, IPv4 or IPv6: no port */
  } else {
    char *colon = strrchr(text, ':');
    if (!colon)
      return -EINVAL;
    *colon = '\0';
    if (parse_port(colon + 1, &port) != 0)
      return -EINVAL;
    if (md_addr_parse(text, &a) != 0 || md_addr_family(&a) != AF_INET)
      return -EINVAL; /* "2001:db8::1:80" is an address, "::1:80x" is nothing */
  }
  md_addr_set_port(&a, port);
  *out = a;
  return 0;
}

/* inet_ntop plus "%scope" for scoped IPv6 (the interface name when this
 * namespace knows it, else the number). "?" for an unset address. */
const char *md_addr_str(const md_addr *a, char *buf, size_t len) {
  if (!buf || len == 0)
    return buf;
  buf[0] = '\0';
  int fam = md_addr_family(a);
  if (fam == AF_INET) {
    if (!inet_ntop(AF_INET, &a->in4.sin_addr, buf, (socklen_t)len))
      buf[0] = '\0';
  } else if (fam == AF_INET6) {
    char text[INET6_ADDRSTRLEN];
    if (!inet_ntop(AF_INET6, &a->in6.sin6_addr, text, sizeof text))
      return buf;
    if (a->in6.sin6_scope_id == 0) {
      snprintf(buf, len, "%s", text);
    } else {
      char ifname[IF_NAMESIZE];
      if (if_indextoname(a->in6.sin6_scope_id, ifname))
        snprintf(buf, len, "%s%%%s", text, ifname);
      else
        snprintf(buf, len, "%s%%%u", text, (unsigned)a->in6.sin6_scope_id);
    }
  } else {
    snprintf(buf, len, "?");
  }
  return buf;
}

/* "198.51.100.10:7447" or "[2001:db8::1]:7447": what md_addr_parse_hostport
 * reads back, for logs and configuration messages. */
const char *md_addr_str_hostport(const md_addr *a, char *buf, size_t len) {
  if (!buf || len == 0)
    return buf;
  char text[MD_ADDRSTRLEN];
  md_addr_str(a, text, sizeof text);
  if (md_addr_family(a) == AF_INET6)
    snprintf(buf, len, "[%s]:%u", text, (unsigned)md_addr_port(a));
  else
    snprintf(buf, len, "%s:%u", text, (unsigned)md_addr_port(a));
  return buf;
}

/* AF_INET, AF_INET6, or AF_UNSPEC for NULL or an unset address. */
int md_addr_family(const md_addr *a) {
  if (!a)
    return AF_UNSPEC;
  if (a->sa.sa_family == AF_INET || a->sa.sa_family == AF_INET6)
    return a->sa.sa_family;
  return AF_UNSPEC;
}

/* The length bind/connect/sendto want. */
socklen_t md_addr_len(const md_addr *a) {
  switch (md_addr_family(a)) {
  case AF_INET:
    return sizeof(struct sockaddr_in);
  case AF_INET6:
    return sizeof(struct sockaddr_in6);
  default:
    return 0;
  }
}

/* Host byte order. */
uint16_t md_addr_port(const md_addr *a) {
  switch (md_addr_family(a)) {
  case AF_INET:
    return ntohs(a->in4.sin_port);
  case AF_INET6:
    return ntohs(a->in6.sin6_port);
  default:
    return 0;
  }
}

/* Host byte order in; no-op for an unset address. */
void md_addr_set_port(md_addr *a, uint16_t port) {
  switch (md_addr_family(a)) {
  case AF_INET:
    a->in4.sin_port = htons(port);
    break;
  case AF_INET6:
    a->in6.sin6_port = htons(port);
    break;
  default:
    break;
  }
}

/* Responders are told apart by address alone: replies come from whatever
 * port, and an IPv4 address never equals its IPv4-mapped IPv6 form. */
bool md_addr_equal(const md_addr *a, const md_addr *b) {
  size_t la, lb;
  const void *ba = md_addr_bytes(a, &la);
  const void *bb = md_addr_bytes(b, &lb);
  if (!ba || !bb || md_addr_family(a) != md_addr_family(b) || la != lb)
    return false;
  return memcmp(ba, bb, la) == 0;
}

/* True for 0.0.0.0, ::, and an address with no family set. */
bool md_addr_is_unspecified(const md_addr *a) {
  size_t len;
  const uint8_t *b = md_addr_bytes(a, &len);
  if (!b)
    return true;
  for (size_t i = 0; i < len; i++)
    if (b[i] != 0)
      return false;
  return true;
}

/* 255.255.255.255 (the limited broadcast), in either form. A subnet's
 * directed broadcast cannot be told without its prefix length. */
bool md_addr_is_broadcast(const md_addr *a) {
  size_t len;
  const uint8_t *b = md_addr_bytes(a, &len);
  if (!b)
    return false;
  if (len == 16) {
    if (!IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr))
      return false;
    b += 12;
  }
  return b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255;
}

/* Targets a policy must refuse: 224.0.0.0/4, the limited broadcast, and
 * ff00::/8 (also IPv4 multicast in IPv4-mapped form). */
bool md_addr_is_multicast(const md_addr *a) {
  size_t len;
  const uint8_t *b = md_addr_bytes(a, &len);
  if (!b)
    return false;
  if (len == 16) {
    if (b[0] == 0xff)
      return true;
    if (!IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr))
      return false;
    b += 12;
  }
  return (b[0] & 0xf0) == 0xe0 || md_addr_is_broadcast(a);
}

/* The 4 or 16 address bytes in network order; NULL for an unset address. */
const void *md_addr_bytes(const md_addr *a, size_t *len) {
  size_t n = 0;
  const void *p = NULL;
  switch (md_addr_family(a)) {
  case AF_INET:
    n = 4;
    p = &a->in4.sin_addr;
    break;
  case AF_INET6:
    n = 16;
    p = &a->in6.sin6_addr;
    break;
  default:
    break;
  }
  if (len)
    *len = n;
  return p;
}

/* For policy lists ("198.51.100.0/24") and for pairing the two ends of a
 * link (/30, /31, /126, /127). A prefix outside 0..32 (0..128) is false. */
bool md_addr_same_prefix(const md_addr *a, const md_addr *b, int prefix) {
  size_t la, lb;
  const uint8_t *ba = md_addr_bytes(a, &la);
  const uint8_t *bb = md_addr_bytes(b, &lb);
  if (!ba || !bb || md_addr_family(a) != md_addr_family(b) || la != lb)
    return false;
  if (prefix < 0 || (size_t)prefix > la * 8)
    return false;
  size_t whole = (size_t)prefix / 8;
  if (memcmp(ba, bb, whole) != 0)
    return false;
  int rest = prefix % 8;
  if (rest == 0)
    return true;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (ba[whole] & mask) == (bb[whole] & mask);
}

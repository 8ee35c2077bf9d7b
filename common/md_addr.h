/* md_addr: one IPv4 or IPv6 address (with optional port), and the helpers
 * every part needs: parse, format, compare, classify. */
#ifndef MD_ADDR_H
#define MD_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define MD_ADDRSTRLEN 64 /* fits "[v6%scope]:port" */

typedef union md_addr {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
  struct sockaddr_storage ss;
} md_addr;

/* Parse a numeric IPv4 or IPv6 literal (no port, no brackets). 0 or -EINVAL. */
int md_addr_parse(const char *s, md_addr *out);
/* Parse "host:port", "[v6]:port" or a bare literal (port then 0). 0 or -EINVAL. */
int md_addr_parse_hostport(const char *s, md_addr *out);
/* Numeric text of the address (no port). Returns buf. */
const char *md_addr_str(const md_addr *a, char *buf, size_t len);
int md_addr_family(const md_addr *a);
socklen_t md_addr_len(const md_addr *a);
uint16_t md_addr_port(const md_addr *a);
void md_addr_set_port(md_addr *a, uint16_t port);
/* "198.51.100.10:7447" or "[2001:db8::1]:7447" (what parse_hostport reads). Returns buf. */
const char *md_addr_str_hostport(const md_addr *a, char *buf, size_t len);
/* Same family and same address bytes (ports ignored). */
bool md_addr_equal(const md_addr *a, const md_addr *b);
bool md_addr_is_unspecified(const md_addr *a);
bool md_addr_is_multicast(const md_addr *a); /* v4 multicast/broadcast, v6 multicast */
bool md_addr_is_broadcast(const md_addr *a); /* 255.255.255.255 (also IPv4-mapped) */
/* Raw address bytes (4 or 16) and their length. */
const void *md_addr_bytes(const md_addr *a, size_t *len);
/* Both addresses share the first `prefix` bits (same family required). */
bool md_addr_same_prefix(const md_addr *a, const md_addr *b, int prefix);

#endif

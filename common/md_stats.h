/* md_stats: mtr's per-hop statistics, with mtr's definitions (ui/net.c):
 * sent, recv, drop, loss%, last, avg, best, worst, stdev, geometric mean,
 * jitter, javg, jmax, jint. Times are kept in microseconds as mtr does,
 * reported in milliseconds. */
#ifndef MD_STATS_H
#define MD_STATS_H

#include <stdint.h>

typedef struct md_stats {
  uint32_t sent;    /* probes sent at this TTL */
  uint32_t recv;    /* replies received */
  uint32_t transit; /* sent, neither answered nor timed out yet */
  /* internal accumulators, microseconds (mtr's units) */
  double last_us, best_us, worst_us, avg_us, ssd_us, gmean_us;
  double jitter_us, javg_us, jmax_us, jinta_us;
} md_stats;

void md_stats_init(md_stats *s);
/* A probe left at this TTL. */
void md_stats_on_sent(md_stats *s);
/* A reply came back after rtt_us microseconds. */
void md_stats_on_reply(md_stats *s, double rtt_us);
/* A probe was given up on (timed out); it stays counted as sent. */
void md_stats_on_timeout(md_stats *s);

/* Derived figures, mtr's definitions. Probes still in transit count as
 * neither received nor lost. */
uint32_t md_stats_drop(const md_stats *s);    /* sent - transit - recv */
double md_stats_loss_pct(const md_stats *s);  /* 100 * drop / (sent - transit) */
double md_stats_last_ms(const md_stats *s);
double md_stats_avg_ms(const md_stats *s);
double md_stats_best_ms(const md_stats *s);
double md_stats_worst_ms(const md_stats *s);
double md_stats_stdev_ms(const md_stats *s);
double md_stats_gmean_ms(const md_stats *s);
double md_stats_jitter_ms(const md_stats *s);
double md_stats_javg_ms(const md_stats *s);
double md_stats_jmax_ms(const md_stats *s);
double md_stats_jint_ms(const md_stats *s);

#endif

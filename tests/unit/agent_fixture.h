/* Test helper shared by test_agent_session.c and test_agent_reload.c: an
 * agent daemon (md_daemon) on a uv loop, listening on 127.0.0.1, with
 * certificates from md_pki in a temp dir, and controllers made of md_chan
 * on the same loop that keep a copy of every message they receive. The
 * helpers use cmocka's assertions: a failure fails the running test. */
#ifndef AGENT_FIXTURE_H
#define AGENT_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon.h"
#include "md_chan.h"
#include "md_tls.h"
#include "md_wire.h"

/* ---- the agent: a loop, the daemon, a guard timer */

extern char g_dir[256]; /* the temp dir: certificates and configuration files */

typedef struct tctx {
  uv_loop_t loop;
  uv_timer_t guard;
  bool timed_out;
  md_agent_config cfg;
  md_daemon *d;
  md_addr addr; /* where the agent listens */
  bool stopped;
} tctx;

/* The guard timer's callback: PUMP_UNTIL gives up. */
void on_guard(uv_timer_t *t);

/* Run the loop until COND holds or MS milliseconds pass; then COND is asserted. */
#define PUMP_UNTIL(T, MS, COND)                                                                    \
  do {                                                                                             \
    (T)->timed_out = false;                                                                        \
    uv_timer_start(&(T)->guard, on_guard, (MS), 0);                                                \
    while (!(COND) && !(T)->timed_out)                                                             \
      uv_run(&(T)->loop, UV_RUN_ONCE);                                                             \
    uv_timer_stop(&(T)->guard);                                                                    \
    if (!(COND))                                                                                   \
      fail_msg("timed out after %d ms waiting for: %s", (int)(MS), #COND);                         \
  } while (0)

/* g_dir/file (a few calls' results stay valid at once). */
const char *pth(const char *file);

/* Start a daemon on a new loop with the agent configuration text;
 * any_port: listen on the port the kernel picks instead of the one in the
 * text. t->addr is then where the first listener listens. */
void start_agent_text(tctx *t, const char *text, bool any_port, const md_daemon_opts *opts);

/* md_daemon_stop's callback: sets t->stopped. */
void on_stopped(md_daemon *d, void *ud);

/* After the daemon stopped: free it, let everything close, and prove
 * nothing was left open. */
void finish_agent(tctx *t);

/* Stop the agent and finish_agent(). */
void stop_agent(tctx *t);

/* ---- a controller made of md_chan */

#define MAX_MSGS 512

typedef struct client {
  md_chan *chan;
  bool up_called;
  int up_status;
  bool closed;
  int close_status;
  char reason[256];
  Mtrdiag__V1__Envelope *msgs[MAX_MSGS];
  bool used[MAX_MSGS];
  size_t n;
} client;

/* Start connecting to the agent with this TLS context (as "agent1"). */
void client_connect(tctx *t, client *cl, md_tls_ctx *ctx);
/* Free the received messages. */
void client_free(client *cl);
/* The first unused received message of this type (and run_id, when given). */
Mtrdiag__V1__Envelope *peek(client *cl, Mtrdiag__V1__Envelope__MsgCase mc, const char *run);
/* Take (mark used) the message peek() finds; NULL when none. */
Mtrdiag__V1__Envelope *take(client *cl, Mtrdiag__V1__Envelope__MsgCase mc, const char *run);
/* Run the loop until a message of this type (and run) arrives; take it.
 * Fails the test when it does not come within ms or the connection ends. */
Mtrdiag__V1__Envelope *wait_msg(tctx *t, client *cl, Mtrdiag__V1__Envelope__MsgCase mc,
                                const char *run, unsigned ms);
/* Hello as controller "ops". */
void send_hello(client *cl);
/* Connect with ctx and complete Hello/HelloAck. */
void client_ready(tctx *t, client *cl, md_tls_ctx *ctx);
/* Close the connection, wait until it is closed, free the messages. */
void client_close(tctx *t, client *cl);
/* A RunRequest (target name "lo", max TTL 3, no DNS); start_at 0: now. */
void send_run(client *cl, const char *id, const char *target, uint32_t cycles, uint32_t interval_ms,
              int64_t start_at);
/* Wait for the Error for run id: its code must be code and its message
 * must hold want. */
Mtrdiag__V1__Envelope *expect_error(tctx *t, client *cl, const char *id,
                                    Mtrdiag__V1__ErrorCode code, const char *want);

/* ---- set-up */

/* Can this process probe 127.0.0.1 (raw sockets, or ping sockets)? */
bool probe_possible(void);

/* g_dir from tmpl ("/tmp/x.XXXXXX"), with a CA, agent1's certificate (for
 * 127.0.0.1) and controller ops's; SIGPIPE ignored. 0, or -1 with err. */
int agent_fixture_setup(const char *tmpl, char *err, size_t errlen);

/* A client TLS context from g_dir: name.crt, name.key and the CA file ca. */
md_tls_ctx *client_ctx(const char *name, const char *ca);

/* Remove g_dir and everything in it. */
int agent_fixture_cleanup(void);

#endif

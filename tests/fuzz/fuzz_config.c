/* libFuzzer target: arbitrary bytes as a configuration file, read as both
 * the controller's and the agent's. Neither may crash, leak, read out of
 * bounds, recurse deeply or use unbounded memory (md_config's limits), and
 * a failure must always leave a message. Build with CC=clang -DMD_FUZZ=ON. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "md_config.h"

/* Fixed $HOME, so "~" expands the same on every run. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  setenv("HOME", "/home/fuzz", 1);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[MD_CONFIG_ERRLEN];
  md_ctl_config ctl;
  md_agent_config agent;

  int rc = md_ctl_config_parse_string((const char *)data, size, "/etc/mtrctl/config.yaml", &ctl,
                                      err, sizeof err);
  if (rc == 0) {
    if (ctl.n_agents == 0 || !ctl.tls.cert || !ctl.history)
      abort();
    for (size_t i = 0; i < ctl.n_agents; i++)
      if (md_ctl_config_find_agent(&ctl, ctl.agents[i].name) == NULL || !ctl.agents[i].tls_name ||
          !ctl.agents[i].probe_address)
        abort();
    md_ctl_config_free(&ctl);
  } else if (err[0] == '\0' || strlen(err) >= sizeof err) {
    abort();
  }

  rc = md_agent_config_parse_string((const char *)data, size, "mtr-agent.yaml", &agent, err,
                                    sizeof err);
  if (rc == 0) {
    if (agent.n_listen == 0 || !agent.name || !agent.tls.ca)
      abort();
    md_agent_config_free(&agent);
  } else if (err[0] == '\0') {
    abort();
  }
  return 0;
}

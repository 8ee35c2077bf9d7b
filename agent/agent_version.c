/* The agent's version string, one place for the hello message and --version. */
const char *md_agent_version(void);
const char *md_agent_version(void) { return MD_VERSION; }

# bash completion for mtr-agent (mtrdiag)                             -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/mtr-agent (loaded on first use by the
# bash-completion package); without that package, source this file from ~/.bashrc.
# Self-contained: needs none of bash-completion's helpers.
#
# The daemon's options (files for --config, users for --user) and the `trace` command:
# its options (as `mtr-agent trace --help` lists them), icmp|udp|tcp for --protocol, host
# names for the target.

_mtr_agent_reply() {
  local IFS=$'\n'
  # shellcheck disable=SC2207 # one completion per line, IFS is newline here
  COMPREPLY=($(compgen -W "$1" -- "$cur"))
}

_mtr_agent() {
  local cur prev i w trace=0
  COMPREPLY=()
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  # "--protocol=u": bash splits at "=", so the option is one word further back
  if [[ $cur == = ]]; then
    cur=""
  elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  fi
  # `trace` is the first word that is not an option (or the value of --config/--user)
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      trace) trace=1; break ;;
      -c | --config | -u | --user) ((i++)); [[ ${COMP_WORDS[i]:-} == = ]] && ((i++)) ;;
      -*) ;;
      *) break ;;
    esac
  done

  local IFS=$'\n'
  if ((trace)); then
    case $prev in
      --protocol) _mtr_agent_reply $'icmp\nudp\ntcp'; return 0 ;;
      -c | --report-cycles | --cycles | -i | --interval | -s | --psize | -f | --first-ttl | -m | --max-ttl | \
        -U | --max-unknown | -Q | --tos | -P | --port | -L | --localport | -a | --address | -G | --gracetime)
        return 0
        ;;
    esac
    if [[ $cur == -* ]]; then
      _mtr_agent_reply $'-c\n--report-cycles\n-i\n--interval\n-s\n--psize\n-f\n--first-ttl\n-m\n--max-ttl\n-U\n--max-unknown\n-Q\n--tos\n-P\n--port\n-L\n--localport\n-a\n--address\n-u\n--udp\n-T\n--tcp\n--protocol\n-4\n-6\n-n\n--no-dns\n-e\n--mpls\n-G\n--gracetime\n--classic\n--no-raw\n-j\n--json\n-p\n--split\n-r\n--report\n-h\n--help'
    else
      # shellcheck disable=SC2207
      COMPREPLY=($(compgen -A hostname -- "$cur"))
    fi
    return 0
  fi

  case $prev in
    -c | --config)
      compopt -o filenames 2>/dev/null
      # shellcheck disable=SC2207
      COMPREPLY=($(compgen -f -- "$cur"))
      return 0
      ;;
    -u | --user)
      # shellcheck disable=SC2207
      COMPREPLY=($(compgen -u -- "$cur"))
      return 0
      ;;
  esac
  if [[ $cur == -* ]]; then
    _mtr_agent_reply $'-c\n--config\n-t\n--check-config\n--no-raw\n-u\n--user\n-v\n--verbose\n-h\n--help\n-V\n--version'
  else
    _mtr_agent_reply 'trace'
  fi
  return 0
}
complete -F _mtr_agent mtr-agent

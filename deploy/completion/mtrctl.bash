# bash completion for mtrctl (mtrdiag)                                -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/mtrctl (loaded on first use by the
# bash-completion package); without that package, source this file from ~/.bashrc.
# Self-contained: needs none of bash-completion's helpers.
#
# Completes the commands and their options (as `mtrctl help COMMAND` lists them), the
# values --format, --protocol and --role take, files for --config, directories for
# --output and --dir, and agent names: the keys under "agents:" of the configuration mtrctl
# would read (--config on the line, else $MTRCTL_CONFIG, else ~/.config/mtrctl/config.yaml,
# else /etc/mtrctl/config.yaml).

# Why: the configuration file this command line would use, as mtrctl picks it.
_mtrctl_config_file() {
  local i w f=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if [[ $w == --config ]]; then
      f=${COMP_WORDS[i + 1]:-}
      [[ $f == = ]] && f=${COMP_WORDS[i + 2]:-}
    fi
  done
  if [[ -z $f ]]; then
    if [[ -n ${MTRCTL_CONFIG:-} ]]; then
      f=$MTRCTL_CONFIG
    elif [[ -f ${HOME:-}/.config/mtrctl/config.yaml ]]; then
      f=$HOME/.config/mtrctl/config.yaml
    else
      f=/etc/mtrctl/config.yaml
    fi
  fi
  # quotes as typed on the line, and ~/ as the shell would expand it
  f=${f#[\"\']}
  f=${f%[\"\']}
  # shellcheck disable=SC2088 # a literal "~/" typed on the line
  [[ $f == "~/"* ]] && f=$HOME/${f#"~/"}
  printf '%s\n' "$f"
}

# Why: agent names for diagnose and agents: the keys one level under the top-level
# "agents:" mapping (block style, as the example configuration writes it).
_mtrctl_agent_names() {
  local f
  f=$(_mtrctl_config_file)
  [[ -r $f ]] || return 0
  awk '
    /^agents:[ \t]*(#.*)?$/ { on = 1; ind = -1; next }
    on && /^[^ \t#]/ { on = 0 }
    !on || /^[ \t]*(#|$)/ { next }
    {
      match($0, /^ */); n = RLENGTH
      if (ind < 0) ind = n
      if (n != ind) next
      k = substr($0, n + 1)
      if (k !~ /:/) next
      sub(/[ \t]*:.*/, "", k)
      gsub(/["\047]/, "", k)
      if (k != "") print k
    }' "$f" 2>/dev/null
}

# Why: set COMPREPLY from words (one per line) that start with the current word.
_mtrctl_reply() {
  local IFS=$'\n'
  # shellcheck disable=SC2207 # one completion per line, IFS is newline here
  COMPREPLY=($(compgen -W "$1" -- "$cur"))
}

_mtrctl() {
  local cur prev cmd="" cmdi=0 i w npos sub=""
  COMPREPLY=()
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  # "--format=js": bash splits at "=", so the option is one word further back
  if [[ $cur == = ]]; then
    cur=""
  elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  fi

  # the command: the first word that is neither an option nor --config's value
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      --config)
        ((i++))
        [[ ${COMP_WORDS[i]:-} == = ]] && ((i++))
        ;;
      -*) ;;
      *) cmd=$w cmdi=$i; break ;;
    esac
  done

  # values of options
  case $prev in
    --config)
      compopt -o filenames 2>/dev/null
      local IFS=$'\n'
      # shellcheck disable=SC2207
      COMPREPLY=($(compgen -f -- "$cur"))
      return 0
      ;;
    -o | --output | --dir)
      compopt -o filenames 2>/dev/null
      local IFS=$'\n'
      # shellcheck disable=SC2207
      COMPREPLY=($(compgen -d -- "$cur"))
      return 0
      ;;
    --format)
      if [[ $cmd == agents ]]; then _mtrctl_reply $'text\njson'; else _mtrctl_reply $'text\njson\nmarkdown\nhtml'; fi
      return 0
      ;;
    --protocol) _mtrctl_reply $'icmp\nudp\ntcp'; return 0 ;;
    --role) _mtrctl_reply $'agent\ncontroller'; return 0 ;;
    -c | --cycles | -i | --interval | -P | --port | -s | --psize | -f | --first-ttl | -m | --max-ttl | \
      -Q | --tos | --timeout | --limit | --days | --name | --san | --reference)
      return 0
      ;;
  esac

  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      _mtrctl_reply $'--config\n-v\n--verbose\n-h\n--help\n-V\n--version'
    else
      _mtrctl_reply $'diagnose\nagents\nhistory\nshow\npki\nhelp'
    fi
    return 0
  fi

  case $cmd in
    diagnose)
      if [[ $cur == -* ]]; then
        _mtrctl_reply $'-c\n--cycles\n-i\n--interval\n--protocol\n-P\n--port\n-s\n--psize\n-f\n--first-ttl\n-m\n--max-ttl\n-Q\n--tos\n-n\n--no-dns\n-4\n-6\n--format\n-o\n--output\n--reference\n--timeout\n--no-oneway\n--config\n-h\n--help'
        return 0
      fi
      # A and B: the first two words that are not options or option values
      npos=0
      for ((i = cmdi + 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
          -c | --cycles | -i | --interval | -P | --port | -s | --psize | -f | --first-ttl | -m | --max-ttl | \
            -Q | --tos | --timeout | --format | -o | --output | --reference | --config | --protocol)
            ((i++))
            [[ ${COMP_WORDS[i]:-} == = ]] && ((i++))
            ;;
          -* | =) ;;
          *) ((npos++)) ;;
        esac
      done
      ((npos < 2)) && _mtrctl_reply "$(_mtrctl_agent_names)"
      ;;
    agents)
      if [[ $cur == -* ]]; then
        _mtrctl_reply $'--timeout\n--format\n--config\n-h\n--help'
      else
        _mtrctl_reply "$(_mtrctl_agent_names)"
      fi
      ;;
    history) _mtrctl_reply $'--limit\n--config\n-h\n--help' ;;
    show) [[ $cur == -* ]] && _mtrctl_reply $'--format\n--config\n-h\n--help' ;;
    pki)
      for ((i = cmdi + 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        [[ $w == init || $w == issue ]] && { sub=$w; break; }
      done
      if [[ -z $sub ]]; then
        if [[ $cur == -* ]]; then _mtrctl_reply $'-h\n--help'; else _mtrctl_reply $'init\nissue'; fi
      elif [[ $sub == init ]]; then
        _mtrctl_reply $'--dir\n-h\n--help'
      else
        _mtrctl_reply $'--dir\n--name\n--role\n--san\n--days\n-h\n--help'
      fi
      ;;
    help)
      if [[ ${COMP_WORDS[COMP_CWORD - 1]} == pki ]]; then
        _mtrctl_reply $'init\nissue'
      elif ((COMP_CWORD == cmdi + 1)); then
        _mtrctl_reply $'diagnose\nagents\nhistory\nshow\npki\nhelp'
      fi
      ;;
  esac
  return 0
}
complete -F _mtrctl mtrctl

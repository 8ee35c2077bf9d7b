#!/usr/bin/env bash
# test_package.sh: the Debian package, built, installed and used as an operator would.
#
#   build      a fresh RelWithDebInfo tree from MD_SRC (tests off), `--target package`:
#              one mtrdiag_<version>_<arch>.deb whose control data names the libraries
#   install    dpkg -i; every file in place (dpkg -L and on disk); the system user and group
#              mtr-agent (no home, nologin); /etc/mtr-agent root:mtr-agent 0750; installing
#              again (postinst a second time) changes nothing
#   files      the unit: ExecStart=/usr/sbin/mtr-agent, otherwise deploy/systemd's unit,
#              rated OK by systemd-analyze; `man -w` finds mtrctl(1) and mtr-agent(8), whose
#              sources name every option of every --help and every subcommand; the bash
#              completions load (`complete -p`) and offer the config's agent names
#   run        on the asymmetric lab, from the installed files only: `/usr/bin/mtrctl pki`
#              makes the certificates (in /etc/mtr-agent, root:mtr-agent 0640), two
#              `/usr/sbin/mtr-agent` daemons start as root and drop to the user mtr-agent,
#              `/usr/bin/mtrctl diagnose local cvm -c 5 -i 0.1 --format json` exits 0 with a
#              healthy two-way report; SIGTERM stops both with exit 0
#   remove     dpkg -r keeps the conffile; dpkg -P removes /etc/mtr-agent and the stat
#              override and keeps the user (the package's choice)
# The machine is left as found: the package purged on any exit (trap) and the user mtr-agent
# deleted again if this test created it (other lab tests start agents as root, which become
# mtr-agent when that user exists). A mtrdiag package already installed by someone else
# makes the test skip rather than remove it.
# Exit 77 (skipped) without dpkg-deb/dpkg, root or the lab tools.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SRC=${MD_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
command -v dpkg-deb >/dev/null 2>&1 || lab_skip "no dpkg-deb (not a Debian system)"
lab_require root dpkg dpkg-query cmake ip jq
MARK=/var/tmp/mtrdiag-test_package.installed # "user-existed=0|1" while our package is on

# Why: dpkg waits for nobody: another apt/dpkg run (a concurrent install) holds its lock.
dpkg_locked() { # command...
  local try out
  for _ in $(seq 1 60); do
    if out=$("$@" 2>&1); then
      printf '%s\n' "$out"
      return 0
    fi
    grep -qi 'lock' <<<"$out" || { printf '%s\n' "$out" >&2; return 1; }
    sleep 1
  done
  printf '%s\n' "$out" >&2
  return 1
}

# Why: "is mtrdiag on this machine" in any state (installed, config files only, half done).
pkg_present() {
  local s
  s=$(dpkg-query -W -f='${Status}' mtrdiag 2>/dev/null) && [[ -n $s && $s != *not-installed ]]
}

# Why: a package left by an earlier run of this test (killed) is ours to remove; one that
# someone installed is not.
if pkg_present; then
  [[ -f $MARK ]] || lab_skip "mtrdiag is installed on this machine (not by this test): 'dpkg -P mtrdiag' to run it"
fi
USER_EXISTED=0
if [[ -f $MARK ]]; then
  USER_EXISTED=$(sed -n 's/^user-existed=//p' "$MARK")
elif getent passwd mtr-agent >/dev/null; then
  USER_EXISTED=1
fi
ETC_EXISTED=0
[[ -d /etc/mtr-agent && ! -f $MARK ]] && ETC_EXISTED=1

# Why: leave the machine as found, whatever happened: purge, and delete the user when this
# test made it (no process may run as it any more: the lab's cleanup ran first).
pkg_cleanup() {
  set +e
  [[ -n ${TESTETC:-} ]] && rm -rf "$TESTETC"
  if pkg_present; then
    dpkg_locked dpkg --purge mtrdiag >/dev/null
  fi
  if [[ $USER_EXISTED == 0 ]] && getent passwd mtr-agent >/dev/null; then
    # (an agent killed a moment ago may still be exiting: userdel refuses while it runs)
    for _ in $(seq 1 50); do
      userdel mtr-agent 2>/dev/null && break
      sleep 0.1
    done
    getent passwd mtr-agent >/dev/null && lab_log "could not delete the user mtr-agent: $(userdel mtr-agent 2>&1)"
    getent group mtr-agent >/dev/null && groupdel mtr-agent 2>/dev/null
  fi
  rm -f "$MARK"
}
on_exit() {
  local rc=$?
  lab_cleanup || true
  pkg_cleanup || true
  exit "$rc"
}

lab_sweep_stale
lab_init
trap on_exit EXIT

# ---------------------------------------------------------------- build
B=$LAB_TMP/build
t0=$(lab_now)
cmake -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >"$LAB_TMP/cmake.log" 2>&1 ||
  lab_fail "cmake configure: $(tail -20 "$LAB_TMP/cmake.log")"
cmake --build "$B" -j"$(nproc)" >>"$LAB_TMP/cmake.log" 2>&1 || lab_fail "build: $(tail -30 "$LAB_TMP/cmake.log")"
cmake --build "$B" --target package >>"$LAB_TMP/cmake.log" 2>&1 || lab_fail "package: $(tail -30 "$LAB_TMP/cmake.log")"
VERSION=$("$B/controller/mtrctl" --version | awk '{print $NF}')
ARCH=$(dpkg --print-architecture)
DEB=$B/mtrdiag_${VERSION}_${ARCH}.deb
[[ -f $DEB ]] || lab_fail "no $DEB: $(ls "$B"/*.deb 2>&1)"
lab_log "built $(basename "$DEB") ($(stat -c %s "$DEB") bytes) in $(lab_elapsed "$t0" "$(lab_now)") s"
[[ $(dpkg-deb -f "$DEB" Package) == mtrdiag && $(dpkg-deb -f "$DEB" Version) == "$VERSION" ]] ||
  lab_fail "control: $(dpkg-deb -f "$DEB" Package Version)"
deps=$(dpkg-deb -f "$DEB" Depends)
for lib in libuv1 libssl3 libprotobuf-c1 libjansson4 libyaml-0-2 libsqlite3-0 adduser; do
  grep -qE "(^|, )$lib( |,|$)" <<<"$deps" || lab_fail "Depends lacks $lib: $deps"
done
dpkg-deb -c "$DEB" | awk '{print $6}' | grep -q '^\./usr/share/doc/mtrdiag/examples/mtrctl.example.yaml$' ||
  lab_fail "package contents: $(dpkg-deb -c "$DEB")"
lab_log "Depends: $deps"

# ---------------------------------------------------------------- install
printf 'user-existed=%s\n' "$USER_EXISTED" >"$MARK"
export DEBIAN_FRONTEND=noninteractive
dpkg_locked dpkg -i "$DEB" >"$LAB_TMP/dpkg-i.log" || lab_fail "dpkg -i: $(cat "$LAB_TMP/dpkg-i.log")"
[[ $(dpkg-query -W -f='${Status} ${Version}' mtrdiag) == "install ok installed $VERSION" ]] ||
  lab_fail "not installed: $(dpkg-query -W -f='${Status} ${Version}' mtrdiag)"
FILES=(/usr/sbin/mtr-agent /usr/bin/mtrctl /lib/systemd/system/mtr-agent.service
  /etc/mtr-agent/config.yaml.example
  /usr/share/doc/mtrdiag/examples/mtr-agent.example.yaml /usr/share/doc/mtrdiag/examples/mtrctl.example.yaml
  /usr/share/doc/mtrdiag/examples/README.md /usr/share/doc/mtrdiag/examples/healthy/report.txt
  /usr/share/man/man1/mtrctl.1.gz /usr/share/man/man8/mtr-agent.8.gz
  /usr/share/bash-completion/completions/mtrctl /usr/share/bash-completion/completions/mtr-agent)
listed=$(dpkg -L mtrdiag)
for f in "${FILES[@]}"; do
  grep -qxF "$f" <<<"$listed" || lab_fail "dpkg -L mtrdiag lacks $f"
  [[ -f $f ]] || lab_fail "$f is not on disk"
done
[[ -x /usr/sbin/mtr-agent && -x /usr/bin/mtrctl ]] || lab_fail "binaries not executable"
[[ $(/usr/sbin/mtr-agent --version) == "mtr-agent $VERSION" && $(/usr/bin/mtrctl --version) == "mtrctl $VERSION" ]] ||
  lab_fail "versions: $(/usr/sbin/mtr-agent --version) / $(/usr/bin/mtrctl --version)"
grep -qx /etc/mtr-agent/config.yaml.example /var/lib/dpkg/info/mtrdiag.conffiles || lab_fail "no conffile"
cmp -s /etc/mtr-agent/config.yaml.example "$SRC/deploy/config/mtr-agent.example.yaml" ||
  lab_fail "config.yaml.example differs from deploy/config/mtr-agent.example.yaml"
lab_log "installed: ${#FILES[@]} files in place, versions $VERSION"

# the system user and the configuration directory
check_user() {
  local pw
  pw=$(getent passwd mtr-agent) || lab_fail "no user mtr-agent"
  IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
  ((uid < 1000)) || lab_fail "mtr-agent is no system user (uid $uid)"
  [[ $home == /nonexistent && ! -e /nonexistent ]] || lab_fail "mtr-agent home $home (or /nonexistent exists)"
  [[ $shell == */nologin || $shell == /bin/false ]] || lab_fail "mtr-agent shell $shell"
  [[ $(getent group mtr-agent | cut -d: -f3) == "$gid" ]] || lab_fail "mtr-agent's group is not mtr-agent"
  [[ $(stat -c '%a %U %G' /etc/mtr-agent) == "750 root mtr-agent" ]] ||
    lab_fail "/etc/mtr-agent is $(stat -c '%a %U %G' /etc/mtr-agent), want 750 root mtr-agent"
}
check_user
UID_AGENT=$(id -u mtr-agent)
dpkg_locked dpkg -i "$DEB" >"$LAB_TMP/dpkg-i2.log" || lab_fail "second dpkg -i: $(cat "$LAB_TMP/dpkg-i2.log")"
check_user
[[ $(id -u mtr-agent) == "$UID_AGENT" ]] || lab_fail "reinstalling made a new user"
lab_log "user mtr-agent (uid $UID_AGENT, nologin, /nonexistent), /etc/mtr-agent 0750 root:mtr-agent; reinstall idempotent"

# ---------------------------------------------------------------- unit, man pages, completion
UNIT=/lib/systemd/system/mtr-agent.service
grep -qx 'ExecStart=/usr/sbin/mtr-agent --config /etc/mtr-agent/config.yaml' "$UNIT" ||
  lab_fail "unit ExecStart: $(grep ExecStart "$UNIT")"
# apart from ExecStart and the comments, the packaged unit is the source's
diff <(grep -v -e '^#' -e '^ExecStart=' "$UNIT") \
  <(grep -v -e '^#' -e '^ExecStart=' "$SRC/deploy/systemd/mtr-agent.service") >"$LAB_TMP/unit.diff" ||
  lab_fail "packaged unit differs from deploy/systemd/mtr-agent.service: $(cat "$LAB_TMP/unit.diff")"
if command -v systemd-analyze >/dev/null 2>&1; then
  line=$(systemd-analyze security --no-pager --offline=true "$UNIT" 2>&1 | grep 'Overall exposure level') ||
    lab_fail "systemd-analyze on the packaged unit failed"
  grep -qE ' (OK|SAFE) ' <<<"$line" || lab_fail "packaged unit: $line"
  lab_log "packaged unit: ${line#→ }"
fi

if command -v man >/dev/null 2>&1; then
  [[ $(man -w mtrctl) == /usr/share/man/man1/mtrctl.1.gz ]] || lab_fail "man -w mtrctl: $(man -w mtrctl 2>&1)"
  [[ $(man -w 8 mtr-agent) == /usr/share/man/man8/mtr-agent.8.gz ]] || lab_fail "man -w 8 mtr-agent: $(man -w 8 mtr-agent 2>&1)"
  MANWIDTH=100 man -P cat mtrctl 2>/dev/null | grep -q 'EXAMPLES' || lab_fail "man mtrctl does not render"
  lab_log "man -w finds mtrctl(1) and mtr-agent(8)"
else
  lab_log "no man here (man-db): the pages are checked as files only"
fi
if command -v groff >/dev/null 2>&1; then
  for p in /usr/share/man/man1/mtrctl.1.gz /usr/share/man/man8/mtr-agent.8.gz; do
    warn=$(zcat "$p" | groff -man -Tutf8 -ww -z 2>&1) || true
    [[ -z $warn ]] || lab_fail "groff warns on $p: $warn"
  done
fi
# Why: the pages are the --help texts: every option and example of every --help is in them.
man_has_help() { # page, help command...
  local page=$1 src opt ex
  shift
  src=$(zcat "$page")
  local help
  help=$("$@") || lab_fail "'$*' failed"
  while read -r opt; do
    grep -qF -- "${opt//-/\\-}" <<<"$src" || lab_fail "$page lacks $opt of '$*'"
  done < <(grep -oE -- '--[a-z][a-z0-9-]+' <<<"$help" | sort -u)
  ex=$(grep -E -A1 '^examples?:' <<<"$help" | grep -vE '^examples?:$' | head -1 | sed -E 's/^examples?: *//; s/^ +//')
  [[ -n $ex ]] || lab_fail "'$*' shows no example"
  grep -qF -- "$(sed 's/\\/\\e/g; s/-/\\-/g' <<<"$ex")" <<<"$src" || lab_fail "$page lacks the example of '$*': $ex"
}
man_has_help /usr/share/man/man1/mtrctl.1.gz /usr/bin/mtrctl --help
for c in diagnose agents history show pki; do
  man_has_help /usr/share/man/man1/mtrctl.1.gz /usr/bin/mtrctl "$c" --help
  zcat /usr/share/man/man1/mtrctl.1.gz | grep -qxF ".SS \"mtrctl $c\"" || lab_fail "mtrctl(1) has no section for $c"
done
man_has_help /usr/share/man/man8/mtr-agent.8.gz /usr/sbin/mtr-agent --help
man_has_help /usr/share/man/man8/mtr-agent.8.gz /usr/sbin/mtr-agent trace --help
lab_log "mtrctl(1) and mtr-agent(8) hold every option and example of every --help"

for prog in mtrctl mtr-agent; do
  out=$(bash --norc --noprofile -c "source /usr/share/bash-completion/completions/$prog && complete -p $prog" 2>&1) ||
    lab_fail "completion for $prog does not load: $out"
  grep -q -- "-F .* $prog\$" <<<"$out" || lab_fail "complete -p $prog: $out"
done

# ---------------------------------------------------------------- run from the installed files
lab_build_diamond asym
CTL=/usr/bin/mtrctl AGENT=/usr/sbin/mtr-agent
PKI=$LAB_TMP/pki
"$CTL" pki init --dir "$PKI" >/dev/null
"$CTL" pki issue --dir "$PKI" --name local --role agent --san "$LAB_A4" >/dev/null
"$CTL" pki issue --dir "$PKI" --name cvm --role agent --san "$LAB_B4" >/dev/null
"$CTL" pki issue --dir "$PKI" --name ops --role controller >/dev/null
# as an operator would: the agents' files in /etc/mtr-agent, readable by the service's group
TESTETC=/etc/mtr-agent/$LAB_ID
install -d -m 0750 -o root -g mtr-agent "$TESTETC"
declare -A PID=()
for node in a b; do
  if [[ $node == a ]]; then name=local addr=$LAB_A4; else name=cvm addr=$LAB_B4; fi
  for f in ca.crt "$name.crt" "$name.key"; do install -m 0640 -o root -g mtr-agent "$PKI/$f" "$TESTETC/$f"; done
  cat >"$TESTETC/$name.yaml" <<EOT
name: $name
listen: ["$addr:7447"]
tls: { cert: $name.crt, key: $name.key, ca: ca.crt, allowed_controllers: [ops] }
policy:
  allow_targets: ["198.18.0.0/15", "2001:db8::/32"]
  max_probes_per_second: 2000
  min_interval: 0.01
EOT
  chown root:mtr-agent "$TESTETC/$name.yaml"
  chmod 0640 "$TESTETC/$name.yaml"
  lab_exec "$node" "$AGENT" --config "$TESTETC/$name.yaml" --check-config >"$LAB_TMP/check-$name" 2>&1 ||
    lab_fail "$name --check-config: $(cat "$LAB_TMP/check-$name")"
  lab_bg "$node" "$LAB_TMP/agent-$name.out" "$LAB_TMP/agent-$name.err" "$AGENT" --config "$TESTETC/$name.yaml"
  PID[$name]=$LAB_LAST_PID
  for ((i = 0; i < 100; i++)); do
    grep -q 'listening on' "$LAB_TMP/agent-$name.err" 2>/dev/null && break
    kill -0 "${PID[$name]}" 2>/dev/null || break
    sleep 0.05
  done
  grep -q 'listening on' "$LAB_TMP/agent-$name.err" || lab_fail "agent $name: $(cat "$LAB_TMP/agent-$name.err")"
  grep -q "running as user 'mtr-agent'" "$LAB_TMP/agent-$name.err" ||
    lab_fail "agent $name did not become mtr-agent: $(cat "$LAB_TMP/agent-$name.err")"
done
lab_log "two installed agents listen, as user mtr-agent"

CFG=$LAB_TMP/mtrctl.yaml
cat >"$CFG" <<EOT
tls: { cert: $PKI/ops.crt, key: $PKI/ops.key, ca: $PKI/ca.crt }
history: $LAB_TMP/history.db
agents:
  local: { address: "$LAB_A4:7447" }
  cvm:   { address: "$LAB_B4:7447" }
EOT
# the completion reads the agent names from that file
names=$(bash --norc --noprofile -c '
  source /usr/share/bash-completion/completions/mtrctl
  COMP_WORDS=(mtrctl --config "$1" diagnose ""); COMP_CWORD=4
  _mtrctl mtrctl "" diagnose; echo "${COMPREPLY[*]}"' _ "$CFG")
[[ $names == "local cvm" ]] || lab_fail "completion of agent names from --config: '$names'"
lab_log "bash completion loads for both programs and offers the config's agents ($names)"

RC=0
lab_exec a "$CTL" --config "$CFG" agents >"$LAB_TMP/agents.out" 2>"$LAB_TMP/agents.err" || RC=$?
((RC == 0)) || lab_fail "mtrctl agents: exit $RC: $(cat "$LAB_TMP/agents.out" "$LAB_TMP/agents.err")"
RC=0
lab_exec a "$CTL" --config "$CFG" diagnose local cvm -c 5 -i 0.1 --format json \
  >"$LAB_TMP/diag.json" 2>"$LAB_TMP/diag.err" || RC=$?
((RC == 0)) || lab_fail "mtrctl diagnose: exit $RC: $(cat "$LAB_TMP/diag.err"; head -c 2000 "$LAB_TMP/diag.json")"
jq -e '.schema == "mtrdiag.report.v1" and .diagnosis.status == "healthy" and (.errors | length) == 0
       and .forward.reached and .reverse.reached
       and .agents.a.version == $v and .agents.b.version == $v' --arg v "$VERSION" "$LAB_TMP/diag.json" >/dev/null ||
  lab_fail "report: $(jq -c '{status: .diagnosis.status, errors, a: .agents.a.version}' "$LAB_TMP/diag.json" 2>&1 | head -c 2000)"
lab_log "installed mtrctl diagnose local cvm: exit 0, healthy, both paths reached ($(jq -r .diagnosis.summary "$LAB_TMP/diag.json"))"
for name in local cvm; do
  kill -TERM "${PID[$name]}"
  RC=0
  wait "${PID[$name]}" || RC=$?
  ((RC == 0)) || lab_fail "agent $name: exit $RC after SIGTERM: $(tail -5 "$LAB_TMP/agent-$name.err")"
done
rm -rf "$TESTETC"

# ---------------------------------------------------------------- remove, purge
dpkg_locked dpkg -r mtrdiag >"$LAB_TMP/dpkg-r.log" || lab_fail "dpkg -r: $(cat "$LAB_TMP/dpkg-r.log")"
for f in /usr/sbin/mtr-agent /usr/bin/mtrctl "$UNIT" /usr/share/man/man1/mtrctl.1.gz; do
  [[ ! -e $f ]] || lab_fail "$f is still there after dpkg -r"
done
[[ -f /etc/mtr-agent/config.yaml.example ]] || lab_fail "dpkg -r removed the conffile"
dpkg_locked dpkg -P mtrdiag >"$LAB_TMP/dpkg-p.log" || lab_fail "dpkg -P: $(cat "$LAB_TMP/dpkg-p.log")"
if ((ETC_EXISTED == 0)); then
  [[ ! -e /etc/mtr-agent ]] || lab_fail "/etc/mtr-agent is still there after purge: $(ls -la /etc/mtr-agent)"
fi
! dpkg-statoverride --list /etc/mtr-agent >/dev/null || lab_fail "the stat override outlived the purge"
getent passwd mtr-agent >/dev/null || lab_fail "purge removed the user mtr-agent (it should stay)"
lab_log "dpkg -r keeps the conffile; dpkg -P removes /etc/mtr-agent and the override, keeps the user"
lab_log "PASS"

# shellcheck shell=bash disable=SC2034 # LAB_* variables are read by the scripts that source this
# tests/lab/lib.sh: the network lab shared by every lab test and the benchmark.
#
# Source it from a script that runs as root with `set -euo pipefail`:
#     source "$(dirname "$0")/lib.sh"
#     lab_require root mtr jq nft       # exit 77 (skipped) when something is missing
#     lab_init                          # unique prefix, temp dir, cleanup trap
#     lab_build_linear                  # or lab_build_diamond ecmp|asym
#
# Every node is a network namespace named "$LAB_ID-<node>"; LAB_ID is "mdl<pid>-<4 hex>",
# unique per run. Nodes are joined by veth pairs; link L joins its "left" node (side 1) and
# its "right" node (side 2), and each end of it is an interface called "e<L>" with
#     IPv4 198.18.<L>.<side>/30        IPv6 2001:db8:<L>::<side>/126 (point-to-point, as real router links)
# Only 198.18.0.0/15 and 2001:db8::/32 are used, and only inside the lab's namespaces. End
# hosts route only those two prefixes into the lab (no default route), so nothing a test
# sends can leave the lab. Cleanup (namespaces, processes started in them, /etc/netns/<ns>,
# the temp dir) runs from an EXIT trap.
#
# Topologies (addresses are those a probe from the left host sees per TTL):
#   linear:  src -1- r1 -2- r2 -3- r3 -4- dst
#            src 198.18.1.1  dst 198.18.4.2; path 198.18.{1,2,3,4}.2 (v6: 2001:db8:{1,2,3,4}::2)
#   diamond: left -1- r1 -2- upper -3- r3 -4- right
#                       r1 -5- lower -6- r3
#            ecmp: nodes src r1 r2a r2b r3 dst; r1->dst and r3->src are equal-cost multipath
#                  over r2a (links 2,3) and r2b (links 5,6); L4 multipath hashing.
#            asym: nodes a r1 r2f r2r r3 b; a->b goes over r2f (links 2,3), b->a over r2r
#                  (links 6,5).
# The builders set LAB_* variables describing the lab (see each builder).

# ---------------------------------------------------------------- logging and checks

# Why: one prefix on every message so test output is easy to scan in ctest logs.
lab_log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Why: a failed assertion must say what failed and stop the test (non-zero exit).
lab_fail() {
  printf '[lab FAIL] %s\n' "$*" >&2
  exit 1
}

# Why: ctest treats exit 77 as "skipped" (SKIP_RETURN_CODE in tests/CMakeLists.txt).
lab_skip() {
  printf '[lab SKIP] %s\n' "$*" >&2
  exit 77
}

# Why: tests need root and a few tools; a machine without them skips with the install hint.
# Arguments: "root" and/or command names. Package names are given in the message.
lab_require() {
  local what missing=()
  for what in "$@"; do
    if [[ $what == root ]]; then
      [[ $(id -u) -eq 0 ]] || lab_skip "must run as root (network namespaces)"
    elif ! command -v "$what" >/dev/null 2>&1; then
      missing+=("$what")
    fi
  done
  if ((${#missing[@]})); then
    lab_skip "missing tools: ${missing[*]} (Debian: apt-get install -y mtr-tiny jq nftables" \
      "dnsmasq iproute2 iputils-ping socat time util-linux)"
  fi
}

# Why: bash has no float comparison; awk evaluates "a op b" and the exit status says.
# Usage: lab_fcmp 1.5 '<=' 2 && echo yes
lab_fcmp() {
  awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
    if (op == "<") r = a < b; else if (op == "<=") r = a <= b
    else if (op == ">") r = a > b; else if (op == ">=") r = a >= b
    else if (op == "==") r = a == b; else r = 0
    exit !r }'
}

# Why: "is VALUE within LO..HI" (inclusive, floats) in one call.
lab_in_range() { lab_fcmp "$1" '>=' "$2" && lab_fcmp "$1" '<=' "$3"; }

# Why: wall-clock durations for timing assertions (seconds with fractions).
lab_now() { date +%s.%N; }

# Why: difference of two lab_now values, printed with 3 decimals.
lab_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

# ---------------------------------------------------------------- lifetime

# Why: one place that creates the run's identity, temp dir and the cleanup trap.
# Sets LAB_ID (namespace prefix) and LAB_TMP (a temp dir removed at exit).
lab_init() {
  LAB_ID="mdl$$-$(printf '%04x' $((RANDOM % 65536)))"
  LAB_TMP=$(mktemp -d "/tmp/$LAB_ID.XXXXXX")
  LAB_NODES=()
  LAB_PIDS=()
  declare -gA LAB_NAME_OF=()
  trap lab_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  lab_log "lab $LAB_ID (temp $LAB_TMP)"
}

# Why: leave nothing behind: processes we started, namespaces, /etc/netns dirs, temp files.
# Runs from the EXIT trap; safe to call twice.
lab_cleanup() {
  local rc=$? pid ns node errexit=0
  [[ $- == *e* ]] && errexit=1
  set +e
  for pid in "${LAB_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for node in "${LAB_NODES[@]}"; do
    ns=$(lab_ns "$node")
    # Anything else still running in one of our namespaces was started by this test.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
  done
  sleep 0.2
  for node in "${LAB_NODES[@]}"; do
    ns=$(lab_ns "$node")
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
  for pid in "${LAB_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  [[ -n ${LAB_TMP:-} && -d $LAB_TMP ]] && rm -rf "$LAB_TMP"
  LAB_NODES=()
  LAB_PIDS=()
  ((errexit)) && set -e
  return "$rc"
}

# Why: a run killed with SIGKILL (ctest timeout) cannot clean up; its namespaces and temp
# dir carry the dead shell's pid in their name ("mdl<pid>-xxxx-node", "/tmp/mdl<pid>-xxxx.*"),
# so a later run can remove them. Only what belongs to a pid that no longer exists is touched.
lab_sweep_stale() {
  local ns pid p dir
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ $ns =~ ^mdl([0-9]+)-[0-9a-f]{4}- ]] || continue
    pid=${BASH_REMATCH[1]}
    kill -0 "$pid" 2>/dev/null && continue
    lab_log "removing stale namespace $ns (owner $pid is gone)"
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  for dir in /tmp/mdl[0-9]*-????.*; do
    [[ -d $dir && $dir =~ ^/tmp/mdl([0-9]+)-[0-9a-f]{4}\. ]] || continue
    kill -0 "${BASH_REMATCH[1]}" 2>/dev/null && continue
    rm -rf "$dir"
  done
}

# Why: start a background process whose pid cleanup must kill; prints nothing, sets LAB_LAST_PID.
# Usage: lab_bg NODE OUTFILE ERRFILE cmd args...
lab_bg() {
  local node=$1 out=$2 err=$3
  shift 3
  ip netns exec "$(lab_ns "$node")" "$@" >"$out" 2>"$err" &
  LAB_LAST_PID=$!
  LAB_PIDS+=("$LAB_LAST_PID")
}

# ---------------------------------------------------------------- nodes, links, routes

# Why: the namespace name of a node, in one place.
lab_ns() { printf '%s-%s\n' "$LAB_ID" "$1"; }

# Why: run a command inside a node's namespace.
lab_exec() {
  local node=$1
  shift
  ip netns exec "$(lab_ns "$node")" "$@"
}

# Why: sysctl inside a node, quiet, failing loudly if the key is refused.
lab_sysctl() {
  local node=$1
  shift
  lab_exec "$node" sysctl -q -w "$@" >/dev/null
}

# Why: a node with the lab's baseline settings. KIND is "host" or "router".
# Baseline: lo up; no IPv6 DAD (addresses usable at once); no ICMP rate limiting (neither
# per-peer nor the global token bucket); routers forward v4+v6, answer ICMP errors from the
# inbound interface (like real routers) and do no reverse-path filtering (asymmetric routes).
lab_add_node() {
  local node=$1 kind=$2
  ip netns add "$(lab_ns "$node")"
  LAB_NODES+=("$node")
  lab_exec "$node" ip link set lo up
  lab_sysctl "$node" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 \
    net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=100000
  if [[ $kind == router ]]; then
    lab_sysctl "$node" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
      net.ipv6.conf.default.forwarding=1 net.ipv4.icmp_errors_use_inbound_ifaddr=1 \
      net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  fi
}

# Why: the one place that turns (link, side) into an address. FAMILY 4 or 6.
lab_addr() {
  local link=$1 side=$2 fam=${3:-4}
  if [[ $fam == 4 ]]; then printf '198.18.%d.%d\n' "$link" "$side"; else printf '2001:db8:%d::%d\n' "$link" "$side"; fi
}

# Why: the prefix of a link (for routes). FAMILY 4 or 6.
lab_prefix() {
  local link=$1 fam=${2:-4}
  if [[ $fam == 4 ]]; then printf '198.18.%d.0/30\n' "$link"; else printf '2001:db8:%d::/126\n' "$link"; fi
}

# Why: join two nodes with link number LINK (1..254): interface e<LINK> on both ends,
# LEFT gets side 1 addresses, RIGHT side 2, v4 and v6 (nodad). Registers the names
# <node>.lab.test for the lab DNS.
lab_link() {
  local link=$1 left=$2 right=$3 node side fam
  ip link add "e$link" netns "$(lab_ns "$left")" type veth peer name "e$link" netns "$(lab_ns "$right")"
  for side in 1 2; do
    if [[ $side == 1 ]]; then node=$left; else node=$right; fi
    lab_exec "$node" ip addr add "$(lab_addr "$link" "$side" 4)/30" dev "e$link"
    lab_exec "$node" ip -6 addr add "$(lab_addr "$link" "$side" 6)/126" dev "e$link" nodad
    lab_exec "$node" ip link set "e$link" up
    for fam in 4 6; do LAB_NAME_OF[$(lab_addr "$link" "$side" "$fam")]="$node.lab.test"; done
  done
}

# Why: route one link's subnet (v4 and v6) from NODE via one or more next hops, each given
# as LINK:SIDE (the neighbour's address on a link NODE is on). Two or more next hops make
# an equal-cost multipath route.
# Usage: lab_route NODE DEST_LINK NH_LINK:NH_SIDE [NH_LINK:NH_SIDE ...]
lab_route() {
  local node=$1 dest=$2
  shift 2
  lab_route_prefix "$node" "$(lab_prefix "$dest" 4)" "$(lab_prefix "$dest" 6)" "$@"
}

# Why: like lab_route, for any pair of v4/v6 prefixes (e.g. the whole lab range on a host).
# Usage: lab_route_prefix NODE PREFIX4 PREFIX6 NH_LINK:NH_SIDE [...]
lab_route_prefix() {
  local node=$1 p4=$2 p6=$3 fam nh prefix args
  shift 3
  for fam in 4 6; do
    if [[ $fam == 4 ]]; then prefix=$p4; else prefix=$p6; fi
    args=()
    if (($# == 1)); then
      args=(via "$(lab_addr "${1%%:*}" "${1##*:}" "$fam")" dev "e${1%%:*}")
    else
      for nh in "$@"; do
        args+=(nexthop via "$(lab_addr "${nh%%:*}" "${nh##*:}" "$fam")" dev "e${nh%%:*}")
      done
    fi
    lab_exec "$node" ip "-$fam" route replace "$prefix" "${args[@]}"
  done
}

# Why: end hosts send everything for the lab ranges (and nothing else) to their router.
# Usage: lab_route_host NODE NH_LINK:NH_SIDE
lab_route_host() { lab_route_prefix "$1" 198.18.0.0/15 2001:db8::/32 "$2"; }

# Why: L4 (5-tuple) multipath hashing so that flows with different ports can take
# different equal-cost paths (the default hashes addresses only).
lab_multipath_l4() {
  lab_sysctl "$1" net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1
}

# Why: a chain of nodes joined by consecutive links FIRST_LINK, FIRST_LINK+1, ...; routers
# get a route to every link of the chain, end hosts route the lab ranges to their neighbour.
# Usage: lab_chain FIRST_LINK NODE0 NODE1 ... (nodes must exist; ends are the hosts)
lab_chain() {
  local first=$1
  shift
  local nodes=("$@") n=$# i j link
  for ((i = 1; i < n; i++)); do lab_link $((first + i - 1)) "${nodes[i - 1]}" "${nodes[i]}"; done
  lab_route_host "${nodes[0]}" "$first:2"
  lab_route_host "${nodes[n - 1]}" "$((first + n - 2)):1"
  for ((i = 1; i < n - 1; i++)); do
    # Node i sits between link first+i-1 (left) and link first+i (right).
    for ((j = 1; j < n; j++)); do
      link=$((first + j - 1))
      if ((j > i + 1)); then
        lab_route "${nodes[i]}" "$link" "$((first + i)):2"
      elif ((j < i)); then
        lab_route "${nodes[i]}" "$link" "$((first + i - 1)):1"
      fi
    done
  done
}

# Why: the standard linear lab, src - r1 - r2 - r3 - dst, links 1..4.
# Sets LAB_SRC LAB_DST LAB_SRC4 LAB_SRC6 LAB_DST4 LAB_DST6 and the expected per-TTL
# responders LAB_PATH4 / LAB_PATH6 (arrays, index 0 = TTL 1).
lab_build_linear() {
  local n
  lab_add_node src host
  for n in r1 r2 r3; do lab_add_node "$n" router; done
  lab_add_node dst host
  lab_chain 1 src r1 r2 r3 dst
  LAB_SRC=src LAB_DST=dst
  LAB_SRC4=198.18.1.1 LAB_SRC6=2001:db8:1::1
  LAB_DST4=198.18.4.2 LAB_DST6=2001:db8:4::2
  LAB_PATH4=(198.18.1.2 198.18.2.2 198.18.3.2 198.18.4.2)
  LAB_PATH6=(2001:db8:1::2 2001:db8:2::2 2001:db8:3::2 2001:db8:4::2)
  lab_wait_reachable "$LAB_SRC" "$LAB_DST4" "$LAB_DST6"
}

# Why: one wiring for two variants: two parallel routers between r1 and r3.
#   ecmp: src -1- r1 -{2- r2a -3 | 5- r2b -6}- r3 -4- dst, equal-cost both ways, L4 hashing.
#         Sets LAB_SRC LAB_DST LAB_DST4 LAB_DST6, LAB_ECMP_TTL=2 and LAB_ECMP4/LAB_ECMP6
#         (the two responders at that TTL), LAB_PATH4/6 for TTL 1 and the destination.
#   asym: a -1- r1 -{2- r2f -3 | 5- r2r -6}- r3 -4- b; r1 sends toward b via r2f, r3 sends
#         toward a via r2r. Sets LAB_A LAB_B LAB_A4 LAB_A6 LAB_B4 LAB_B6 and the expected
#         responders LAB_FWD4/LAB_FWD6 (a->b) and LAB_REV4/LAB_REV6 (b->a).
# Checked with mtr on kernel 6.18: IPv6 routers answer from the inbound interface too, so
# the v6 paths mirror the v4 ones (r1 answers b's probes from 2001:db8:5::1).
lab_build_diamond() {
  local mode=$1 left right up low n
  case $mode in
    ecmp) left=src right=dst up=r2a low=r2b ;;
    asym) left=a right=b up=r2f low=r2r ;;
    *) lab_fail "lab_build_diamond: mode must be ecmp or asym, not '$mode'" ;;
  esac
  lab_add_node "$left" host
  for n in r1 "$up" "$low" r3; do lab_add_node "$n" router; done
  lab_add_node "$right" host
  lab_link 1 "$left" r1
  lab_link 2 r1 "$up"
  lab_link 3 "$up" r3
  lab_link 4 r3 "$right"
  lab_link 5 r1 "$low"
  lab_link 6 "$low" r3
  lab_route_host "$left" 1:2
  lab_route_host "$right" 4:1
  # The parallel routers know both ends directly.
  lab_route "$up" 1 2:1
  lab_route "$up" 4 3:2
  lab_route "$up" 5 2:1
  lab_route "$up" 6 3:2
  lab_route "$low" 1 5:1
  lab_route "$low" 4 6:2
  lab_route "$low" 2 5:1
  lab_route "$low" 3 6:2
  # r1 and r3 reach the far router's links over the router that owns them.
  lab_route r1 3 2:2
  lab_route r1 6 5:2
  lab_route r3 2 3:1
  lab_route r3 5 6:1
  if [[ $mode == ecmp ]]; then
    for n in r1 "$up" "$low" r3; do lab_multipath_l4 "$n"; done
    lab_route r1 4 2:2 5:2
    lab_route r3 1 3:1 6:1
    LAB_SRC=$left LAB_DST=$right
    LAB_SRC4=198.18.1.1 LAB_SRC6=2001:db8:1::1
    LAB_DST4=198.18.4.2 LAB_DST6=2001:db8:4::2
    LAB_ECMP_TTL=2
    LAB_ECMP4=(198.18.2.2 198.18.5.2)
    LAB_ECMP6=(2001:db8:2::2 2001:db8:5::2)
    lab_wait_reachable "$LAB_SRC" "$LAB_DST4" "$LAB_DST6"
  else
    lab_route r1 4 2:2
    lab_route r3 1 6:1
    LAB_A=$left LAB_B=$right
    LAB_A4=198.18.1.1 LAB_A6=2001:db8:1::1
    LAB_B4=198.18.4.2 LAB_B6=2001:db8:4::2
    LAB_FWD4=(198.18.1.2 198.18.2.2 198.18.3.2 198.18.4.2)
    LAB_FWD6=(2001:db8:1::2 2001:db8:2::2 2001:db8:3::2 2001:db8:4::2)
    LAB_REV4=(198.18.4.1 198.18.6.1 198.18.5.1 198.18.1.1)
    LAB_REV6=(2001:db8:4::1 2001:db8:6::1 2001:db8:5::1 2001:db8:1::1)
    lab_wait_reachable "$LAB_A" "$LAB_B4" "$LAB_B6"
    lab_wait_reachable "$LAB_B" "$LAB_A4" "$LAB_A6"
  fi
}

# Why: fail early, with a clear message, when the lab does not forward; also fills the
# neighbour caches so the first probes of a test are not the ones that resolve them.
# Usage: lab_wait_reachable NODE ADDR...
lab_wait_reachable() {
  local node=$1 addr try
  shift
  for addr in "$@"; do
    for try in 1 2 3 4 5 6 7 8 9 10; do
      lab_exec "$node" ping -n -q -c 1 -W 1 "$addr" >/dev/null 2>&1 && continue 2
      sleep 0.2
    done
    lab_fail "lab: $addr does not answer ping from $node"
  done
}

# ---------------------------------------------------------------- faults

# Why: all fault rules of a node live in one nftables table (inet: v4 and v6) with one
# chain per hook, created on first use.
lab_nft_chains() {
  local node=$1
  lab_exec "$node" nft -f - <<'EOF'
table inet mdl_fault {
  chain pre  { type filter hook prerouting priority -150; policy accept; }
  chain in   { type filter hook input priority 0; policy accept; }
  chain post { type filter hook postrouting priority 150; policy accept; }
}
EOF
}

# Why: the nft words that select PCT % of packets at random ("numgen ... < 100" is refused:
# numgen's values are 0..99, so 100 % is no match words at all).
lab_nft_share() {
  local pct=$1
  ((pct >= 0 && pct <= 100)) || lab_fail "share must be 0..100 %, not '$pct'"
  ((pct < 100)) && printf '%s\n' numgen random mod 100 '<' "$pct"
  return 0
}

# Why: random loss of PCT % on one link end, one direction: "in" drops packets arriving on
# NODE's interface e<LINK> (forwarded or local), "out" drops packets leaving through it.
# Extra nft match words narrow it (e.g. "meta l4proto icmp").
# Usage: lab_loss NODE LINK in|out PCT [MATCH...]
lab_loss() {
  local node=$1 link=$2 dir=$3 pct=$4 chain match
  shift 4
  lab_nft_chains "$node"
  case $dir in
    in) chain=pre match="iifname \"e$link\"" ;;
    out) chain=post match="oifname \"e$link\"" ;;
    *) lab_fail "lab_loss: direction must be in or out" ;;
  esac
  # shellcheck disable=SC2046 # the share is separate nft words on purpose
  lab_exec "$node" nft add rule inet mdl_fault "$chain" "$match" "$@" $(lab_nft_share "$pct") drop
}

# Why: a destination that itself ignores PCT % of the echo requests addressed to it (v4+v6).
lab_drop_echo() {
  local node=$1 pct=$2
  lab_nft_chains "$node"
  # shellcheck disable=SC2046 # the share is separate nft words on purpose
  lab_exec "$node" nft add rule inet mdl_fault in icmp type echo-request $(lab_nft_share "$pct") drop
  # shellcheck disable=SC2046
  lab_exec "$node" nft add rule inet mdl_fault in icmpv6 type echo-request $(lab_nft_share "$pct") drop
}

# Why: emulate a router that rate-limits its ICMP errors (time exceeded, unreachable):
# at most one per MS milliseconds per destination after a small burst (default 1000 ms).
# Covers ICMPv6 too: net.ipv6.icmp.ratemask (default 0-1,3-127) includes time exceeded
# (checked: 50 probes at 20 ms, hop r2f answers 14 % over v4 and v6 alike).
lab_icmp_ratelimit() {
  local node=$1 ms=${2:-1000}
  lab_sysctl "$node" net.ipv4.icmp_ratelimit="$ms" net.ipv6.icmp.ratelimit="$ms"
}

# Why: undo every fault of a node (table gone, rate limits back to none).
lab_fault_clear() {
  local node=$1
  lab_exec "$node" nft delete table inet mdl_fault 2>/dev/null || true
  lab_sysctl "$node" net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
}

# ---------------------------------------------------------------- DNS

# Why: the PTR name the lab DNS gives an address ("r1.lab.test"), empty when none.
lab_name_of() { printf '%s\n' "${LAB_NAME_OF[$1]:-}"; }

# Why: a resolver for NODE: /etc/netns/<ns>/resolv.conf (ip netns exec bind-mounts it over
# /etc/resolv.conf), plus a hosts file with only localhost so the machine's /etc/hosts does
# not answer for lab addresses.
# Usage: lab_resolver NODE SERVER_ADDR [TIMEOUT_S] [ATTEMPTS]
lab_resolver() {
  local node=$1 server=$2 timeout=${3:-2} attempts=${4:-2} dir
  dir=/etc/netns/$(lab_ns "$node")
  mkdir -p "$dir"
  printf 'nameserver %s\noptions timeout:%s attempts:%s\n' "$server" "$timeout" "$attempts" >"$dir/resolv.conf"
  printf '127.0.0.1 localhost\n::1 localhost\n' >"$dir/hosts"
}

# Why: reverse DNS inside the lab: dnsmasq in SERVER_NODE, listening on LISTEN_ADDR only,
# answering PTR (and A/AAAA) for every lab address from the names lab_link registered.
# Waits until it answers from CLIENT_NODE, whose resolver it becomes.
# Usage: lab_dns_start SERVER_NODE LISTEN_ADDR CLIENT_NODE
lab_dns_start() {
  local server=$1 listen=$2 client=$3 hosts=$LAB_TMP/dns-hosts addr try
  : >"$hosts"
  for addr in "${!LAB_NAME_OF[@]}"; do printf '%s %s\n' "$addr" "${LAB_NAME_OF[$addr]}" >>"$hosts"; done
  lab_bg "$server" "$LAB_TMP/dnsmasq.out" "$LAB_TMP/dnsmasq.err" dnsmasq --keep-in-foreground \
    --conf-file=/dev/null --no-resolv --no-hosts --addn-hosts="$hosts" --listen-address="$listen" \
    --bind-interfaces --port=53 --user=root --group=root --pid-file="$LAB_TMP/dnsmasq.pid" \
    --log-facility="$LAB_TMP/dnsmasq.log" --log-queries
  lab_resolver "$client" "$listen" 1 2
  for try in $(seq 1 50); do
    if [[ $(lab_exec "$client" getent hosts "$listen" 2>/dev/null | awk '{print $2}') == "$(lab_name_of "$listen")" ]]; then
      return 0
    fi
    sleep 0.1
  done
  lab_fail "lab DNS: dnsmasq on $server ($listen) does not answer (see $LAB_TMP/dnsmasq.err)"
}

# Why: a "dead" DNS server: CLIENT_NODE's resolver points at ADDR (an address of
# SERVER_NODE) where every DNS query is silently dropped, so lookups hang until the
# resolver's timeout (TIMEOUT_S x ATTEMPTS; default 3 x 2 = 6 s per lookup).
# Usage: lab_dns_dead SERVER_NODE ADDR CLIENT_NODE [TIMEOUT_S] [ATTEMPTS]
lab_dns_dead() {
  local server=$1 addr=$2 client=$3 daddr=ip
  [[ $addr == *:* ]] && daddr=ip6
  lab_nft_chains "$server"
  lab_exec "$server" nft add rule inet mdl_fault in "$daddr" daddr "$addr" meta l4proto '{ udp, tcp }' th dport 53 drop
  lab_resolver "$client" "$addr" "${4:-3}" "${5:-2}"
}

# ---------------------------------------------------------------- mtr (the oracle)

# Why: run mtr in a node, JSON out (mtr's --json: .report.hubs[] with count=TTL, host,
# "Loss%", "Snt"). Extra arguments are mtr options (-n, -u, -T, -P, -4/-6, -c, -i, -G...).
# Usage: lab_mtr_json NODE OUTFILE TARGET [MTR OPTIONS...]
lab_mtr_json() {
  local node=$1 out=$2 target=$3
  shift 3
  lab_exec "$node" timeout 300 mtr --json "$@" "$target" >"$out" 2>"$out.err"
}

# Why: run mtr --report --report-wide (the layout that lists every responder of a hop).
# Usage: lab_mtr_report NODE OUTFILE TARGET [MTR OPTIONS...]
lab_mtr_report() {
  local node=$1 out=$2 target=$3
  shift 3
  lab_exec "$node" timeout 300 mtr --report --report-wide "$@" "$target" >"$out" 2>"$out.err"
}

# Why: "TTL IP" per responding hop from mtr JSON (unanswered hops "???" are left out).
lab_mtr_hops() { jq -r '.report.hubs[] | select(.host != "???") | "\(.count) \(.host)"' "$1"; }

# Why: one hop's loss % from mtr JSON (empty when mtr listed no such hop).
# Usage: lab_mtr_loss FILE TTL
lab_mtr_loss() { jq -r --argjson t "$2" '.report.hubs[] | select(.count == $t) | .["Loss%"]' "$1"; }

# Why: the probes mtr sent, summed over hops (JSON "Snt").
lab_mtr_sent() { jq '[.report.hubs[].Snt] | add // 0' "$1"; }

# Why: "TTL HOST" for every responder in mtr's --report layout, including the extra
# responders of a hop that mtr prints on their own "|--"-less lines under the hop.
lab_mtr_report_hosts() {
  awk '
    /^ *[0-9]+\.\|--/ { split($1, a, "."); ttl = a[1]; h = $2; if (h != "???") print ttl, h; next }
    ttl != "" && NF == 1 && $1 !~ /^(HOST|Start)/ { print ttl, $1; next }
    ttl != "" && /`\|-- / { print ttl, $NF }' "$1" | sort -u -k1,1n -k2
}

# Why: the probes mtr sent, summed over hops, from the --report layout (the Snt column).
lab_mtr_report_sent() {
  awk '/^ *[0-9]+\.\|--/ { s += $4 } END { print s + 0 }' "$1"
}

# ---------------------------------------------------------------- mtr-agent

# Why: where the agent under test is ($MD_BIN from ctest, else the source tree's build/).
lab_agent_bin() {
  local bin=${MD_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}/agent/mtr-agent
  printf '%s\n' "$bin"
}

# Why: the agent is written in parallel with these tests; a binary whose `trace` command
# does not exist yet makes the agent side of a test a skip, not a failure. "Supported"
# means `mtr-agent trace --help` exits 0 or documents --json.
lab_agent_has_trace() {
  local bin out rc=0
  bin=$(lab_agent_bin)
  [[ -x $bin ]] || return 1
  out=$(timeout 10 "$bin" trace --help 2>&1) || rc=$?
  ((rc == 0)) || grep -q -- '--json' <<<"$out"
}

# Why: one call for tests: exit 77 with the reason when the agent cannot trace yet.
lab_require_agent_trace() {
  lab_agent_has_trace || lab_skip "$(lab_agent_bin) has no working 'trace' command yet"
}

# Why: run `mtr-agent trace` in a node; stdout and stderr to files (stderr in OUTFILE.err).
# Usage: lab_agent_trace NODE OUTFILE TARGET [AGENT OPTIONS...]
lab_agent_trace() {
  local node=$1 out=$2 target=$3
  shift 3
  lab_exec "$node" timeout 300 "$(lab_agent_bin)" trace "$target" "$@" >"$out" 2>"$out.err"
}

# Why: "TTL IP" for every responder in the agent's JSON PATH object (CONTRACT.md: .hops[]).
lab_agent_hops() { jq -r '.hops[] | .ttl as $t | .hosts[] | "\($t) \(.ip)"' "$1"; }

# Why: one hop's loss % from the agent's JSON (empty when the agent listed no such hop).
# Usage: lab_agent_loss FILE TTL
lab_agent_loss() { jq -r --argjson t "$2" '.hops[] | select(.ttl == $t) | .loss_pct' "$1"; }

# Why: how many different responders the agent saw at one TTL.
# Usage: lab_agent_nhosts FILE TTL
lab_agent_nhosts() { jq -r --argjson t "$2" '[.hops[] | select(.ttl == $t) | .hosts[]] | length' "$1"; }

# Why: the probes the agent sent, summed over hops (.hops[].sent).
lab_agent_sent() { jq '[.hops[].sent] | add // 0' "$1"; }

# ---------------------------------------------------------------- assertions on paths

# Why: the expected "TTL IP" lines for a path given as addresses, TTL 1 first.
lab_path_lines() {
  local i=1 a
  for a in "$@"; do
    printf '%d %s\n' "$i" "$a"
    i=$((i + 1))
  done
}

# Why: compare two "TTL IP" listings (order-insensitive) and fail with both on mismatch.
# Usage: lab_assert_same_hops WHAT "$(got)" "$(expected)"
lab_assert_same_hops() {
  local what=$1 a b
  a=$(sort -k1,1n -k2 <<<"$2")
  b=$(sort -k1,1n -k2 <<<"$3")
  if [[ $a != "$b" ]]; then
    printf '%s\n--- expected\n%s\n--- got\n%s\n' "$what" "$b" "$a" >&2
    lab_fail "$what: hop addresses differ"
  fi
}

# ---------------------------------------------------------------- background runs

# Why: tests start mtr and the agent at the same moment in the background; this waits for
# one of them and fails with its stderr when it did not exit 0.
# Usage: lab_wait PID WHAT ERRFILE
lab_wait() {
  local pid=$1 what=$2 err=$3 rc=0
  wait "$pid" || rc=$?
  if ((rc != 0)); then
    sed 's/^/    /' "$err" >&2 2>/dev/null || true
    lab_fail "$what exited with status $rc"
  fi
}

# ---------------------------------------------------------------- delay (md-delay over NFQUEUE)

# Why: this kernel has no netem; latency comes from tests/lab/md_delay.c (target md-delay),
# which holds packets sent to an NFQUEUE before accepting them. Found like the agent.
lab_delay_bin() {
  local bin=${MD_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}/tests/md-delay
  printf '%s\n' "$bin"
}

# Why: a test that injects delay needs the program built and iptables (NFQUEUE target via
# nft compat: nft's own "queue" statement is not in this kernel); skip (77) otherwise.
lab_require_delay() {
  lab_require iptables ip6tables
  [[ -x $(lab_delay_bin) ]] || lab_skip "$(lab_delay_bin) is not built (cmake target md-delay)"
}

# Why: the iptables words of one delay: "in" takes packets arriving on NODE's e<LINK>
# (mangle PREROUTING: forwarded and local), "out" packets leaving through it (mangle
# POSTROUTING: forwarded and locally generated), as lab_loss does.
# --queue-bypass: while no md-delay is bound to the queue, packets pass undelayed (never
# dropped), so a crashed or stopped program cannot cut the lab off.
# Usage: lab_delay_rule LINK in|out QUEUE -> prints "CHAIN -i|-o IFACE QUEUE"
lab_delay_rule() {
  case $2 in
    in) printf 'PREROUTING -i e%s %s\n' "$1" "$3" ;;
    out) printf 'POSTROUTING -o e%s %s\n' "$1" "$3" ;;
    *) lab_fail "lab_delay: direction must be in or out, not '$2'" ;;
  esac
}

# Why: latency on one link end, one direction, v4 and v6: every packet of that direction is
# held MS ms (uniform in MS-JITTER..MS+JITTER with JITTER_MS) by an md-delay process in
# NODE; the rules are added only once it is bound. Several delays may run at once (one
# queue each). At most LAB_DELAY_MAX_HELD packets (default 4096) are held at a time, more
# are dropped. The process is a lab_bg process (cleanup kills it; it also dies with the
# test's shell) and the namespace's end removes the rules; lab_delay_clear undoes one early.
# Usage: lab_delay NODE LINK in|out MS [JITTER_MS]
lab_delay() {
  local node=$1 link=$2 dir=$3 ms=$4 jitter=${5:-0} key rule q err try ipt chain ifopt ifname
  key="$node:$link:$dir"
  declare -gA LAB_DELAY_PID LAB_DELAY_RULE LAB_DELAY_ERR
  [[ -z ${LAB_DELAY_PID[$key]:-} ]] || lab_fail "lab_delay: $key is already delayed (lab_delay_clear first)"
  q=${LAB_DELAY_NEXT_Q:-0}
  LAB_DELAY_NEXT_Q=$((q + 1))
  rule=$(lab_delay_rule "$link" "$dir" "$q")
  err=$LAB_TMP/md-delay.$node.e$link.$dir.$q.err
  lab_bg "$node" /dev/null "$err" "$(lab_delay_bin)" --queue "$q" --delay-ms "$ms" \
    --jitter-ms "$jitter" --max-held "${LAB_DELAY_MAX_HELD:-4096}"
  LAB_DELAY_PID[$key]=$LAB_LAST_PID
  LAB_DELAY_RULE[$key]=$rule
  LAB_DELAY_ERR[$key]=$err
  for try in $(seq 1 100); do
    grep -q "queue $q ready" "$err" 2>/dev/null && break
    if ! kill -0 "$LAB_LAST_PID" 2>/dev/null || ((try == 100)); then
      sed 's/^/    /' "$err" >&2 2>/dev/null || true
      lab_fail "lab_delay: md-delay for $key did not start"
    fi
    sleep 0.05
  done
  read -r chain ifopt ifname q <<<"$rule"
  for ipt in iptables ip6tables; do
    lab_exec "$node" "$ipt" -w -t mangle -A "$chain" "$ifopt" "$ifname" \
      -j NFQUEUE --queue-num "$q" --queue-bypass
  done
  lab_log "delay $ms ms (jitter $jitter) on $node e$link $dir (queue $q, pid $LAB_LAST_PID)"
}

# Why: how many packets (FAMILY 4 or 6) the rule of one delay has sent to md-delay so far:
# proves which direction is delayed (e.g. only the echo requests of a ping).
# Usage: lab_delay_packets NODE LINK in|out FAMILY
lab_delay_packets() {
  local node=$1 key="$1:$2:$3" ipt=iptables chain ifopt ifname q
  [[ $4 == 6 ]] && ipt=ip6tables
  [[ -n ${LAB_DELAY_RULE[$key]:-} ]] || lab_fail "lab_delay_packets: no delay on $key"
  read -r chain ifopt ifname q <<<"${LAB_DELAY_RULE[$key]}"
  lab_exec "$node" "$ipt" -w -t mangle -nvxL "$chain" |
    awk -v q="num $q" '$3 == "NFQUEUE" && index($0, q " ") { n += $1 } END { print n + 0 }'
}

# Why: undo one delay: rules first (packets pass again), then SIGTERM to md-delay, which
# accepts what it still holds and exits. Fails when it did not exit 0 (an ASan/UBSan build
# reports errors that way). Sets LAB_DELAY_SUMMARY (its summary line) and LAB_DELAY_DELAYED,
# LAB_DELAY_DROPPED (its counters).
# Usage: lab_delay_clear NODE LINK in|out
lab_delay_clear() {
  local node=$1 key="$1:$2:$3" pid err ipt chain ifopt ifname q rc=0 i
  pid=${LAB_DELAY_PID[$key]:-}
  [[ -n $pid ]] || lab_fail "lab_delay_clear: no delay on $key"
  err=${LAB_DELAY_ERR[$key]}
  read -r chain ifopt ifname q <<<"${LAB_DELAY_RULE[$key]}"
  for ipt in iptables ip6tables; do
    lab_exec "$node" "$ipt" -w -t mangle -D "$chain" "$ifopt" "$ifname" \
      -j NFQUEUE --queue-num "$q" --queue-bypass
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  for i in "${!LAB_PIDS[@]}"; do [[ ${LAB_PIDS[i]} == "$pid" ]] && unset 'LAB_PIDS[i]'; done
  LAB_PIDS=("${LAB_PIDS[@]}")
  unset 'LAB_DELAY_PID[$key]' 'LAB_DELAY_RULE[$key]' 'LAB_DELAY_ERR[$key]'
  LAB_DELAY_SUMMARY=$(grep -E '^md-delay: queue [0-9]+: ' "$err" | tail -n 1)
  if ((rc != 0)) || [[ -z $LAB_DELAY_SUMMARY ]] || grep -qE 'Sanitizer|runtime error' "$err"; then
    sed 's/^/    /' "$err" >&2
    lab_fail "lab_delay_clear: md-delay for $key exited with status $rc"
  fi
  LAB_DELAY_DELAYED=$(sed -E 's/.* ([0-9]+) delayed.*/\1/' <<<"$LAB_DELAY_SUMMARY")
  LAB_DELAY_DROPPED=$(sed -E 's/.* ([0-9]+) dropped.*/\1/' <<<"$LAB_DELAY_SUMMARY")
  lab_log "delay on $key removed: ${LAB_DELAY_SUMMARY#md-delay: }"
}

# ---------------------------------------------------------------- two agents (diagnose)

# Why: the deployment every diagnose scenario needs, made the way an operator makes it:
# a CA and certificates from `mtrctl pki`, one `mtr-agent --config` on host A ("local")
# and one on host B ("cvm") of the asymmetric lab, and a controller configuration in
# $LAB_CTL_CONFIG naming both. Call after lab_build_diamond asym.
# Sets LAB_CTL_CONFIG, LAB_PKI, LAB_AGENT_PID_A, LAB_AGENT_PID_B.
# LAB_AGENT_POLICY_EXTRA: more policy lines (indented two spaces), e.g. "  max_concurrent_runs: 32";
# LAB_AGENT_PPS: max_probes_per_second (default 2000).
# LAB_CTL_V6_NAMES=1: the controller configuration also names "local6" and "cvm6", the same two
# agents (same control address and certificate name) with their IPv6 addresses as
# probe_address, for `mtrctl diagnose local6 cvm6 -6` (off by default: `mtrctl agents` with no
# names would greet every agent twice).
# Usage: lab_agents_up [FAMILY 4|6]
lab_agents_up() {
  local fam=${1:-4} ctl=$MD_BIN/controller/mtrctl agent=$MD_BIN/agent/mtr-agent
  local a_addr=$LAB_A4 b_addr=$LAB_B4 a_listen b_listen node name addr peer log
  [[ $fam == 6 ]] && { a_addr=$LAB_A6; b_addr=$LAB_B6; }
  LAB_PKI=$LAB_TMP/pki
  "$ctl" pki init --dir "$LAB_PKI" >/dev/null
  "$ctl" pki issue --dir "$LAB_PKI" --name local --role agent --san "$LAB_A4" --san "$LAB_A6" >/dev/null
  "$ctl" pki issue --dir "$LAB_PKI" --name cvm --role agent --san "$LAB_B4" --san "$LAB_B6" >/dev/null
  "$ctl" pki issue --dir "$LAB_PKI" --name ops --role controller >/dev/null
  a_listen=$LAB_A4:7447 b_listen=$LAB_B4:7447
  [[ $fam == 6 ]] && { a_listen="[$LAB_A6]:7447"; b_listen="[$LAB_B6]:7447"; }
  for node in a b; do
    if [[ $node == a ]]; then name=local addr=$a_listen peer=$b_addr; else name=cvm addr=$b_listen peer=$a_addr; fi
    cat >"$LAB_TMP/$name.yaml" <<EOT
name: $name
listen: ["$addr"]
tls: { cert: $LAB_PKI/$name.crt, key: $LAB_PKI/$name.key, ca: $LAB_PKI/ca.crt, allowed_controllers: [ops] }
policy:
  allow_targets: ["198.18.0.0/15", "2001:db8::/32"]
  max_probes_per_second: ${LAB_AGENT_PPS:-2000}
  min_interval: 0.01
${LAB_AGENT_POLICY_EXTRA:-}
EOT
    log=$LAB_TMP/agent-$name.err
    lab_bg "$node" "$LAB_TMP/agent-$name.out" "$log" "$agent" --config "$LAB_TMP/$name.yaml"
    if [[ $node == a ]]; then LAB_AGENT_PID_A=$LAB_LAST_PID; else LAB_AGENT_PID_B=$LAB_LAST_PID; fi
    local i
    for ((i = 0; i < 100; i++)); do
      grep -q 'listening on' "$log" 2>/dev/null && break
      sleep 0.05
    done
    grep -q 'listening on' "$log" || lab_fail "agent $name does not listen: $(cat "$log")"
  done
  LAB_CTL_CONFIG=$LAB_TMP/mtrctl.yaml
  cat >"$LAB_CTL_CONFIG" <<EOT
tls: { cert: $LAB_PKI/ops.crt, key: $LAB_PKI/ops.key, ca: $LAB_PKI/ca.crt }
history: $LAB_TMP/history.db
agents:
  local: { address: "$a_listen" }
  cvm:   { address: "$b_listen" }
EOT
  if [[ ${LAB_CTL_V6_NAMES:-0} == 1 ]]; then
    cat >>"$LAB_CTL_CONFIG" <<EOT
  local6: { address: "$a_listen", probe_address: "$LAB_A6", tls_name: local }
  cvm6:   { address: "$b_listen", probe_address: "$LAB_B6", tls_name: cvm }
EOT
  fi
  echo 'defaults: { protocol: icmp, cycles: 10, interval: 1.0 }' >>"$LAB_CTL_CONFIG"
}

# Why: one localisation scenario (test_localise*.sh): set a fault up, run the caller's
# diagnose command (the array DIAG, e.g. (diagnose local cvm -c 100 -i 0.02)) REPEAT times
# (default 2) with --format json, check the jq expression EXPR on every report, clear the fault.
# Usage: lab_scenario NAME SETUP CLEAR EXPR [more diagnose arguments...]
lab_scenario() {
  local name=$1 setup=$2 clear=$3 expr=$4 i J
  shift 4
  eval "$setup"
  for ((i = 1; i <= ${REPEAT:-2}; i++)); do
    lab_mtrctl "$LAB_TMP/$name.$i" "${DIAG[@]}" --format json "$@"
    J=$LAB_TMP/$name.$i.out
    jq -e .schema "$J" >/dev/null 2>&1 || lab_fail "$name: no report (exit $RC): $(cat "$LAB_TMP/$name.$i.err")"
    jq -e "$expr" "$J" >/dev/null || {
      jq -c '{status: .diagnosis.status, suspect: .diagnosis.suspect, one_way: .one_way,
              followup: .followup}' "$J" >&2
      lab_fail "$name (run $i): expected $expr"
    }
  done
  eval "$clear"
  lab_log "ok: $name (${REPEAT:-2} runs): $(jq -c '.diagnosis.suspect | if . == null then "no suspect"
    else "\(.kind) \(.path) \(.from_ip) -> \(.to_ip) (\(.confidence))" end' "$J")"
}

# Why: the jq test that the report's suspect is KIND on PATH, link FROM -> TO.
lab_suspect() { # KIND PATH FROM TO
  printf '.diagnosis.suspect.kind == "%s" and .diagnosis.suspect.path == "%s" and .diagnosis.suspect.from_ip == "%s" and .diagnosis.suspect.to_ip == "%s"' "$@"
}

# Why: run mtrctl in the controller's place: host A's namespace by default (it reaches both
# agents), or the out-of-band controller node after lab_controller_oob.
# Sets RC. Usage: lab_mtrctl OUT_PREFIX ARGS...   (stdout OUT_PREFIX.out, stderr OUT_PREFIX.err)
lab_mtrctl() {
  local out=$1
  shift
  RC=0
  lab_exec "${LAB_CTL_NODE:-$LAB_A}" "$MD_BIN/controller/mtrctl" --config "$LAB_CTL_CONFIG" "$@" \
    >"$out.out" 2>"$out.err" || RC=$?
}

# Why: faults on A's access link also hit a controller that runs on A (its TLS sessions and
# clock sync cross that link). An operator's controller usually sits elsewhere: this adds a
# node "ctl" with its own links to a (link 20) and b (link 21) and makes lab_mtrctl run there.
# Call after lab_agents_up.
lab_controller_oob() {
  lab_add_node ctl host
  lab_link 20 ctl "$LAB_A"
  lab_link 21 ctl "$LAB_B"
  lab_exec ctl ip route add "$LAB_A4/32" via "$(lab_addr 20 2)" dev e20
  lab_exec ctl ip route add "$LAB_B4/32" via "$(lab_addr 21 2)" dev e21
  lab_exec ctl ip -6 route add "$LAB_A6/128" via "$(lab_addr 20 2 6)" dev e20
  lab_exec ctl ip -6 route add "$LAB_B6/128" via "$(lab_addr 21 2 6)" dev e21
  lab_wait_reachable ctl "$LAB_A4" "$LAB_B4"
  LAB_CTL_NODE=ctl
}

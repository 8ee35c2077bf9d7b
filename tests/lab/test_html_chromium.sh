#!/usr/bin/env bash
# test_html_chromium.sh: report.html in a real browser (headless Chromium).
# For each report fixture in tests/data/report (asymmetric with a suspect,
# forward only, errors with hostile hostnames), md-render writes the HTML
# page, then Chromium loads it:
#  1. the page asks for nothing outside itself (no src=/href=/url(http) in
#     the file, a Content-Security-Policy of default-src 'none');
#  2. Chromium logs no console message at all (no script error, no CSP
#     violation) while loading it;
#  3. the DOM Chromium built has the SVG with one node per hop of both
#     paths (+ the legend), both path sections, and no element made from
#     the report's text (a hostname "<script>" stays text);
#  4. a screenshot is taken (kept in $MD_HTML_SHOTS when set, to look at).
# No network, no root: it only needs the build (md-render) and Chromium
# (Debian: chromium; jq for the hop counts). Exit 77 when Chromium is missing.
set -euo pipefail
src=${MD_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
bin=${MD_BIN:-$src/build}
render=$bin/tests/md-render

log() { printf '[html %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() {
  log "FAIL: $*"
  exit 1
}

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  log "skip: Chromium is not installed (Debian: apt-get install chromium)"
  exit 77
fi
command -v jq >/dev/null || {
  log "skip: jq is not installed"
  exit 77
}
[ -x "$render" ] || fail "$render not built"

tmp=$(mktemp -d /tmp/md-html-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# Why: a browser that cannot reach anything and leaves nothing behind.
chrome() {
  timeout 90 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-extensions --user-data-dir="$tmp/profile" --enable-logging=stderr --v=0 \
    --hide-scrollbars "$@"
}

# Why: Chromium logs every console message as "...:CONSOLE:<line>] ..." on stderr with
# --enable-logging=stderr; a clean page logs none.
check_console() { # name, stderr file
  if grep -q ':CONSOLE' "$2"; then
    grep ':CONSOLE' "$2" >&2
    fail "$1: console messages while loading the page"
  fi
}

n_ok=0
for fixture in "$src"/tests/data/report/*.json; do
  name=$(basename "$fixture" .json)
  html=$tmp/$name.html
  "$render" "$fixture" html "$html" || fail "$name: md-render failed"

  # 1. self-contained: nothing to fetch
  if grep -nE '<[a-zA-Z][^>]*[[:space:]](src|href|srcset|action|poster|xlink:href)=' "$html" >&2 ||
    sed -n '/<style>/,/<\/style>/p' "$html" | grep -nE 'url\([^#)]|@import' >&2; then
    fail "$name: the page refers to an external resource"
  fi
  grep -q "http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'" "$html" ||
    fail "$name: no Content-Security-Policy"

  # 2 + 3. the DOM Chromium builds, and what it logged
  chrome --dump-dom "file://$html" >"$tmp/$name.dom" 2>"$tmp/$name.log" ||
    fail "$name: chromium --dump-dom failed: $(tail -5 "$tmp/$name.log")"
  check_console "$name" "$tmp/$name.log"
  dom=$tmp/$name.dom
  grep -q '<svg' "$dom" || fail "$name: no <svg> in the DOM"
  grep -q '</svg>' "$dom" || fail "$name: the SVG is not closed in the DOM"
  grep -q '<section id="forward">' "$dom" || fail "$name: no forward path section"
  grep -q '<section id="reverse">' "$dom" || fail "$name: no reverse path section"
  if grep -qiE '<(script|img|iframe|object|embed|b)[ >]' "$dom"; then
    fail "$name: an element was made from the report's text"
  fi
  want=$(jq '(.forward.hops // [] | length) + (.reverse.hops // [] | length) + 5' "$fixture")
  got=$(grep -o '<g class="hop ' "$dom" | wc -l)
  [ "$got" -eq "$want" ] || fail "$name: $got hop nodes in the drawing, want $want"
  id=$(jq -r .id "$fixture")
  grep -q "$id" "$dom" || fail "$name: the report id is not on the page"
  if jq -e '.diagnosis.suspect != null' "$fixture" >/dev/null; then
    grep -q 'class="suspect"' "$dom" || fail "$name: the suspect link is not drawn"
  fi
  if jq -e '.reverse == null' "$fixture" >/dev/null; then
    grep -q 'reverse path not measured' "$dom" || fail "$name: the missing reverse path is not said"
  fi

  # 4. a picture, for people
  chrome --window-size=1100,2200 --screenshot="$tmp/$name.png" "file://$html" \
    >/dev/null 2>"$tmp/$name.shot.log" || fail "$name: chromium --screenshot failed"
  check_console "$name (screenshot)" "$tmp/$name.shot.log"
  [ -s "$tmp/$name.png" ] || fail "$name: empty screenshot"
  [ "$(head -c 8 "$tmp/$name.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "$name: the screenshot is not a PNG"
  if [ -n "${MD_HTML_SHOTS:-}" ]; then
    mkdir -p "$MD_HTML_SHOTS"
    cp "$tmp/$name.png" "$tmp/$name.html" "$MD_HTML_SHOTS/"
  fi
  log "ok: $name ($got hop nodes, no console messages)"
  n_ok=$((n_ok + 1))
done
[ "$n_ok" -ge 3 ] || fail "only $n_ok report fixtures found in $src/tests/data/report"
log "all $n_ok pages render cleanly"

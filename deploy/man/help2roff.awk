# help2roff.awk: turns one --help text of mtrdiag's programs into man(7) roff.
#
# Used by gen-man.sh; the help texts are the one source of the man pages, so this reads the
# dialect they are written in (agent/main.c, agent/trace_cmd.c, controller/*.c):
#   usage: PROG ...            the usage block (with indented continuation lines)
#   word words:                a header ("commands:", "global options:", "examples:")
#   exit status: TEXT          an inline header (a label, then text)
#   example: CMD / examples:   an example block (the indented lines after it, verbatim)
#     TERM   DESCRIPTION       a definition (TERM indented 1-6, two or more spaces, text);
#                              deeper-indented lines continue DESCRIPTION; a TERM alone on
#                              its line takes the deeper-indented lines below as DESCRIPTION
#   anything else              prose, filled into paragraphs (a blank line ends one)
#
# Variables (awk -v):
#   level=1  a whole page: the usage block goes to SYNOPSIS, prose outside any header to
#            DESCRIPTION, definitions outside any header to OPTIONS, each header is a .SH;
#            the page is printed in that order (NAME and what follows the help are the
#            caller's). $HELP2ROFF_DESC is extra DESCRIPTION prose put first (roff, from the
#            environment since awk -v would read its backslashes).
#            part=examples prints only the EXAMPLES section (the caller puts it last).
#   level=2  one subcommand inside a page: everything in the order of the help text,
#            headers as bold labels.

# Why: roff reads backslashes, leading dots/quotes and hyphens specially; every piece of
# help text goes through here (hyphens become \- so options copy and paste as typed).
function esc(s) {
  gsub(/\\/, "\\e", s)
  gsub(/-/, "\\-", s)
  if (s ~ /^[.']/) s = "\\&" s
  return s
}

# Why: a definition's term reads as in other man pages: options and commands bold,
# metavariables (FILE, N, IP_OR_DNS) italic, the rest (brackets, "|", "/") roman.
function term(s, first,   n, i, w, out, pre, core, post, words) {
  n = split(s, words, / /)
  out = ""
  for (i = 1; i <= n; i++) {
    w = words[i]
    pre = ""; post = ""
    while (w ~ /^[\[(]/) { pre = pre substr(w, 1, 1); w = substr(w, 2) }
    while (w ~ /([\]),]|\.\.\.)$/) {
      if (w ~ /\.\.\.$/) { post = "..." post; w = substr(w, 1, length(w) - 3) }
      else { post = substr(w, length(w), 1) post; w = substr(w, 1, length(w) - 1) }
    }
    if (w ~ /^-/ || (i == 1 && first && w ~ /^[a-z][a-z0-9-]*$/)) core = "\\fB" esc(w) "\\fR"
    else if (w ~ /^[A-Z][A-Z0-9_]*$/) core = "\\fI" esc(w) "\\fR"
    else core = esc(w)
    out = out (i > 1 ? " " : "") esc(pre) core esc(post)
  }
  return out
}

function indent_of(s) { match(s, /^ */); return RLENGTH }

# Why: where output goes: level 1 collects into sections printed in the man page's order.
function emit(s) {
  if (level == 2) { print s; return }
  if (!(sect in body)) { order[++nsect] = sect; body[sect] = "" }
  body[sect] = body[sect] s "\n"
}

function end_para() { in_para = 0 }

function header(label,   u) {
  end_para()
  implicit = 0
  if (level == 1) {
    u = toupper(label)
    if (u == "GLOBAL OPTIONS" || u == "OPTIONS") u = "OPTIONS"
    if (u == "EXAMPLE") u = "EXAMPLES"
    sect = u
  } else {
    emit(".PP")
    emit("\\fB" esc(toupper(substr(label, 1, 1)) substr(label, 2)) ":\\fR")
  }
}

function example_start(label) {
  end_para()
  if (level == 1) { sect = "EXAMPLES" }
  else { emit(".PP"); emit("\\fB" esc(toupper(substr(label, 1, 1)) substr(label, 2)) ":\\fR") }
  emit(".PP"); emit(".RS 4"); emit(".nf")
}
function example_end() { emit(".fi"); emit(".RE") }

{ line[++nl] = $0 }

END {
  nsect = 0
  desc = ENVIRON["HELP2ROFF_DESC"]
  sect = "SYNOPSIS"
  if (level == 1 && desc != "") { sect = "DESCRIPTION"; emit(desc); sect = "SYNOPSIS" }
  in_para = 0
  i = 1
  while (i <= nl) {
    l = line[i]
    sub(/[ \t]+$/, "", l)
    if (l == "") { end_para(); i++; continue }
    ind = indent_of(l)

    # usage block: "usage: " and every following indented line, kept as typed
    if (l ~ /^usage: /) {
      end_para()
      if (level == 1) sect = "SYNOPSIS"
      else { emit(".PP") }
      emit(".nf")
      emit("\\fB" esc(substr(l, 8)) "\\fR")
      i++
      while (i <= nl && line[i] ~ /^       [^ ]/) { emit("\\fB" esc(substr(line[i], 8)) "\\fR"); i++ }
      while (i <= nl && line[i] ~ /^        +[^ ]/) { emit(esc(substr(line[i], 8))); i++ }
      emit(".fi")
      if (level == 1) sect = "DESCRIPTION"
      continue
    }

    # example blocks
    if (ind == 0 && l ~ /^examples?:/) {
      label = l; sub(/:.*/, "", label)
      rest = l; sub(/^examples?: */, "", rest)
      example_start(label)
      if (rest != "") emit(esc(rest))
      i++
      while (i <= nl && line[i] ~ /^ +[^ ]/) {
        x = line[i]; sub(/^  /, "", x); sub(/[ \t]+$/, "", x)
        emit(esc(x)); i++
      }
      example_end()
      # prose after an example belongs to the page, not to EXAMPLES
      if (level == 1) sect = "DESCRIPTION"
      continue
    }

    # headers: "commands:" alone, or "exit status: text" at the start of a paragraph
    if (ind == 0 && !in_para && l ~ /^[a-z][a-z ]*:$/) {
      label = l; sub(/:$/, "", label)
      header(label)
      i++
      continue
    }
    if (ind == 0 && !in_para && l ~ /^[A-Za-z][a-z]* [a-z][a-z]*: /) {
      label = l; sub(/: .*/, "", label)
      header(label)
      l = substr(l, length(label) + 3)
      emit(".PP"); in_para = 1
      emit(esc(l)); i++
      continue
    }

    # prose continues, indented or not, once a paragraph has begun
    if (in_para && (ind == 0 || ind > 6)) {
      x = l; sub(/^ +/, "", x)
      emit(esc(x)); i++
      continue
    }

    # definitions
    if (ind >= 1 && ind <= 6) {
      x = substr(l, ind + 1)
      d = ""
      # the description's column: its continuation lines start there (or a little left)
      if (match(x, /  +/)) { t = substr(x, 1, RSTART - 1); d = substr(x, RSTART + RLENGTH); col = ind + RSTART + RLENGTH - 1 }
      else { t = x; col = ind + 4 }
      if (level == 1 && (sect == "DESCRIPTION" || sect == "SYNOPSIS")) { sect = "OPTIONS"; implicit = 1 }
      end_para()
      emit(".TP")
      emit(term(t, 1))
      if (d != "") emit(esc(d))
      i++
      while (i <= nl && indent_of(line[i]) >= col - 2 && line[i] ~ /[^ ]/) {
        x = line[i]; sub(/^ +/, "", x); sub(/[ \t]+$/, "", x)
        emit(esc(x)); i++
      }
      continue
    }

    # prose
    # (prose after a list of options without a header describes the program)
    if (level == 1 && (sect == "SYNOPSIS" || (!in_para && implicit && sect == "OPTIONS"))) sect = "DESCRIPTION"
    if (!in_para) { emit(".PP"); in_para = 1 }
    x = l; sub(/^ +/, "", x)
    emit(esc(x)); i++
  }
  if (level == 1 && part == "examples") {
    if ("EXAMPLES" in body) { print ".SH EXAMPLES"; printf "%s", body["EXAMPLES"] }
  } else if (level == 1) {
    # the man page order: the fixed sections, the help's other headers as they come,
    # COMMANDS last (the caller adds one .SS per subcommand to it); EXAMPLES is printed
    # by a second run with part=examples, after what the caller adds.
    n = split("SYNOPSIS DESCRIPTION OPTIONS", first, " ")
    for (k = 1; k <= n; k++) if (first[k] in body) { print ".SH " first[k]; printf "%s", body[first[k]]; done[first[k]] = 1 }
    for (k = 1; k <= nsect; k++) {
      s = order[k]
      if (s in done || s == "EXAMPLES" || s == "COMMANDS") continue
      print ".SH \"" s "\""; printf "%s", body[s]; done[s] = 1
    }
    if ("COMMANDS" in body) { print ".SH COMMANDS"; printf "%s", body["COMMANDS"] }
  }
}

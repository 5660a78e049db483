#!/usr/bin/env bash
# Instructions per `decide()` of the decide bench's intent cycle (4 symbols, default pack, two
# intents judged), counted by valgrind's callgrind. Wall time on a shared 2-core VM swings by
# ±20–50% from one minute to the next; this count does not (the same build gives the same
# figure to a few parts in ten thousand), so it is the way to tell whether a change to the
# engine or the scripts made the cycle cheaper. Needs valgrind; not part of the test suite.
#
#   benches/decide_instructions.sh            # the build's own figure
#   benches/decide_instructions.sh --keep F   # also keep the callgrind profile in F
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || {
    echo "decide_instructions: needs valgrind (e.g. apt install valgrind)" >&2
    exit 1
}
keep=""
if [ "${1:-}" = "--keep" ]; then keep="${2:?--keep needs a file}"; fi
bin=$(cargo bench --bench decide --no-run 2>&1 | grep -o 'target/release/deps/decide-[0-9a-f]*' | tail -1)
[ -x "$bin" ] || { echo "decide_instructions: no bench binary built" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# `--bench stage-means-only` matches no criterion benchmark: the binary builds the rules, then
# runs decide() 2,000 times for its per-stage means, and stops.
valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --bench stage-means-only >/dev/null 2>&1
[ -n "$keep" ] && cp "$out" "$keep"
callgrind_annotate --inclusive=yes --tree=calling "$out" 2>/dev/null |
    grep -m1 -E '> .*btcbot::engine::decide::decide_with \([0-9,]+x\)' |
    awk '{ ir = $1; gsub(",", "", ir); n = $0; sub(/.*decide_with \(/, "", n); sub(/x\).*/, "", n);
           gsub(",", "", n); printf "decide(): %d instructions a call (%s calls)\n", ir / n, n }'

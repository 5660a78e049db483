#!/usr/bin/env bash
# Instructions per `decide()` of the decide bench's intent cycle (4 symbols, default pack, two
# intents judged) and of its no-intent cycle, counted by valgrind's callgrind. Wall time on a shared 2-core VM swings by
# ±20–50% from one minute to the next; this count does not (the same build gives the same
# figure to a few parts in ten thousand), so it is the way to tell whether a change to the
# engine or the scripts made the cycle cheaper. Needs valgrind; not part of the test suite.
#
#   benches/decide_instructions.sh            # the build's own figure
#   benches/decide_instructions.sh --keep F   # also keep the intent cycle's callgrind profile in F
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
# runs decide() 2,000 times for its per-stage means, and stops. DECIDE_STAGE_INPUT picks the
# cycle: the intent cycle (two intents judged) or `quiet`, the same books at the strategy's
# anchors (no intent; risk runs only budget()), the common replayed cycle.
for cycle in intent quiet; do
    DECIDE_STAGE_INPUT=$cycle valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin" --bench stage-means-only >/dev/null 2>&1
    [ -n "$keep" ] && [ "$cycle" = intent ] && cp "$out" "$keep"
    # The bench's own calls of decide_with (rule tests at start-up call it too): the caller
    # lines (`<`) naming decide::bench above decide_with's own line. awk reads to the end, so
    # that callgrind_annotate never meets a closed pipe (pipefail would stop the script).
    callgrind_annotate --inclusive=yes --tree=caller "$out" 2>/dev/null |
        awk -v cycle="$cycle" '
            /^ *[0-9,]+ .*< .*decide::bench \([0-9,]+x\)/ {
                ir = $1; gsub(",", "", ir); n = $0; sub(/.*decide::bench \(/, "", n);
                sub(/x\).*/, "", n); gsub(",", "", n); bench_ir = ir; bench_n = n; next }
            /^ *[0-9,]+ .*< / { next }
            /\*  .*btcbot::engine::decide::decide_with \[/ && bench_n > 0 && !done {
                printf "decide(), %s cycle: %d instructions a call (%s calls)\n", cycle,
                       bench_ir / bench_n, bench_n; done = 1 }
            { bench_n = 0 }'
done

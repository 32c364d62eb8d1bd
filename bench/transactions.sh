#!/usr/bin/env bash
# The transaction layer under steady load (crates/sirius-sip/benches/
# transaction_load.rs: RATE calls/s on a simulated clock, every message
# parsed), on this build and, given a git revision, on that one too, run
# alternately RUNS times each from a fresh process, so both see the same
# machine. Reports min / median / max over the runs of each figure.
#
#   bench/transactions.sh              # this build only
#   bench/transactions.sh 0414af7      # and the build of 0414af7, before/after
#
# Writes bench/report-transactions.md. No network: the layer is sans-IO.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE="${1:-}"
RUNS="${RUNS:-3}"
export RATE="${RATE:-3000}" SIM_SECONDS="${SIM_SECONDS:-60}"
work=$(mktemp -d)
trap 'git worktree remove --force "$work/before" 2>/dev/null || true; rm -rf "$work"' EXIT

# Builds the bench in directory $1; prints the executable's path.
build() {
  (cd "$1" && cargo bench -p sirius-sip --bench transaction_load --no-run 2>&1) |
    sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1 | sed "s|^|$1/|; s|^$1//|/|"
}
declare -A bin
bin[after]=$(build "$PWD")
labels=(after)
if [ -n "$BEFORE" ]; then
  git worktree add -f --detach "$work/before" "$BEFORE" >/dev/null 2>&1
  # The benchmark is newer than the old revision: the same file, built there.
  cp crates/sirius-sip/benches/transaction_load.rs "$work/before/crates/sirius-sip/benches/"
  grep -q transaction_load "$work/before/crates/sirius-sip/Cargo.toml" ||
    printf '\n[[bench]]\nname = "transaction_load"\nharness = false\n' >> "$work/before/crates/sirius-sip/Cargo.toml"
  bin[before]=$(build "$work/before")
  labels=(before after)
fi

for run in $(seq "$RUNS"); do
  for l in "${labels[@]}"; do
    echo "run $run, $l" >&2
    "${bin[$l]}" | tee -a "$work/$l.txt" >&2
  done
done

# "median 45 us, p99 98 us, p99.9 170 us, worst 8474 us; 15.56 us of layer time per call"
stats() { # file field-pattern -> "min / median / max"
  sed -n "s/.*$2 \([0-9.]*\) us.*/\1/p" "$1" | sort -n |
    awk '{a[NR]=$1} END {printf "%s / %s / %s", a[1], a[int((NR+1)/2)], a[NR]}'
}
per_call() {
  sed -n 's/.*; \([0-9.]*\) us of layer time per call.*/\1/p' "$1" | sort -n |
    awk '{a[NR]=$1} END {printf "%s / %s / %s", a[1], a[int((NR+1)/2)], a[NR]}'
}
report=bench/report-transactions.md
{
  echo "# Transaction layer under load"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "\`crates/sirius-sip/benches/transaction_load.rs\`: ${RATE} calls/s for ${SIM_SECONDS} simulated seconds, two dialogs a call"
  echo "(UAS: INVITE, 100, 200, ACK, BYE, 200; UAC: INVITE, 200, BYE, 200), every message parsed; transactions linger"
  echo "32 s, so about $(( RATE * 100 / 1000 ))k are alive once warm. Each figure is the layer's time for one simulated"
  echo "millisecond of traffic (its messages and due timers), in µs, as min / median / max over $RUNS runs, each a fresh"
  echo "process${BEFORE:+, the two builds alternating}. *Worst* is the longest millisecond: the stall a SIP thread would see."
  echo
  echo "| build | median µs | p99 µs | p99.9 µs | worst µs | µs per call |"
  echo "|---|---|---|---|---|---|"
  for l in "${labels[@]}"; do
    name=$l
    [ "$l" = before ] && name="before ($BEFORE)"
    [ "$l" = after ] && name="after ($(git rev-parse --short HEAD))"
    echo "| $name | $(stats "$work/$l.txt" median) | $(stats "$work/$l.txt" p99) | $(stats "$work/$l.txt" p99.9) | $(stats "$work/$l.txt" worst) | $(per_call "$work/$l.txt") |"
  done
  echo
  echo "Raw lines:"
  echo
  for l in "${labels[@]}"; do sed "s/^/    $l: /" "$work/$l.txt"; done
} > "$report"
cat "$report"

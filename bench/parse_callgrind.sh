#!/usr/bin/env bash
# Instructions and allocations per message of the SIP message hot path
# (crates/sirius-sip/benches/hot_path.rs: parse, typed views, serialise,
# build a response), on this build and, given a git revision, on that one
# too. Instructions are counted by callgrind, which repeats to the
# instruction however busy the machine is; each phase runs at N1 and N2
# iterations and the figure is (Ir(N2) - Ir(N1)) / ((N2 - N1) x messages),
# so start-up and set-up cancel out.
#
#   bench/parse_callgrind.sh              # this build only
#   bench/parse_callgrind.sh 11a45cb      # and 11a45cb's, before/after
#
# Prints a markdown table on stdout. Needs valgrind. No network.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE="${1:-}"
N1="${N1:-200}" N2="${N2:-1200}"
PHASES="${PHASES:-parse views owned_views serialise respond all call}"
work=$(mktemp -d)
trap 'git worktree remove --force "$work/before" 2>/dev/null || true; rm -rf "$work"' EXIT
# The old revision builds in a target directory of its own, kept for the
# next run: sharing this one would make cargo take the old build's outputs
# for this tree's (same package, same hash; its freshness check reads the
# file list of whichever tree built last).
before_target="$PWD/target/bench-before"

build() { # directory [target directory] -> executable path
  (cd "$1" && CARGO_TARGET_DIR="${2:-$PWD/target}" cargo bench -p sirius-sip --bench hot_path --no-run 2>&1) |
    sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1 | sed "s|^\([^/]\)|$1/\1|"
}
declare -A bin
labels=()
if [ -n "$BEFORE" ]; then
  git worktree add -f --detach "$work/before" "$BEFORE" >/dev/null 2>&1
  # The benchmark is newer than the old revision: the same file, built there,
  # serialising with to_bytes where the old API has no write_to, reading the
  # owned views where it has no borrowed ones.
  sed 's/m\.write_to(buf)/buf.extend_from_slice(\&m.to_bytes())/;
       s/top_via_ref()/top_via()/; s/from_ref()/from_header()/; s/to_ref()/to_header()/' \
    crates/sirius-sip/benches/hot_path.rs > "$work/before/crates/sirius-sip/benches/hot_path.rs"
  grep -q hot_path "$work/before/crates/sirius-sip/Cargo.toml" ||
    printf '\n[[bench]]\nname = "hot_path"\nharness = false\n' >> "$work/before/crates/sirius-sip/Cargo.toml"
  bin[before]=$(build "$work/before" "$before_target")
  cp "${bin[before]}" "$work/hot_path_before"
  bin[before]="$work/hot_path_before"
  labels+=(before)
fi
bin[after]=$(build "$PWD")
labels+=(after)

ir() { # executable phase iterations -> instructions
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$1" "$2" "$3" >/dev/null 2>"$work/cg.err"
  sed -n 's/^summary: //p' "$work/cg.out"
}

echo "| build | phase | instructions / message | allocations / message | bytes allocated / message |"
echo "|---|---|---|---|---|"
for l in "${labels[@]}"; do
  for p in $PHASES; do
    per=5
    case $p in respond | call) per=1 ;; esac
    a=$(ir "${bin[$l]}" "$p" "$N1")
    b=$(ir "${bin[$l]}" "$p" "$N2")
    instr=$(( (b - a) / ((N2 - N1) * per) ))
    line=$("${bin[$l]}" "$p" 20000)
    allocs=$(sed -n 's/.*: \([0-9.]*\) allocations.*/\1/p' <<<"$line")
    bytes=$(sed -n 's/.*and \([0-9]*\) bytes.*/\1/p' <<<"$line")
    echo "| $l | $p | $instr | $allocs | $bytes |"
  done
done

#!/usr/bin/env bash
# Memory per held call, alone (bench/sip_calls.sh's memory step without its
# ramp): RUNS cold starts of the release daemon, each holding HELD_CALLS
# calls (sipp UAC -> Sirius, a B2BUA -> sipp UAS) set up at HELD_RATE/s and
# held until all are up, then RSS read AFTER_S seconds after they end.
#
#   bench/held_calls.sh                                  # 3 runs of 4,000 calls
#   RUNS=1 HELD_CALLS=1000 WRAP="heaptrack -o /tmp/h" bench/held_calls.sh
#
# Prints one line per run ("run idle_kb peak_calls peak_kb after_kb
# kib_per_call after_minus_idle_mb") and min / median / max. SIP ports
# are its own by default (Sirius 62060, sipp UAS 62070, UAC 62080: above
# the kernel's ephemeral ports, away from the benchmarks' 25060-25090 and
# 35060-35080), RTP 10000-39999 (RTP_START, RTP_END: 7,500 calls; a
# benchmark's memory step binds in 10000-60000 too, and a block of ports
# another daemon holds makes calls fail, so run one at a time); WRAP runs the daemon under a profiler (heaptrack, valgrind
# --tool=massif); NO_BUILD=1 skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
HELD_CALLS="${HELD_CALLS:-4000}"
HELD_RATE="${HELD_RATE:-500}"
AFTER_S="${AFTER_S:-60}"
export SIP_PORT="${SIP_PORT:-62060}" UAS_PORT="${UAS_PORT:-62070}"
UAC_PORT="${UAC_PORT:-62080}"
RTP_START="${RTP_START:-10000}" RTP_END="${RTP_END:-39999}"
# Two port pairs a call (four ports): the range must hold them.
if [ $(( (RTP_END - RTP_START + 1) / 4 )) -lt "$HELD_CALLS" ]; then
  echo "RTP range $RTP_START-$RTP_END holds fewer than $HELD_CALLS calls" >&2; exit 1
fi
uac_sf="$PWD/bench/uac.xml"
hold_ms=$(( HELD_CALLS * 1000 / HELD_RATE + 4000 ))
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || cargo build --release --workspace --quiet
work=$(mktemp -d)
track() { echo "$1" >> "$work/pids"; }
untrack() { sed -i "/^$1\$/d" "$work/pids"; }
cleanup() {
  if [ -f "$work/pids" ]; then
    while read -r p; do kill "$p" 2>/dev/null || true; done < "$work/pids"
  fi
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
# shellcheck source=bench/pbx.sh
. bench/pbx.sh

out="$work/held.tsv"; : > "$out"
for run in $(seq "$RUNS"); do
  write_pbx_config "maxfiles = 100000" "rtpstart = $RTP_START"$'\n'"rtpend = $RTP_END"
  start_pbx; track "$pid"
  sleep 2
  rss0=$(rss_kb "$pid")
  sipp -sn uas -p "$UAS_PORT" -i 127.0.0.1 -nostdin -m "$HELD_CALLS" -timeout "$(( hold_ms / 1000 + 60 ))s" \
      -buff_size 8388608 > "$work/uas.out" 2>&1 &
  uas=$!; track "$uas"
  sleep 0.3
  (cd "$work" && exec timeout $(( hold_ms / 1000 + 80 )) sipp "127.0.0.1:$SIP_PORT" -sf "$uac_sf" \
      -s 1000 -p "$UAC_PORT" -i 127.0.0.1 -nostdin -r "$HELD_RATE" -m "$HELD_CALLS" -d "$hold_ms" \
      -buff_size 8388608 -default_behaviors all,-abortunexp -timeout "$(( hold_ms / 1000 + 60 ))s" \
      > "$work/uac.out" 2>&1) &
  uac=$!; track "$uac"
  peak=0; peak_rss=0
  while kill -0 "$uac" 2>/dev/null; do
    n=$(rx "core show channels count" 2>/dev/null | awk '/active call/ {print $1}')
    if [ "${n:-0}" -gt "$peak" ]; then peak=$n; peak_rss=$(rss_kb "$pid"); fi
    sleep 0.5
  done
  wait "$uac" || true; untrack "$uac"
  kill "$uas" 2>/dev/null || true; wait "$uas" 2>/dev/null || true; untrack "$uas"
  ended=$(rss_kb "$pid")
  sleep "$AFTER_S"
  after=$(rss_kb "$pid")
  per=$(awk -v a="$peak_rss" -v b="$rss0" -v n="$peak" 'BEGIN {printf "%.1f", n ? (a - b) / n : 0}')
  diff=$(awk -v a="$after" -v b="$rss0" 'BEGIN {printf "%.1f", (a - b) / 1024}')
  echo "$run $rss0 $peak $peak_rss $after $per $diff" >> "$out"
  echo "run $run: idle $(( rss0 / 1024 )) MB, $peak calls up, peak $(( peak_rss / 1024 )) MB ($per KiB a call)," \
       "$(( ended / 1024 )) MB as they ended, $(( after / 1024 )) MB ${AFTER_S} s after ($diff MB above idle)" >&2
  stop_pbx; untrack "$pid"
done
stats() { sort -n | awk '{a[NR]=$1} END {printf "%s / %s / %s", a[1], a[int((NR+1)/2)], a[NR]}'; }
echo "KiB per held call (min / median / max): $(awk '{print $6}' "$out" | stats)"
echo "RSS ${AFTER_S} s after - idle, MB (min / median / max): $(awk '{print $7}' "$out" | stats)"
cat "$out"

#!/usr/bin/env bash
# Signalling benchmark: sipp UAC -> Sirius (Dial) -> sipp UAS, and the same
# sipp UAC -> sipp UAS directly, on this machine, in the same run, so every
# figure can be read as a ratio to the tools' own ceiling.
#
#   bench/sip_calls.sh                       # default rate steps
#   RATES="200 500 1000" DURATION=10 bench/sip_calls.sh
#
# The ramp runs Sirius with overload control on (maxcalls, maxload in
# sirius.toml): past its capacity it refuses the excess with 503, and the
# report shows whether goodput holds. A second part holds HELD_CALLS
# concurrent calls (no limits) and reports memory per held call.
#
# Writes bench/report-sip_calls.md. Loopback only; every sipp run is bounded
# by -m (calls) and a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
RATES="${RATES:-500 1000 2000 2500 3000 4000}"
uac_sf="$PWD/bench/uac.xml"
HELD_CALLS="${HELD_CALLS:-10000}"   # concurrent calls held for the memory figure
DURATION="${DURATION:-8}"     # seconds per step
HOLD_MS="${HOLD_MS:-0}"       # how long each call stays up
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 1; }
cargo build --release --workspace --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
. bench/pbx.sh
write_pbx_config "maxcalls = 200
maxload = 0.9"

percentile() { sort -n | awk -v p="$1" '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} i=int(NR*p/100); if (i<1) i=1; printf "%.1f", a[i]}'; }

# One step: UAC at $1 calls/s against target $2; UAS on 25070. Prints
# "achieved ok failed p50 p99 refused" (latency in ms from sipp's rtd trace;
# refused: calls answered 503). $3 overrides the hold time (ms), $4 the call count.
step() {
  local rate=$1 target=$2 hold=${3:-$HOLD_MS} calls=${4:-$(( $1 * DURATION ))} dir
  dir=$(mktemp -d -p "$work")
  # Started directly (no subshell) so that $! is sipp itself and the kill below frees the port.
  sipp -sn uas -p 25070 -i 127.0.0.1 -nostdin -m "$calls" -timeout $((DURATION + 40))s \
      -buff_size 8388608 > "$dir/uas.out" 2>&1 &
  local uas=$!
  sleep 0.3
  local start end
  start=$(date +%s.%N)
  (cd "$dir" && timeout $((DURATION + 60 + hold / 1000)) sipp "$target" -sf "$uac_sf" -s 1000 -p 25080 -i 127.0.0.1 -nostdin -r "$rate" -m "$calls" \
      -d "$hold" -buff_size 8388608 -default_behaviors all,-abortunexp -timeout $((DURATION + 40 + hold / 1000))s \
      -trace_rtt -rtt_freq 1 > uac.out 2>&1 || true)
  end=$(date +%s.%N)
  kill "$uas" 2>/dev/null || true; wait "$uas" 2>/dev/null || true
  local ok failed refused
  ok=$(awk -F'|' '/Successful call/ {gsub(/ /,"",$3); print $3}' "$dir/uac.out" | tail -1)
  failed=$(awk -F'|' '/Failed call/ {gsub(/ /,"",$3); print $3}' "$dir/uac.out" | tail -1)
  # The 503 row of sipp's message table: "503 <----------  N ...".
  refused=$(awk '$1 == "503" && $2 ~ /^</ {print $3}' "$dir/uac.out" | tail -1)
  refused=${refused:-0}
  # bench/uac.xml counts a refused call as failed: what is left failed otherwise.
  failed=$(( ${failed:-0} - refused ))
  local rtt; rtt=$(ls "$dir"/*_rtt.csv 2>/dev/null | head -1 || true)
  local p50=n/a p99=n/a
  if [ -n "$rtt" ]; then
    # Date_ms;response_time_ms;rtd_no. Steady state only: calls set up in the
    # step's first second (sipp and the PBX's thread pool, tables and
    # allocator warming up) are left out, as the harness lessons ask.
    steady() { awk -F';' 'NR == 2 {t0 = $1} NR > 1 && $1 >= t0 + 1000 {print $2}' "$rtt"; }
    p50=$(steady | percentile 50)
    p99=$(steady | percentile 99)
  fi
  local secs; secs=$(echo "$end - $start" | bc)
  # Retransmissions either side sent: the caller's requests ("INVITE ---------->
  # N R ...") and the callee's responses ("<---------- 200 N R ...").
  local retrans
  retrans=$(( $(awk '$2 == "---------->" {r += $4} END {print r + 0}' "$dir/uac.out") \
            + $(awk '$1 == "<----------" {r += $4} END {print r + 0}' "$dir/uas.out") ))
  echo "$(echo "scale=1; ${ok:-0} / $secs" | bc) ${ok:-0} ${failed:-0} $p50 $p99 $refused $retrans"
}

start_pbx
hz=$(getconf CLK_TCK)
report=bench/report-sip_calls.md
{
  echo "# Signalling benchmark: calls through Sirius vs sipp to sipp"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Each step: ${DURATION}s of calls at the offered rate, hold ${HOLD_MS} ms; sipp UAC -> Sirius (Dial to a static peer) -> sipp UAS,"
  echo "then the same UAC straight to the UAS. Latency: INVITE to 200 OK (sipp rtd), ms, of the calls after the step's"
  echo "first second (warm-up left out); sipp's rtd clock ticks in 4 ms steps, so 0 means under 4 ms."
  echo "Sirius runs with overload control (maxcalls = 200, maxload = 0.9): calls past its capacity get 503"
  echo "(the *refused* column) and *Sirius cps* is the goodput, calls completed per second."
  echo
  echo "| offered cps | Sirius cps | refused (503) | failed | retransmissions | p50 ms | p99 ms | Sirius CPU s / 1000 calls | Sirius RSS MB | direct cps | direct retransmissions | direct p50 ms | direct p99 ms | cps ratio |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} > "$report"
saturated=""
for rate in $RATES; do
  t0=$(cpu_ticks "$pid")
  read -r cps ok failed p50 p99 refused retrans < <(step "$rate" 127.0.0.1:25060)
  t1=$(cpu_ticks "$pid")
  rss=$(( $(rss_kb "$pid") / 1024 ))
  cpu_per_k=$(echo "scale=2; ($t1 - $t0) / $hz * 1000 / (${ok} + 1)" | bc)
  read -r dcps _ _ dp50 dp99 _ dretrans < <(step "$rate" 127.0.0.1:25070)
  ratio=$(echo "scale=2; $cps / ($dcps + 0.001)" | bc)
  echo "| $rate | $cps | $refused | $failed | $retrans | $p50 | $p99 | $cpu_per_k | $rss | $dcps | $dretrans | $dp50 | $dp99 | $ratio |" >> "$report"
  # When sipp-to-sipp itself cannot carry the offered rate, the step measures the
  # machine (two sipp processes plus Sirius on shared cores), not Sirius: say so.
  if [ "$(echo "$dcps < $rate * 0.9" | bc)" = 1 ]; then saturated="$saturated $rate"; fi
  echo "rate $rate: sirius $cps cps ($refused refused, $failed failed, p50 $p50 ms, p99 $p99 ms, ${cpu_per_k} CPU-s/1000 calls), direct $dcps cps" >&2
done
echo >> "$report"
if [ -n "${saturated:-}" ]; then
  echo "At${saturated} cps even sipp-to-sipp direct fell below 90 % of the offered rate: the load generators" >> "$report"
  echo "saturate this machine there, so those rows do not measure Sirius's ceiling." >> "$report"
  echo >> "$report"
fi
echo "Sirius ended the ramp using $(( $(rss_kb "$pid") / 1024 )) MB RSS." >> "$report"
stop_pbx

# Memory per held call: the same daemon without call limits, HELD_CALLS calls
# set up at 500/s and held long enough that all of them are up at once. Each
# call holds two legs, each an RTP/RTCP port pair: the port range and the
# open-files limit (maxfiles: raising the hard limit needs CAP_SYS_RESOURCE)
# must allow 40,000+ descriptors for 10,000 calls; the report says when not.
write_pbx_config "maxfiles = 100000" $'rtpstart = 10000\nrtpend = 60000'
start_pbx
rss0=$(rss_kb "$pid")
hold_ms=$(( HELD_CALLS / 500 * 1000 + 4000 ))
step 500 127.0.0.1:25060 "$hold_ms" "$HELD_CALLS" > "$work/held.txt" &
stepper=$!
peak=0; peak_rss=0
while kill -0 "$stepper" 2>/dev/null; do
  n=$(rx "core show channels count" 2>/dev/null | awk '/active call/ {print $1}')
  if [ "${n:-0}" -gt "$peak" ]; then
    peak=$n; peak_rss=$(rss_kb "$pid"); threads=$(ls "/proc/$pid/task" | wc -l)
  fi
  sleep 0.5
done
per_call=$(echo "scale=1; ($peak_rss - $rss0) / ($peak + 0.001)" | bc)
{
  echo
  echo "## Memory per held call"
  echo
  echo "$HELD_CALLS calls set up at 500/s and held ${hold_ms} ms, no call limits: at the peak $peak calls (two legs each)"
  echo "were up and Sirius's RSS had grown from $(( rss0 / 1024 )) MB to $(( peak_rss / 1024 )) MB: **${per_call} KiB per held call**"
  echo "(signalling state, both channels and their RTP sockets' user-space side). Sirius had $threads threads at the peak."
  if [ "$peak" -lt $(( HELD_CALLS * 99 / 100 )) ]; then
    read -r soft hard < <(awk '/Max open files/ {print $4, $5}' "/proc/$pid/limits")
    echo
    echo "Not all $HELD_CALLS calls were up at once: Sirius's open-files limit was $soft (hard limit $hard), and each"
    echo "call holds four sockets (an RTP and an RTCP socket per leg), so about $(( soft / 4 )) calls fit; the others were"
    echo "refused with 503 (no RTP port pair). \`maxfiles\` in sirius.toml raises the limit as far as the hard limit,"
    echo "or past it for root with CAP_SYS_RESOURCE, which this machine's container does not grant."
  fi
} >> "$report"
stop_pbx
echo "wrote $report" >&2
python3 bench/plot_sip_calls.py || echo "no plot (see bench/plot_sip_calls.py)" >&2

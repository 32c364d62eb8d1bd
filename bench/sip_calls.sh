#!/usr/bin/env bash
# Signalling benchmark, RUNS cold-start runs. Each run starts a fresh Sirius
# daemon and a fresh Kamailio and, at each offered rate in RATES, measures
#
#   sipp UAC -> Sirius (Dial) -> sipp UAS       (Sirius, a B2BUA)
#   sipp UAC -> sipp UAS                        (direct: the tools' ceiling)
#   sipp UAC -> Kamailio -> sipp UAS            (a stateful record-routing
#                                                proxy, bench/kamailio.cfg)
#
# one after the other, so that every figure can be read against the two
# yardsticks measured on the same machine at the same time. Then it holds
# HELD_CALLS concurrent calls on another fresh Sirius for the memory figures.
# The report gives min / median / max over the runs.
#
#   bench/sip_calls.sh                                   # the full benchmark
#   RUNS=1 RATES="200 500" DURATION=5 HELD_CALLS=300 bench/sip_calls.sh   # a trial
#
# Writes bench/report-sip_calls.md (and bench/sip_calls.png when matplotlib
# is there). Loopback only; every sipp run is bounded by -m (calls) and a
# timeout, Kamailio by a timeout, and everything started is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"                              # cold-start runs
RATES="${RATES:-2000 4000 6000 8000}"          # offered calls/s, one step each
DURATION="${DURATION:-15}"                     # seconds of calls per step
HOLD_MS="${HOLD_MS:-0}"                        # how long each ramp call stays up
HELD_CALLS="${HELD_CALLS:-4000}"               # concurrent calls for the memory figures
HELD_RATE=500                                  # ... set up at this rate
hold_ms=$(( HELD_CALLS * 1000 / HELD_RATE + 4000 ))  # ... and held until all are up
AFTER_S="${AFTER_S:-60}"                       # RSS read this long after the held calls end
PAUSE="${PAUSE:-2}"                            # seconds of quiet before each step
# Sirius's overload control in the ramp is its own: chan_sip's maxlag (200 ms
# by default) refuses new calls with 503 while its event loop runs late.
# LIMITS adds sirius.toml [general] lines ("; " between them), e.g.
# "maxcalls = 200"; maxload reads the whole machine's CPU, so others' load
# would refuse calls: not used by default.
LIMITS="${LIMITS:-}"
# SIP_GENERAL adds sip.toml [general] lines to the ramp's Sirius ("; "
# between them), e.g. "sipthreads = 1": one SIP thread has a clean maximum
# sipp can offer twice of, which two threads on this machine do not.
SIP_GENERAL="${SIP_GENERAL:-}"
top=$(echo "$RATES" | tr ' ' '\n' | sort -n | tail -1)
# Right after the top rate, one more Sirius step at this rate: is it clean again?
AFTER_RATE="${AFTER_RATE:-$(( top / 2 ))}"
KAMAILIO="${KAMAILIO:-/usr/sbin/kamailio}"
# KEEP=1 keeps the work directory (configurations, sipp and daemon output).
KAMAILIO_PORT=25090                            # bench/kamailio.cfg listens here
uac_sf="$PWD/bench/uac.xml"
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 1; }
if [ ! -x "$KAMAILIO" ]; then
  echo "no $KAMAILIO (apt-get install kamailio): the Kamailio column is left out" >&2
  KAMAILIO=""
fi
cargo build --release --workspace --quiet
work=$(mktemp -d)
# Every process started in the background, from this shell or a subshell,
# goes into $work/pids: on exit (normal, error or signal) each is killed.
# A process is untracked once it has been waited for, so that a pid the
# kernel has since given to another process is never killed.
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
hz=$(getconf CLK_TCK)
load1() { cut -d' ' -f1 /proc/loadavg; }

percentile() { sort -n | awk -v p="$1" '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} i=int(NR*p/100); if (i<1) i=1; printf "%.1f", a[i]}'; }

# Retransmissions in a sipp output file's message table, per direction, and
# unexpected messages: prints "forward backward unexpected", forward being the
# rows of requests from the UAC towards the UAS ("INVITE ---------->" sent by
# the UAC, "----------> INVITE" received by the UAS), backward the responses.
# A row's counts are Messages, Retrans (for a sent message the
# retransmissions sipp made, for a received one the duplicates it got),
# Timeout and, for a received message, Unexpected-Msg.
retrans_of() {
  awk '$1 ~ /^-+>$/ || $2 ~ /^-+>$/ || $1 ~ /^<-+$/ || $2 ~ /^<-+$/ {
    arrow = ($1 ~ /^(-+>|<-+)$/) ? $1 : $2
    n = 0
    for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+$/) { c[++n] = $i }
    if (n < 2) next
    if (arrow ~ />$/) fwd += c[2]; else bwd += c[2]
    if (n >= 4) unexp += c[4]
  } END {print fwd + 0, bwd + 0, unexp + 0}' "$1"
}

# One step: a sipp UAS on 25070 and a sipp UAC on 25080 calling $2 at $1
# calls/s; $3 overrides the hold time (ms), $4 the call count. Prints
# "achieved ok failed p50 p99 refused retrans seconds unexpected": achieved:
# calls completed per second of the offering (see below); failed: calls
# neither completed nor refused; latency in ms from sipp's rtd trace;
# refused: calls answered 503; seconds: how long the UAC ran; unexpected:
# messages either sipp did not expect (a 500 instead of a 180, say).
step() {
  local rate=$1 target=$2 hold=${3:-$HOLD_MS} calls=${4:-$(( $1 * DURATION ))} dir
  local limit=$(( calls / rate + hold / 1000 + 40 ))   # seconds: sipp's own bound
  dir=$(mktemp -d -p "$work" "step-$(date +%H%M%S)-XXXX")   # in the order run
  # The UAS takes more calls than the step makes (it is stopped when the
  # UAC is done): after an overloaded step, the box in the middle still
  # retransmits INVITEs of callee legs the last UAS never answered (Timer B,
  # 32 s), and a UAS counting those as its calls can stop before the step's
  # last ones (suspected for the 211 calls of a Sirius-after step that got
  # 603 at its very end; not confirmed).
  sipp -sn uas -p 25070 -i 127.0.0.1 -nostdin -m "$(( calls + calls / 10 + 100 ))" -timeout "$((limit + 10))s" \
      -buff_size 8388608 > "$dir/uas.out" 2>&1 &
  local uas=$!; track "$uas"
  sleep 0.3
  local start end
  start=$(date +%s.%N)
  (cd "$dir" && exec timeout $((limit + 20)) sipp "$target" -sf "$uac_sf" -s 1000 -p 25080 -i 127.0.0.1 \
      -nostdin -r "$rate" -m "$calls" -d "$hold" -buff_size 8388608 -default_behaviors all,-abortunexp \
      -timeout "${limit}s" -trace_rtt -rtt_freq 1 > uac.out 2>&1) &
  local uac=$!; track "$uac"
  wait "$uac" || true; untrack "$uac"
  end=$(date +%s.%N)
  kill "$uas" 2>/dev/null || true; wait "$uas" 2>/dev/null || true; untrack "$uas"
  local ok failed refused
  ok=$(awk -F'|' '/Successful call/ {gsub(/ /,"",$3); print $3}' "$dir/uac.out" | tail -1)
  ok=${ok:-0}
  failed=$(awk -F'|' '/Failed call/ {gsub(/ /,"",$3); print $3}' "$dir/uac.out" | tail -1)
  # The 503 row of sipp's message table: "503 <----------  N ...".
  refused=$(awk '$1 == "503" && $2 ~ /^</ {print $3}' "$dir/uac.out" | tail -1)
  refused=${refused:-0}
  # Failed: neither completed nor refused. bench/uac.xml counts a refused call
  # as failed; a call still waiting when sipp's timeout ends the run is in
  # neither of sipp's counts.
  failed=$(( calls - ok - refused ))
  local rtt p50=n/a p99=n/a span=0
  rtt=$(find "$dir" -maxdepth 1 -name '*_rtt.csv' | head -1)
  if [ -n "$rtt" ]; then
    # Date_ms;response_time_ms;rtd_no. Steady state only: calls set up in the
    # step's first second (sipp and the PBX's thread pool, tables and
    # allocator warming up) are left out, as the harness lessons ask.
    steady() { awk -F';' 'NR == 2 {t0 = $1} NR > 1 && $1 >= t0 + 1000 {print $2}' "$rtt"; }
    p50=$(steady | percentile 50)
    p99=$(steady | percentile 99)
    # When the last call was set up (ms from sipp's start).
    span=$(awk -F';' 'NR > 1 && $1 > m {m = $1} END {print m + 0}' "$rtt")
  fi
  local secs; secs=$(echo "$end - $start" | bc)
  # Retransmissions per direction: the larger of what one sipp sent and what
  # the other received, so that one forwarded end to end counts once and one
  # made (or absorbed) by the box in the middle counts too.
  local uf ub ux sf sb sx
  read -r uf ub ux < <(retrans_of "$dir/uac.out")
  read -r sf sb sx < <(retrans_of "$dir/uas.out")
  local retrans=$(( (uf > sf ? uf : sf) + (ub > sb ? ub : sb) ))
  # Calls completed per second of the offering: over the time the offered
  # rate takes to place the calls, or until the last call was set up when
  # that was later (the UAC or the box in the middle falling behind). A call
  # left hanging until sipp's timeout does not stretch it: it counts as failed.
  local window
  window=$(echo "scale=3; w = $calls / $rate; s = $span / 1000; if (s > w) w = s; w" | bc)
  echo "$(echo "scale=1; $ok / $window" | bc) $ok $failed $p50 $p99 $refused $retrans $secs $(( ux + sx ))"
}

# Kamailio on bench/kamailio.cfg for at most $1 seconds; sets $kam (the
# timeout process) and $kpid (Kamailio's main process) once its workers are up.
# Shared memory: -m 1024 (MB). At 2,000 calls/s and more its transactions
# outgrew 256 MB ("could not allocate shared memory from shm pool" in its
# log, calls answered by its stateless error reply), which the first report
# with this harness took for Kamailio's ceiling.
start_kamailio() {
  mkdir -p "$work/kamailio"
  timeout "$1" "$KAMAILIO" -f "$PWD/bench/kamailio.cfg" -DD -E -m 1024 -M 16 -Y "$work/kamailio" \
      > "$work/kamailio-$RANDOM.log" 2>&1 &
  kam=$!; track "$kam"
  kpid=""
  for _ in $(seq 50); do
    kpid=$(ps --ppid "$kam" -o pid= | tr -d ' ' | head -1)
    [ -n "$kpid" ] && [ "$(ps --ppid "$kpid" -o pid= | wc -l)" -ge 3 ] && break
    sleep 0.1
  done
  [ -n "$kpid" ] || { echo "Kamailio did not start: see $work/kamailio-*.log" >&2; exit 1; }
  sleep 0.5
}
stop_kamailio() { kill "$kam" 2>/dev/null || true; wait "$kam" 2>/dev/null || true; untrack "$kam"; }
# CPU ticks of Kamailio: the main process and its workers.
kam_ticks() {
  local t=0 p
  # shellcheck disable=SC2046 # one pid a word
  for p in "$kpid" $(ps --ppid "$kpid" -o pid=); do
    t=$(( t + $(cpu_ticks "$p" 2>/dev/null || echo 0) ))
  done
  echo "$t"
}

# The worst of the first $1 per-second values of `sip show lag` (ms).
worst_lag() {
  rx "sip show lag" 2>/dev/null |
    awk -v n="$1" '/^Per second/ {w = 0; for (i = 4; i <= NF && i < 4 + n; i++) if ($i + 0 > w) w = $i + 0; printf "%.1f", w; found = 1}
                   END {if (!found) print "n/a"}'
}

# The worst of the first $1 per-second input waits of `sip show lag` (ms):
# how long a datagram waited between the kernel receiving it and the
# endpoint handling it, which admission control reads as well as the lag.
worst_wait() {
  rx "sip show lag" 2>/dev/null |
    awk -v n="$1" '/^Waits per second/ {w = 0; for (i = 5; i <= NF && i < 5 + n; i++) if ($i + 0 > w) w = $i + 0; printf "%.1f", w; found = 1}
                   END {if (!found) print "n/a"}'
}

# CPU per call (µs) from a tick count $1 and $2 calls.
us_per_call() { if [ "$2" -gt 0 ]; then echo "scale=1; $1 * 1000000 / $hz / $2" | bc; else echo n/a; fi; }

# One Sirius step at $1 calls/s, recorded as system $2.
sirius_step() {
  local load t0 t1 lag wait cps ok failed p50 p99 refused retrans secs unexp
  load=$(load1)
  t0=$(cpu_ticks "$pid")
  step "$1" 127.0.0.1:25060 > "$work/step.txt"
  read -r cps ok failed p50 p99 refused retrans secs unexp < "$work/step.txt"
  t1=$(cpu_ticks "$pid")
  # The lag of the seconds the step took (the current second first).
  lag=$(worst_lag $(( ${secs%.*} + 2 )))
  wait=$(worst_wait $(( ${secs%.*} + 2 )))
  echo "$run $1 $2 $load $cps $failed $refused $retrans $p50 $p99 $(us_per_call $(( t1 - t0 )) "$ok") $lag $unexp $wait" >> "$raw"
  echo "  rate $1 $2: $cps cps, $failed failed, $refused 503, $retrans retransmissions, p99 $p99 ms, lag $lag ms, wait $wait ms (load $load)" >&2
}

raw="$work/ramp.tsv"     # run rate system load cps failed refused retrans p50 p99 cpu_us lag_ms unexpected wait_ms
mem="$work/memory.tsv"   # run idle_kb peak_calls peak_kb after_kb threads files_soft files_hard
: > "$raw"; : > "$mem"
nrates=$(echo "$RATES" | wc -w)
started=$(date -u '+%Y-%m-%d %H:%M UTC'); load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for run in $(seq "$RUNS"); do
  echo "run $run of $RUNS" >&2
  # The ramp: Sirius with overload control on ($LIMITS).
  # RTP ports of its own (5,000 pairs, as many as the default range), below
  # the kernel's ephemeral ports and away from the ranges other daemons and
  # tests on a shared machine bind: the default 10000-20000 and the blackbox
  # tests' 30000-31999. A trial in each logged "no free RTP/RTCP port pair"
  # two seconds into a 500 calls/s step, thousands of pairs never used (16
  # binds in a row failed), and answered those calls 500.
  write_pbx_config "${LIMITS//; /$'\n'}" $'rtpstart = 20000\nrtpend = 29999\n'"${SIP_GENERAL//; /$'\n'}"
  start_pbx; track "$pid"
  if [ -n "$KAMAILIO" ]; then start_kamailio $(( nrates * 3 * (DURATION + PAUSE + 60) + 60 )); fi
  for rate in $RATES; do
    sleep "$PAUSE"
    sirius_step "$rate" Sirius
    # Right after the top rate (no pause): back to AFTER_RATE.
    if [ "$rate" = "$top" ] && [ "$AFTER_RATE" -gt 0 ]; then sirius_step "$AFTER_RATE" Sirius-after; fi

    sleep "$PAUSE"; load=$(load1)
    step "$rate" 127.0.0.1:25070 > "$work/step.txt"
    read -r cps ok failed p50 p99 refused retrans secs unexp < "$work/step.txt"
    echo "$run $rate direct $load $cps $failed $refused $retrans $p50 $p99 n/a n/a $unexp n/a" >> "$raw"
    echo "  rate $rate direct: $cps cps, $failed failed, $retrans retransmissions, p99 $p99 ms (load $load)" >&2

    if [ -n "$KAMAILIO" ]; then
      sleep "$PAUSE"; load=$(load1)
      t0=$(kam_ticks)
      step "$rate" "127.0.0.1:$KAMAILIO_PORT" > "$work/step.txt"
      read -r cps ok failed p50 p99 refused retrans secs unexp < "$work/step.txt"
      t1=$(kam_ticks)
      echo "$run $rate Kamailio $load $cps $failed $refused $retrans $p50 $p99 $(us_per_call $(( t1 - t0 )) "$ok") n/a $unexp n/a" >> "$raw"
      echo "  rate $rate Kamailio: $cps cps, $failed failed, $refused 503, $retrans retransmissions, p99 $p99 ms (load $load)" >&2
    fi
  done
  [ -z "$KAMAILIO" ] || stop_kamailio
  stop_pbx; untrack "$pid"

  # Memory: a fresh daemon without call limits, HELD_CALLS calls set up at
  # HELD_RATE/s and held until all are up at once. Each call holds two legs,
  # each an RTP/RTCP port pair: the port range and the open-files limit
  # (maxfiles: raising the hard limit needs CAP_SYS_RESOURCE) must allow four
  # descriptors a call; the report says when not.
  write_pbx_config "maxfiles = 100000" $'rtpstart = 10000\nrtpend = 60000'
  start_pbx; track "$pid"
  sleep "$PAUSE"
  rss0=$(rss_kb "$pid")
  step "$HELD_RATE" 127.0.0.1:25060 "$hold_ms" "$HELD_CALLS" > "$work/held.txt" &
  stepper=$!; track "$stepper"
  peak=0; peak_rss=0; threads=0
  while kill -0 "$stepper" 2>/dev/null; do
    n=$(rx "core show channels count" 2>/dev/null | awk '/active call/ {print $1}')
    if [ "${n:-0}" -gt "$peak" ]; then
      peak=$n; peak_rss=$(rss_kb "$pid"); threads=$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l)
    fi
    sleep 0.5
  done
  wait "$stepper" || true; untrack "$stepper"
  echo "  held: $peak calls up at the peak, RSS $(( rss0 / 1024 )) -> $(( peak_rss / 1024 )) MB; waiting ${AFTER_S}s" >&2
  sleep "$AFTER_S"
  read -r soft hard < <(awk '/Max open files/ {print $4, $5}' "/proc/$pid/limits")
  echo "$run $rss0 $peak $peak_rss $(rss_kb "$pid") $threads $soft $hard" >> "$mem"
  stop_pbx; untrack "$pid"
done

# ---- The report ----

# min / median / max of the numbers on stdin ("n/a" left out); one value when
# all agree. $1: printf format.
mmm() {
  grep -v '^n/a$' | sort -g | awk -v f="$1" '{a[NR] = $1} END {
    if (NR == 0) {print "n/a"; exit}
    med = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    lo = sprintf(f, a[1]); mid = sprintf(f, med); hi = sprintf(f, a[NR])
    if (lo == hi) print lo; else print lo " / " mid " / " hi}'
}
# Column $3 of the ramp rows for rate $1 and system $2, one a line.
col() { awk -v r="$1" -v s="$2" -v c="$3" '$2 == r && $3 == s {print $c}' "$raw"; }
mcol() { awk -v c="$1" '{print $c}' "$mem"; }
systems="Sirius direct"; [ -z "$KAMAILIO" ] || systems="$systems Kamailio"
[ "$AFTER_RATE" -gt 0 ] && systems="$systems Sirius-after"
# Rates at which system $1 was clean in every run: calls completed, 0 failed, 0 503, 0 retransmissions.
clean_rates() {
  local r out=""
  # shellcheck disable=SC2086 # the rates, one a word
  for r in $(printf '%s\n' $RATES "$AFTER_RATE" | sort -nu); do
    if awk -v r="$r" -v s="$1" 'BEGIN {ok = 0} $2 == r && $3 == s {ok++; if ($5 + 0 == 0 || $6 != 0 || $7 != 0 || $8 != 0) bad = 1}
                                END {exit !(ok > 0 && !bad)}' "$raw"; then out="$out $r"; fi
  done
  echo "${out# }"
}
report="${REPORT:-bench/report-sip_calls.md}"
{
  echo "# Signalling benchmark: Sirius, sipp to sipp and Kamailio"
  echo
  echo "$started, $(nproc) cores, load before the benchmark: $load_start. **Cold-start runs: $RUNS**; each starts a"
  echo "fresh Sirius and a fresh Kamailio and, at each offered rate, runs ${DURATION} s of calls (hold ${HOLD_MS} ms) from a sipp UAC"
  echo "to a sipp UAS through Sirius (a B2BUA: Dial to a static peer), then straight (*direct*, the tools' ceiling), then"
  echo "through Kamailio $("${KAMAILIO:-true}" -v 2>/dev/null | awk 'NR == 1 {print $3}') as a stateful record-routing proxy (bench/kamailio.cfg, 2 workers),"
  echo "with ${PAUSE} s of quiet before each. Cells: min / median / max over the runs (one value when all agree)."
  echo
  echo "Columns: *load*: the 1-minute load average just before the step (min–max); *calls/s*: calls completed per"
  echo "second of the offering (goodput); *failed*: calls neither completed nor refused; *503*: calls refused for load (Sirius runs"
  echo "with its own overload control, chan_sip's \`maxlag\` at its default, 200 ms${LIMITS:+, and ${LIMITS}}); *retrans*: SIP retransmissions, per direction the larger of"
  echo "what one sipp sent and the other received; *p50/p99*: INVITE to 200 OK (sipp rtd) in ms, calls after the step's"
  echo "first second only (sipp's rtd clock ticks in 4 ms steps: 0 means under 4 ms); *CPU µs/call*: the daemon's"
  echo "CPU time (all of Kamailio's processes) over the step divided by the calls completed; *worst lag*: Sirius's"
  echo "worst per-second event-loop lag over the step (\`sip show lag\`: how late a due timer ran, the stall detector);"
  echo "*unexpected*: messages either sipp did not expect (a 500 instead of a 180, say); *worst wait*: the longest a"
  echo "received datagram waited before Sirius handled it (\`sip show lag\`'s input waits: the socket's queue and the"
  echo "hand-over to its call's thread), which admission control compares with \`maxlag\` as it does the lag."
  echo
  echo "| offered cps | system | load | calls/s | failed | 503 | retrans | p50 ms | p99 ms | CPU µs/call | worst lag ms | unexpected | worst wait ms |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  # shellcheck disable=SC2086 # the rates, one a word
  for rate in $(printf '%s\n' $RATES "$AFTER_RATE" | sort -nu); do
    for s in $systems; do
      [ -n "$(col "$rate" "$s" 5)" ] || continue   # not measured at that rate (Sirius-after)
      loads=$(col "$rate" "$s" 4 | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {if (lo == hi) print lo; else print lo "–" hi}')
      echo "| $rate | $s | $loads | $(col "$rate" "$s" 5 | mmm %.1f) | $(col "$rate" "$s" 6 | mmm %d) | $(col "$rate" "$s" 7 | mmm %d)" \
           "| $(col "$rate" "$s" 8 | mmm %d) | $(col "$rate" "$s" 9 | mmm %.1f) | $(col "$rate" "$s" 10 | mmm %.1f)" \
           "| $(col "$rate" "$s" 11 | mmm %.1f) | $(col "$rate" "$s" 12 | mmm %.1f) | $(col "$rate" "$s" 13 | mmm %d)" \
           "| $(col "$rate" "$s" 14 | mmm %.1f) |"
    done
  done
  echo
  for s in $systems; do
    c=$(clean_rates "$s")
    if [ "$s" = Sirius-after ]; then
      verdict="not clean in every run"; [ -z "$c" ] || verdict="clean in every run"
      echo "* **Sirius right after the top rate** ($top cps, then at once $AFTER_RATE cps; *Sirius-after* rows): $verdict."
    else
      echo "* **$s clean** (0 failed, 0 503, 0 retransmissions) in every run at: ${c:-no rate}."
    fi
  done
  # Overload: at the first rate of at least twice the clean maximum.
  clean_max=$(clean_rates Sirius | tr ' ' '\n' | tail -1)
  if [ -n "$clean_max" ]; then
    over=$(echo "$RATES" | tr ' ' '\n' | sort -n | awk -v c="$clean_max" '$1 >= 2 * c {print; exit}')
    if [ -n "$over" ]; then
      med=$(col "$over" Sirius 5 | mmm %.1f | awk -F' / ' '{print (NF == 3) ? $2 : $1}')
      echo "* Overload: at $over cps offered (≥ 2× the clean maximum, $clean_max), Sirius's goodput (median) was $med calls/s," \
           "$(echo "scale=1; 100 * $med / $clean_max" | bc) % of the clean maximum (goal: ≥ 90 %)."
    else
      # sipp on this machine may not reach twice the clean maximum: say what
      # the top rate offered shows instead, as a ratio of it.
      med=$(col "$top" Sirius 5 | mmm %.1f | awk -F' / ' '{print (NF == 3) ? $2 : $1}')
      echo "* Overload: no rate of at least 2× the clean maximum ($clean_max cps) was offered. At the top rate," \
           "$top cps ($(echo "scale=2; $top / $clean_max" | bc)× the clean maximum), Sirius's goodput (median) was $med calls/s," \
           "$(echo "scale=1; 100 * $med / $clean_max" | bc) % of the clean maximum."
    fi
  fi
  sirius_clean=$(clean_rates Sirius)
  if [ -n "$sirius_clean" ]; then
    worst=$(for r in $sirius_clean; do col "$r" Sirius 12; done | grep -v n/a | sort -g | tail -1)
    echo "* Sirius's worst event-loop lag at the rates where it was clean in every run: ${worst:-n/a} ms."
  fi
  saturated=""
  for rate in $RATES; do
    med=$(col "$rate" direct 5 | mmm %.1f | awk -F' / ' '{print (NF == 3) ? $2 : $1}')
    if [ "$(echo "$med < $rate * 0.9" | bc)" = 1 ]; then saturated="$saturated $rate"; fi
  done
  if [ -n "$saturated" ]; then
    echo "* At${saturated} cps even sipp to sipp direct fell below 90 % of the offered rate (median): the load"
    echo "  generators saturate this machine there, so those rows do not measure Sirius's ceiling."
  fi
  echo
  echo "Goals (issue #11, 2 cores, sipp on the same machine): clean at ≥ 3,000 calls/s in every run from a cold start"
  echo "(Kamailio's level here), aiming at 6,000; ≤ 250 µs CPU per call; no event-loop stall over 20 ms below the clean"
  echo "maximum; at 2× the clean maximum, goodput ≥ 90 % of it; ≤ 10 KiB per held call at 4,000 held; RSS within 10 MB"
  echo "of idle a minute after the calls end."
  echo
  echo "## Memory per held call"
  echo
  echo "Per run, a fresh Sirius without call limits: $HELD_CALLS calls set up at $HELD_RATE/s and held $hold_ms ms, so"
  echo "that all are up at once. *KiB per held call* = (RSS at the peak − RSS idle before the calls) / calls up at the peak"
  echo "(two legs each: signalling state, both channels, their RTP sockets' user-space side); *after* = RSS ${AFTER_S} s"
  echo "after the last call ended."
  echo
  echo "| calls up at the peak | KiB per held call | RSS idle MB | RSS at the peak MB | RSS ${AFTER_S} s after MB | after − idle MB | threads at the peak |"
  echo "|---|---|---|---|---|---|---|"
  echo "| $(mcol 3 | mmm %d) | $(awk '{v = "n/a"; if ($3 > 0) v = ($4 - $2) / $3; print v}' "$mem" | mmm %.1f)" \
       "| $(awk '{print $2 / 1024}' "$mem" | mmm %.1f) | $(awk '{print $4 / 1024}' "$mem" | mmm %.1f)" \
       "| $(awk '{print $5 / 1024}' "$mem" | mmm %.1f) | $(awk '{print ($5 - $2) / 1024}' "$mem" | mmm %.1f) | $(mcol 6 | mmm %d) |"
  short=$(awk -v h="$HELD_CALLS" '$3 < h * 99 / 100' "$mem" | head -1)
  if [ -n "$short" ]; then
    read -r _ _ _ _ _ _ soft hard <<< "$short"
    echo
    echo "Not all $HELD_CALLS calls were up at once in every run: Sirius's open-files limit was $soft (hard limit $hard), and"
    echo "each call holds four sockets (an RTP and an RTCP socket per leg), so about $(( soft / 4 )) calls fit; the others"
    echo "were refused with 503 (no RTP port pair). \`maxfiles\` in sirius.toml raises the limit as far as the hard limit,"
    echo "or past it for root with CAP_SYS_RESOURCE, which this machine's container does not grant."
  fi
  echo
  echo "## Per run"
  echo
  echo "| run | offered cps | system | load | calls/s | failed | 503 | retrans | p50 ms | p99 ms | CPU µs/call | worst lag ms | unexpected | worst wait ms |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  awk '{printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; print ""}' "$raw"
  echo
  echo "| run | RSS idle kB | calls up at the peak | RSS at the peak kB | RSS ${AFTER_S} s after kB | threads | open files soft/hard |"
  echo "|---|---|---|---|---|---|---|"
  awk '{printf "| %s | %s | %s | %s | %s | %s | %s/%s |\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$mem"
} > "$report"
echo "wrote $report" >&2
# The first Python with matplotlib (a pyenv python3 may shadow Debian's).
for py in python3 /usr/bin/python3 ""; do
  if [ -n "$py" ] && "$py" -c 'import matplotlib' 2>/dev/null; then break; fi
done
if [ -n "$py" ]; then "$py" bench/plot_sip_calls.py || echo "no plot" >&2
else echo "no plot: matplotlib missing (apt-get install python3-matplotlib)" >&2; fi

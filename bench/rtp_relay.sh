#!/usr/bin/env bash
# RTP relay benchmark: CALLS concurrent bridged G.711 calls through Sirius,
# each carrying AUDIO_S (20) seconds of µ-law audio (packets of 20 ms) from the caller,
# sent by sipp's rtp_stream; the callee (sipp -rtp_echo) sends every packet
# back, so Sirius relays each packet twice (caller -> callee, callee ->
# caller) through its native bridge.
#
# The yardstick, in the same run: bench/c_relay.c (compiled here with gcc -O2),
# the least a relay can do (one thread, level-triggered epoll, one recvfrom
# and one sendto per packet), carries the same streams: the same sipp caller
# calls the sipp callee directly, the callee's answer (bench/uas_c_relay.xml)
# names the C relay's socket of the call, and the C relay forwards each packet
# to the echo and back, as Sirius's bridge does. Its CPU per packet is
# measured the same way, and each run gives the ratio.
#
# Not play_pcap_audio: sipp replays a pcap through a raw socket per call, and
# the kernel hands every UDP datagram on the machine to each open raw UDP
# socket, so with 1,000 calls half of every sendto (Sirius's included) was
# spent in raw_local_deliver: the benchmark measured sipp, not the relay.
#
#   bench/rtp_relay.sh                 # 3 runs of 1000 calls, each Sirius then the C relay
#   CALLS=200 RUNS=1 bench/rtp_relay.sh
#   SIP_PORT=46060 UAS_PORT=46070 UAC_PORT=46080 ECHO_PORT=49996 CALLER_PORT=42000 \
#     RTP_START=50000 RTP_END=54999 bench/rtp_relay.sh     # ports of one's own
#
# The C relay takes ECHO_PORT + 4 .. ECHO_PORT + 4 × CALLS + 2 (a pair every
# 4 ports), after Sirius has stopped: keep that clear of other programs and
# of CALLER_PORT (checked below).
# Reports relayed packets against the number sent, CPU per relayed packet
# (Sirius's with its signalling, so an upper bound) and the peak packet rate.
# Writes bench/report-rtp_relay.md (REPORT=… elsewhere). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS="${CALLS:-1000}"
RUNS="${RUNS:-3}"
RATE="${RATE:-200}"            # call setup rate
AUDIO_S="${AUDIO_S:-20}"       # long enough for seconds with every call streaming
HOLD_MS="${HOLD_MS:-$(( (AUDIO_S + 2) * 1000 ))}"   # longer than the audio
SIP_PORT="${SIP_PORT:-25060}"  # Sirius
UAS_PORT="${UAS_PORT:-25070}"  # the sipp callee
UAC_PORT="${UAC_PORT:-25080}"  # the sipp caller
ECHO_PORT="${ECHO_PORT:-26000}"      # the callee's echo socket (-mp)
# The caller's SDP port (-mp; 27000 before the C relay): below the echo, as
# the C relay's pairs take the ports above it.
CALLER_PORT="${CALLER_PORT:-25500}"
RTP_START="${RTP_START:-10000}"      # Sirius's RTP range (chan_sip's default)
RTP_END="${RTP_END:-20000}"
SIPTHREADS="${SIPTHREADS:-}"         # chan_sip's shards, each with a relay thread (default: one per core)
REPORT="${REPORT:-bench/report-rtp_relay.md}"
PKTS_PER_CALL=$(( AUDIO_S * 50 ))  # 20 ms packets
# Socket buffers for sipp's media sockets: its echo receives every call's
# packets on one socket, which overflows at the default size (the loss was
# all there). Capped by net.core.rmem_max.
RTP_BUF=4194304
if [ "$CALLER_PORT" -ge "$ECHO_PORT" ] && [ "$CALLER_PORT" -le $(( ECHO_PORT + 4 * CALLS + 3 )) ]; then
  echo "CALLER_PORT $CALLER_PORT is among the C relay's ports ($ECHO_PORT + 4 .. + 4 × CALLS + 2)" >&2; exit 1
fi
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 1; }
cargo build --release --workspace --quiet
work=$(mktemp -d)
gcc -O2 -Wall -o "$work/c_relay" bench/c_relay.c
# Processes started here, killed on exit (and untracked once waited for).
pids=()
old_rmem=$(sysctl -n net.core.rmem_default)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "$(id -u)" = 0 ] && sysctl -qw net.core.rmem_default="$old_rmem"
  rm -rf "$work"
}
trap cleanup EXIT
untrack() { local keep=() p; for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; pids=("${keep[@]}"); }
. bench/pbx.sh
write_pbx_config "" "rtpstart = $RTP_START"$'\n'"rtpend = $RTP_END${SIPTHREADS:+$'\n'sipthreads = $SIPTHREADS}"
sed -i "s/127.0.0.1:25060/127.0.0.1:$SIP_PORT/; s/^port = 25070/port = $UAS_PORT/" "$work/etc/sip.toml"
# µ-law silence (0xff): the relay neither decodes nor cares what it carries.
python3 -c "import sys; sys.stdout.buffer.write(b'\xff' * 160 * $PKTS_PER_CALL)" > "$work/ulaw.raw"
# Datagrams the kernel dropped on the UDP sockets bound to ports $1..$2 (a
# full receive buffer), from /proc/net/udp; counted while the sockets are open.
udp_drops() {
  python3 - "$1" "$2" <<'PY'
import sys
lo, hi = int(sys.argv[1]), int(sys.argv[2])
n = 0
for line in open("/proc/net/udp").readlines()[1:]:
    f = line.split()
    if lo <= int(f[1].split(":")[1], 16) <= hi:
        n += int(f[-1])
print(n)
PY
}
# The sipp echo socket ignores -rtp_buffsize: as root, raise the default
# receive buffer for the run (restored on exit), as the harness lessons say.
[ "$(id -u)" = 0 ] && sysctl -qw net.core.rmem_default="$RTP_BUF"
hz=$(getconf CLK_TCK)
load() { cut -d' ' -f1 /proc/loadavg; }

# One measured step: the callee (scenario $2, "" for sipp's uas), the caller
# calling $3, while $1 (a pid) relays; `counted` prints its packets relayed
# so far; $4..$5 its ports, for the drops; $6 its label, $7 the run. Adds
# one row to $rows (run, label, load,
# calls completed, packets to relay, relayed, loss %, drops at the relay,
# drops at the echo, peak packets/s, CPU µs per packet whole step, steady
# seconds, CPU µs per packet steady state.
step() {
  local rpid=$1 scen=$2 target=$3 lo=$4 hi=$5 label=$6 run=$7
  local l0; l0=$(load)
  local sf=(-sn uas); [ -n "$scen" ] && sf=(-sf "$scen")
  sipp "${sf[@]}" -p "$UAS_PORT" -i 127.0.0.1 -nostdin -m "$CALLS" -timeout 120s -rtp_echo \
      -mp "$ECHO_PORT" -rtp_buffsize "$RTP_BUF" -buff_size 8388608 > "$work/uas.out" 2>&1 &
  local uas=$!; pids+=("$uas")
  sleep 0.3
  local r0 t0 start; r0=$(counted); t0=$(cpu_ticks "$rpid"); start=$(date +%s.%N)
  local peak_rate=0 last_r=$r0 last_t=$start last_c=$t0 relay_drops=0 echo_drops=0
  : > "$work/seconds"   # per sample: packets/s, CPU ticks, packets relayed
  (cd "$work" && exec timeout 180 sipp "$target" -sf "$OLDPWD/bench/uac_media.xml" -s 1000 -p "$UAC_PORT" -i 127.0.0.1 \
      -mp "$CALLER_PORT" -rtp_buffsize "$RTP_BUF" -nostdin -r "$RATE" -m "$CALLS" -d "$HOLD_MS" -buff_size 8388608 \
      -default_behaviors all,-abortunexp -timeout 120s > "$work/uac.out" 2>&1) &
  local uac=$!; pids+=("$uac")
  while kill -0 "$uac" 2>/dev/null; do
    sleep 1
    local now r c rate d
    now=$(date +%s.%N); r=$(counted); c=$(cpu_ticks "$rpid")
    rate=$(echo "($r - $last_r) / ($now - $last_t)" | bc)
    [ "$rate" -gt "$peak_rate" ] && peak_rate=$rate
    echo "$rate $(( c - last_c )) $(( r - last_r ))" >> "$work/seconds"
    last_r=$r; last_t=$now; last_c=$c
    d=$(udp_drops "$lo" "$hi"); [ "$d" -gt "$relay_drops" ] && relay_drops=$d
    d=$(udp_drops "$ECHO_PORT" "$ECHO_PORT"); [ "$d" -gt "$echo_drops" ] && echo_drops=$d
  done
  wait "$uac" || true; untrack "$uac"
  local r1 t1; r1=$(counted); t1=$(cpu_ticks "$rpid")
  kill "$uas" 2>/dev/null || true; wait "$uas" 2>/dev/null || true; untrack "$uas"
  local ok sent got loss cpu_us
  ok=$(awk -F'|' '/Successful call/ {gsub(/ /,"",$3); print $3}' "$work/uac.out" | tail -1)
  if [ "${ok:-0}" = 0 ]; then
    echo "run $run, $label: no call completed; the caller said:" >&2
    tail -5 "$work/uac.out" >&2
  fi
  sent=$(( ${ok:-0} * PKTS_PER_CALL * 2 ))
  got=$(( r1 - r0 ))
  loss=$(echo "scale=2; 100 * ($sent - $got) / ($sent + 0.001)" | bc)
  cpu_us=$(echo "scale=2; ($t1 - $t0) / $hz * 1000000 / ($got + 1)" | bc)
  # Steady state: the samples where the packet rate was within 10 % of its peak
  # (every call up and streaming; no call set up or torn down), as the harness
  # lessons ask: the relay's own cost, without the calls' signalling.
  local steady_s steady_us
  read -r steady_s steady_us < <(awk -v peak="$peak_rate" -v hz="$hz" \
    '$1 >= 0.9 * peak {n++; t += $2; p += $3} END {if (p > 0) printf "%d %.2f\n", n, t / hz * 1000000 / p; else print "0 n/a"}' \
    "$work/seconds")
  echo "$run $label $l0 ${ok:-0} $sent $got $loss $relay_drops $echo_drops $peak_rate $cpu_us $steady_s $steady_us" | tee -a "$rows"
}

rows="$work/rows"; : > "$rows"
for run in $(seq "$RUNS"); do
  # Sirius: a fresh daemon (cold start), the sipp caller calls it.
  start_pbx; pids+=("$pid")
  counted() { rx "sip show settings" | awk -F: '/RTP packets relayed/ {print $2 + 0}'; }
  step "$pid" "" "127.0.0.1:$SIP_PORT" "$RTP_START" "$RTP_END" sirius "$run"
  stop_pbx; untrack "$pid"
  # The C relay: the caller calls the callee, whose answer sends the media
  # through the C relay's pair for the call.
  "$work/c_relay" $(( ECHO_PORT + 4 )) "$CALLS" "$ECHO_PORT" "$CALLER_PORT" > "$work/c_relay.out" 2> "$work/c_relay.err" &
  cpid=$!; pids+=("$cpid")
  for _ in $(seq 100); do grep -q pairs "$work/c_relay.err" && break; kill -0 "$cpid" || break; sleep 0.1; done
  grep -q pairs "$work/c_relay.err" || { cat "$work/c_relay.err" >&2; exit 1; }
  # Asked, not read from a periodic print: a count up to a second old made
  # the per-second rates jump. SIGUSR1 makes it print its count at once.
  counted() {
    local n; n=$(wc -l < "$work/c_relay.out")
    kill -USR1 "$cpid"
    while [ "$(wc -l < "$work/c_relay.out")" -le "$n" ]; do sleep 0.01; done
    tail -1 "$work/c_relay.out"
  }
  step "$cpid" "bench/uas_c_relay.xml" "127.0.0.1:$UAS_PORT" $(( ECHO_PORT + 4 )) $(( ECHO_PORT + 4 * CALLS + 2 )) c_relay "$run"
  kill "$cpid"; wait "$cpid" 2>/dev/null || true; untrack "$cpid"
done

# min / median / max of column $2 of the rows labelled $1 (one value when all
# agree), over the steps in which calls completed (a failed step is in the
# per-run rows, not in the figures).
spread() {
  awk -v l="$1" -v c="$2" '$2 == l && $4 > 0 && $c ~ /^[0-9.]+$/ {print $c}' "$rows" | sort -g | awk '
    {v[NR] = $1} END {
      if (NR == 0) { print "n/a"; exit }
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      if (v[1] == v[NR]) print v[1]; else printf "%s / %s / %s\n", v[1], m, v[NR] }'
}
# Per run, Sirius's steady-state µs per packet over the C relay's.
ratios=$(awk '$4 > 0 && $2 == "sirius" {s[$1] = $13} $4 > 0 && $2 == "c_relay" {c[$1] = $13}
  END {for (r in s) if (r in c && s[r] > 0 && c[r] > 0) printf "%s %.2f\n", r, s[r] / c[r]}' "$rows" | sort -n)
ratio_spread=$(echo "$ratios" | awk '{print $2}' | sort -g | awk '
  {v[NR] = $1} END {
    if (NR == 0) { print "n/a"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    if (v[1] == v[NR]) print v[1]; else printf "%s / %s / %s\n", v[1], m, v[NR] }')
{
  echo "# RTP relay benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, commit $(git describe --always --dirty), $RUNS runs."
  echo "$CALLS calls set up at $RATE/s, each held ${HOLD_MS} ms; the caller streams ${AUDIO_S} s of G.711 µ-law with sipp's"
  echo "rtp_stream ($PKTS_PER_CALL packets), the callee echoes every packet: each packet crosses the relay twice."
  echo "Each run: a fresh Sirius, then the minimal C relay (bench/c_relay.c) carrying the same streams."
  echo
  echo "| | Sirius | C relay |"
  echo "|---|---|---|"
  echo "| CPU µs per relayed packet, steady state (min / median / max) | $(spread sirius 13) | $(spread c_relay 13) |"
  echo "| CPU µs per relayed packet, whole run | $(spread sirius 11) | $(spread c_relay 11) |"
  echo "| peak relayed packets/s | $(spread sirius 10) | $(spread c_relay 10) |"
  echo "| loss % | $(spread sirius 7) | $(spread c_relay 7) |"
  echo "| load before the step (1 min) | $(spread sirius 3) | $(spread c_relay 3) |"
  echo
  echo "**Sirius / C relay, CPU per packet in the steady state, per run: $ratio_spread** (min / median / max"
  echo "over the runs where both completed their calls)."
  echo
  echo "Per run:"
  echo
  echo "| run | relay | load | calls completed | packets to relay | relayed | loss % | dropped at the relay's sockets | dropped at sipp's echo | peak relayed packets/s | CPU µs per packet, whole run | steady seconds | CPU µs per packet, steady state |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  awk '{printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; print ""}' "$rows"
  echo
  echo "Loss counts packets that did not cross the relay, lost anywhere on the loopback path; the two"
  echo "drop columns say where (receive buffers full, sampled from /proc/net/udp once a second while"
  echo "the calls were up, so a socket closed between samples is not counted). The whole-run CPU figure divides"
  echo "all of the relay process's CPU time in the step (for Sirius, call setup and teardown included) by the packets"
  echo "relayed; the steady state figure counts only the one-second samples in which the packet rate was within 10 %"
  echo "of its peak (all calls up and streaming, none being set up or torn down). *load*: the machine's 1-minute load"
  echo "average before the step (2 cores, shared)."
  echo "net.core.rmem_default during the run: $(sysctl -n net.core.rmem_default) (sipp's echo socket takes the default)."
} > "$REPORT"
cat "$REPORT"

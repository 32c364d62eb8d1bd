#!/usr/bin/env bash
# RTP relay benchmark: CALLS concurrent bridged G.711 calls through Sirius,
# each carrying sipp's own g711a.pcap (236 packets over 7 s) from the caller;
# the callee (sipp -rtp_echo) sends every packet back, so Sirius relays each
# packet twice (caller -> callee, callee -> caller) through its native bridge.
#
#   bench/rtp_relay.sh                 # 1000 calls
#   CALLS=200 bench/rtp_relay.sh
#
# Reports relayed packets against the number sent, Sirius CPU per relayed
# packet (signalling included, so an upper bound), and the peak packet rate.
# Appends to bench/report-rtp_relay.md (rewritten each run). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS="${CALLS:-1000}"
RATE="${RATE:-200}"            # call setup rate
HOLD_MS="${HOLD_MS:-9000}"     # longer than the 7 s of audio
PCAP=/usr/share/sip-tester/g711a.pcap
PKTS_PER_CALL=236
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 1; }
[ -r "$PCAP" ] || { echo "$PCAP missing (Debian's sip-tester ships it)" >&2; exit 1; }
cargo build --release --workspace --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
. bench/pbx.sh
write_pbx_config
start_pbx
relayed() { rx "sip show settings" | awk -F: '/RTP packets relayed/ {print $2 + 0}'; }
hz=$(getconf CLK_TCK)

sipp -sn uas -p 25070 -i 127.0.0.1 -nostdin -m "$CALLS" -timeout 120s -rtp_echo -mp 26000 \
    -buff_size 8388608 > "$work/uas.out" 2>&1 &
uas=$!
sleep 0.3
r0=$(relayed); t0=$(cpu_ticks "$pid"); start=$(date +%s.%N)
peak_rate=0; last_r=$r0; last_t=$start
(timeout 180 sipp 127.0.0.1:25060 -sf "$PWD/bench/uac_media.xml" -s 1000 -p 25080 -i 127.0.0.1 -mp 27000 \
    -nostdin -r "$RATE" -m "$CALLS" -d "$HOLD_MS" -buff_size 8388608 \
    -default_behaviors all,-abortunexp -timeout 120s > "$work/uac.out" 2>&1 || true) &
uac=$!
while kill -0 "$uac" 2>/dev/null; do
  sleep 1
  now=$(date +%s.%N); r=$(relayed)
  rate=$(echo "($r - $last_r) / ($now - $last_t)" | bc)
  [ "$rate" -gt "$peak_rate" ] && peak_rate=$rate
  last_r=$r; last_t=$now
done
r1=$(relayed); t1=$(cpu_ticks "$pid"); end=$(date +%s.%N)
kill "$uas" 2>/dev/null || true
ok=$(awk -F'|' '/Successful call/ {gsub(/ /,"",$3); print $3}' "$work/uac.out" | tail -1)
sent=$(( ${ok:-0} * PKTS_PER_CALL * 2 ))
got=$(( r1 - r0 ))
loss=$(echo "scale=2; 100 * ($sent - $got) / ($sent + 0.001)" | bc)
cpu_us=$(echo "scale=1; ($t1 - $t0) / $hz * 1000000 / ($got + 1)" | bc)
report=bench/report-rtp_relay.md
{
  echo "# RTP relay benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "$CALLS calls set up at $RATE/s, each held ${HOLD_MS} ms; the caller plays sipp's g711a.pcap"
  echo "($PKTS_PER_CALL packets over 7 s), the callee echoes every packet: each packet crosses Sirius's native bridge twice."
  echo
  echo "| calls completed | packets to relay | relayed | loss % | peak relayed packets/s | Sirius CPU µs per relayed packet (signalling included) |"
  echo "|---|---|---|---|---|---|"
  echo "| ${ok:-0} | $sent | $got | $loss | $peak_rate | $cpu_us |"
  echo
  echo "Loss counts packets that did not cross Sirius (lost anywhere on the loopback path, the"
  echo "sipp echo included); the CPU figure divides all of Sirius's CPU time in the run by the packets relayed."
} > "$report"
stop_pbx
cat "$report"

#!/usr/bin/env bash
# RTP relay benchmark: CALLS concurrent bridged G.711 calls through Sirius,
# each carrying AUDIO_S (20) seconds of µ-law audio (packets of 20 ms) from the caller,
# sent by sipp's rtp_stream; the callee (sipp -rtp_echo) sends every packet
# back, so Sirius relays each packet twice (caller -> callee, callee ->
# caller) through its native bridge.
#
# Not play_pcap_audio: sipp replays a pcap through a raw socket per call, and
# the kernel hands every UDP datagram on the machine to each open raw UDP
# socket, so with 1,000 calls half of every sendto (Sirius's included) was
# spent in raw_local_deliver: the benchmark measured sipp, not the relay.
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
AUDIO_S="${AUDIO_S:-20}"       # long enough for seconds with every call streaming
HOLD_MS="${HOLD_MS:-$(( (AUDIO_S + 2) * 1000 ))}"   # longer than the audio
PKTS_PER_CALL=$(( AUDIO_S * 50 ))  # 20 ms packets
# Socket buffers for sipp's media sockets: its echo receives every call's
# packets on one socket, which overflows at the default size (the loss was
# all there). Capped by net.core.rmem_max.
RTP_BUF=4194304
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 1; }
cargo build --release --workspace --quiet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
. bench/pbx.sh
write_pbx_config
start_pbx
# µ-law silence (0xff): the relay neither decodes nor cares what it carries.
python3 -c "import sys; sys.stdout.buffer.write(b'\xff' * 160 * $PKTS_PER_CALL)" > "$work/ulaw.raw"
relayed() { rx "sip show settings" | awk -F: '/RTP packets relayed/ {print $2 + 0}'; }
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
# Sirius's RTP ports (chan_sip's default rtpstart/rtpend) and the callee's echo
# socket. (The caller's media port 27000 is not read by sipp at all: echoed
# packets end there after crossing Sirius twice, and pile up as drops.)
sirius_drops=0; sipp_drops=0
# The sipp echo socket ignores -rtp_buffsize: as root, raise the default
# receive buffer for the run (restored on exit), as the harness lessons say.
old_rmem=$(sysctl -n net.core.rmem_default)
if [ "$(id -u)" = 0 ]; then
  sysctl -qw net.core.rmem_default="$RTP_BUF"
  trap 'sysctl -qw net.core.rmem_default="$old_rmem"; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
fi
hz=$(getconf CLK_TCK)

sipp -sn uas -p 25070 -i 127.0.0.1 -nostdin -m "$CALLS" -timeout 120s -rtp_echo -mp 26000 \
    -rtp_buffsize "$RTP_BUF" -buff_size 8388608 > "$work/uas.out" 2>&1 &
uas=$!
sleep 0.3
r0=$(relayed); t0=$(cpu_ticks "$pid"); start=$(date +%s.%N)
peak_rate=0; last_r=$r0; last_t=$start; last_c=$t0
: > "$work/seconds"   # per sample: packets/s, Sirius CPU ticks, packets relayed
(cd "$work" && timeout 180 sipp 127.0.0.1:25060 -sf "$OLDPWD/bench/uac_media.xml" -s 1000 -p 25080 -i 127.0.0.1 -mp 27000 \
    -rtp_buffsize "$RTP_BUF" -nostdin -r "$RATE" -m "$CALLS" -d "$HOLD_MS" -buff_size 8388608 \
    -default_behaviors all,-abortunexp -timeout 120s > "$work/uac.out" 2>&1 || true) &
uac=$!
while kill -0 "$uac" 2>/dev/null; do
  sleep 1
  now=$(date +%s.%N); r=$(relayed); c=$(cpu_ticks "$pid")
  rate=$(echo "($r - $last_r) / ($now - $last_t)" | bc)
  [ "$rate" -gt "$peak_rate" ] && peak_rate=$rate
  echo "$rate $(( c - last_c )) $(( r - last_r ))" >> "$work/seconds"
  last_r=$r; last_t=$now; last_c=$c
  d=$(udp_drops 10000 20000); [ "$d" -gt "$sirius_drops" ] && sirius_drops=$d
  d=$(udp_drops 26000 26000); [ "$d" -gt "$sipp_drops" ] && sipp_drops=$d
done
r1=$(relayed); t1=$(cpu_ticks "$pid"); end=$(date +%s.%N)
kill "$uas" 2>/dev/null || true
ok=$(awk -F'|' '/Successful call/ {gsub(/ /,"",$3); print $3}' "$work/uac.out" | tail -1)
sent=$(( ${ok:-0} * PKTS_PER_CALL * 2 ))
got=$(( r1 - r0 ))
loss=$(echo "scale=2; 100 * ($sent - $got) / ($sent + 0.001)" | bc)
cpu_us=$(echo "scale=1; ($t1 - $t0) / $hz * 1000000 / ($got + 1)" | bc)
# Steady state: the samples where the packet rate was within 10 % of its peak
# (every call up and streaming; no call set up or torn down), as the harness
# lessons ask: the relay's own cost, without the calls' signalling.
read -r steady_s steady_us < <(awk -v peak="$peak_rate" -v hz="$hz" \
  '$1 >= 0.9 * peak {n++; t += $2; p += $3} END {if (p > 0) printf "%d %.1f\n", n, t / hz * 1000000 / p; else print "0 n/a"}' \
  "$work/seconds")
report=bench/report-rtp_relay.md
{
  echo "# RTP relay benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "$CALLS calls set up at $RATE/s, each held ${HOLD_MS} ms; the caller streams ${AUDIO_S} s of G.711 µ-law with sipp's"
  echo "rtp_stream ($PKTS_PER_CALL packets), the callee echoes every packet: each packet crosses Sirius's native bridge twice."
  echo
  echo "| calls completed | packets to relay | relayed | loss % | dropped at Sirius's sockets | dropped at sipp's echo | peak relayed packets/s | Sirius CPU µs per relayed packet, whole run (signalling included) | Sirius CPU µs per relayed packet, steady state |"
  echo "|---|---|---|---|---|---|---|---|---|"
  echo "| ${ok:-0} | $sent | $got | $loss | $sirius_drops | $sipp_drops | $peak_rate | $cpu_us | $steady_us |"
  echo
  echo "Loss counts packets that did not cross Sirius, lost anywhere on the loopback path; the two"
  echo "drop columns say where (receive buffers full, sampled from /proc/net/udp once a second while"
  echo "the calls were up, so a socket closed between samples is not counted). The CPU figure divides"
  echo "all of Sirius's CPU time in the run (call setup and teardown included) by the packets relayed; the steady"
  echo "state figure counts only the $steady_s one-second samples in which the packet rate was within 10 % of its peak"
  echo "(all calls up and streaming, none being set up or torn down)."
  echo "net.core.rmem_default during the run: $(sysctl -n net.core.rmem_default) (sipp's echo socket takes the default)."
} > "$report"
stop_pbx
cat "$report"

# shellcheck shell=bash disable=SC2154 # $work is set by the script that sources this
# Shared by the benchmark scripts (sourced, not run): a throw-away Sirius
# configuration in $work — UAC peer on 25060 whose calls Dial the UAS peer on
# 127.0.0.1:25070 — and starting/stopping the release daemon on it.
# SIP_PORT and UAS_PORT override those two ports (a run beside another
# benchmark); WRAP runs the daemon under a tool (heaptrack, valgrind).

# Writes $work/etc; extra lines for sirius.toml's [general] in $1, for
# sip.toml's [general] in $2.
write_pbx_config() {
  mkdir -p "$work/etc"
  cat > "$work/etc/sirius.toml" <<CONF
[general]
verbose = 0
${1:-}
[directories]
modules = "$PWD/target/release"
run = "$work/run"
log = "$work/log"
data = "$work/lib"
CONF
  printf 'autoload = false\nload = ["chan_sip"]\n' > "$work/etc/modules.toml"
  cat > "$work/etc/sip.toml" <<CONF
[general]
udpbindaddr = "127.0.0.1:${SIP_PORT:-25060}"
${2:-}
[peers.uac]
type = "peer"
host = "127.0.0.1"
insecure = ["invite", "port"]
context = "bench"
[peers.uas]
type = "peer"
host = "127.0.0.1"
port = ${UAS_PORT:-25070}
CONF
  printf '[bench]\n"_X." = ["Dial(SIP/uas,10)", "Hangup()"]\n' > "$work/etc/extensions.toml"
}

# Starts the daemon on $work/etc; sets $pid once its console answers.
start_pbx() {
  rm -rf "$work/run"
  # shellcheck disable=SC2086 # WRAP is a command line, split on purpose
  ${WRAP:-} "$PWD/target/release/sirius" -f -C "$work/etc" > "$work/sirius-$RANDOM.out" 2>&1 &
  pid=$!
  for _ in $(seq 50); do [ -S "$work/run/sirius.ctl" ] && break; sleep 0.1; done
  sleep 0.5
}

# A console command on the running daemon.
rx() { "$PWD/target/release/sirius" -C "$work/etc" -rx "$1"; }

stop_pbx() {
  rx "core stop now" > /dev/null || true
  wait "$pid" 2>/dev/null || true
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

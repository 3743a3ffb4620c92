#!/bin/bash
# Throughput of mptun against Linux MPTCP over TUN devices, one and two paths, both
# directions, of kernel MPTCP to kernel MPTCP over a veth pair and the raw per-packet write
# rate of a TUN device (tools/tun_rate.rs; once into a socket that is never read, once into
# one a second thread drains), in the same run; prints
# one line per case and the ratios issue 9 asks for. Unshaped, MTU 1500 unless MTU is set.
# Everything runs in namespaces this script creates and deletes (addresses 198.18.0.0/15).
#
# usage (root, from the project root, after `cargo build --release`):
#   tools/throughput.sh [MIB] [extra mptun args, e.g. --no-offload]
# env: MPTUN=path to the binary, MTU=device MTU (default 1500), RUNS=repetitions (default 1)
set -u
MIB=${1:-512}; shift || true
EXTRA="$*"
EXE=${MPTUN:-target/release/mptun}
MTU=${MTU:-1500}
RUNS=${RUNS:-1}
BYTES=$((MIB * 1024 * 1024))
TAG=tp$$
NSS=()
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for n in "${NSS[@]:-}"; do [ -n "$n" ] && ip netns del "$n" 2>/dev/null; done
  rm -f /tmp/$TAG.*
}
trap cleanup EXIT
# a sparse file of zeros: mptun reads it with no disk I/O
truncate -s $BYTES /tmp/$TAG.src
# read it once so that its (zero) pages are in the page cache: otherwise the first upload
# pays for allocating them and measured 2.4-2.9 Gbit/s where the next ones reach 7-10
cat /tmp/$TAG.src > /dev/null

mbit() { awk -v b=$BYTES -v s="$1" 'BEGIN { if (s > 0) printf "%.0f", b * 8 / s / 1e6; else print 0 }'; }

# mptun <-> Linux over N TUN devices. $1 = down (Linux sends) | up (mptun sends), $2 = N
mptun_case() {
  local dir=$1 n=$2 ns=$TAG-$1-$2 tuns="" ann=""
  ip netns add $ns; NSS+=($ns)
  ip netns exec $ns ip link set lo up
  ip netns exec $ns sysctl -qw net.ipv4.conf.all.rp_filter=0 net.mptcp.enabled=1
  for i in $(seq 0 $((n - 1))); do
    ip netns exec $ns ip tuntap add dev tun$i mode tun
    ip netns exec $ns ip link set tun$i mtu $MTU
    ip netns exec $ns ip addr add 198.18.$((i + 1)).1/24 dev tun$i
    ip netns exec $ns ip link set tun$i up
    tuns="$tuns --tun tun$i=198.18.$((i + 1)).2"
  done
  ip netns exec $ns ip mptcp limits set subflows 4 add_addr_accepted 4
  [ $n -gt 1 ] && ann=--announce
  local t0 t1 rc
  if [ $dir = down ]; then
    ip netns exec $ns timeout 120 $EXE listen $tuns --port 5201 --once $ann --output /dev/null $EXTRA \
      > /tmp/$TAG.mptun 2>&1 &
    PIDS+=($!)
    sleep 0.3
    t0=$(date +%s.%N)
    ip netns exec $ns timeout 120 $EXE linux-peer --connect 198.18.1.2:5201 --bytes $BYTES \
      --connect-retries 100 > /tmp/$TAG.peer 2>&1
    rc=$?
    wait
    t1=$(date +%s.%N)
  else
    ip netns exec $ns timeout 120 $EXE linux-peer --listen 0.0.0.0:5201 > /tmp/$TAG.peer 2>&1 &
    PIDS+=($!)
    sleep 0.3
    t0=$(date +%s.%N)
    ip netns exec $ns timeout 120 $EXE connect $tuns 198.18.1.1:5201 --input /tmp/$TAG.src \
      --output /dev/null $EXTRA > /tmp/$TAG.mptun 2>&1
    rc=$?
    wait
    t1=$(date +%s.%N)
  fi
  local retr segs drop=0
  retr=$(ip netns exec $ns nstat -az TcpRetransSegs | awk '/TcpRetransSegs/ {print $2}')
  segs=$(ip netns exec $ns nstat -az TcpOutSegs | awk '/TcpOutSegs/ {print $2}')
  for i in $(seq 0 $((n - 1))); do
    drop=$((drop + $(ip netns exec $ns cat /sys/class/net/tun$i/statistics/tx_dropped)))
  done
  ip netns del $ns
  local got
  got=$(grep -o 'goodput=[0-9.]*' /tmp/$TAG.mptun | head -1 | cut -d= -f2)
  [ $rc -eq 0 ] || got="FAILED(rc=$rc)"
  echo "${got:-0}|${retr:-0}|${segs:-0}|$drop"
}

# kernel MPTCP to kernel MPTCP over one veth pair between two namespaces
kernel_case() {
  local a=$TAG-ka b=$TAG-kb
  ip netns add $a; NSS+=($a); ip netns add $b; NSS+=($b)
  ip link add $TAG-va netns $a type veth peer name $TAG-vb netns $b
  ip netns exec $a ip link set lo up; ip netns exec $b ip link set lo up
  ip netns exec $a ip link set $TAG-va mtu $MTU up
  ip netns exec $b ip link set $TAG-vb mtu $MTU up
  ip netns exec $a ip addr add 198.18.9.1/24 dev $TAG-va
  ip netns exec $b ip addr add 198.18.9.2/24 dev $TAG-vb
  ip netns exec $b timeout 120 $EXE linux-peer --listen 198.18.9.2:5201 > /tmp/$TAG.kpeer 2>&1 &
  PIDS+=($!)
  sleep 0.3
  local t0 t1
  t0=$(date +%s.%N)
  ip netns exec $a timeout 120 $EXE linux-peer --connect 198.18.9.2:5201 --bytes $BYTES \
    --connect-retries 100 > /tmp/$TAG.kc 2>&1
  wait
  t1=$(date +%s.%N)
  ip netns del $a; ip netns del $b
  mbit "$(awk -v a=$t0 -v b=$t1 'BEGIN { print b - a }')"
}

# raw per-packet write rate of a TUN device (one write() per MTU-sized packet, no offload):
# the bound issue 9 compares mptun's --no-offload throughput with
raw_case() {
  local ns=$TAG-raw
  ip netns add $ns; NSS+=($ns)
  ip netns exec $ns ip link set lo up
  ip netns exec $ns ip tuntap add dev tun0 mode tun
  ip netns exec $ns ip link set tun0 mtu $MTU
  ip netns exec $ns ip addr add 198.18.1.1/24 dev tun0
  ip netns exec $ns ip link set tun0 up
  ip netns exec $ns timeout 60 ${TUNRATE:-target/release/tun-rate} --tun tun0 --src 198.18.1.2 \
    --dst 198.18.1.1 --size $MTU --seconds 3 ${1:-} | grep -o 'mbit=[0-9]*' | cut -d= -f2
  ip netns del $ns
}

echo "throughput: $MIB MiB per transfer, MTU $MTU, mptun args: '${EXTRA}', $RUNS run(s)"
printf "%-24s %12s %10s %12s %10s\n" case Mbit/s retrans segs tx_drop
for r in $(seq 1 $RUNS); do
  k=$(kernel_case)
  printf "%-24s %12s\n" "kernel-veth" "$k"
  raw=$(raw_case)
  printf "%-24s %12s\n" "raw-tun-writes" "${raw:-0}"
  rawd=$(raw_case --drain)
  printf "%-24s %12s\n" "raw-tun-writes-drained" "${rawd:-0}"
  declare -A G
  for c in "down 1" "down 2" "up 1" "up 2"; do
    set -- $c
    IFS='|' read -r g retr segs drop <<< "$(mptun_case $1 $2)"
    G["$1$2"]=$g
    printf "%-24s %12s %10s %12s %10s\n" "mptun-$1-${2}path" "$g" "$retr" "$segs" "$drop"
  done
  awk -v k="$k" -v r="${raw:-0}" -v rd="${rawd:-0}" -v d1="${G[down1]}" -v d2="${G[down2]}" -v u1="${G[up1]}" -v u2="${G[up2]}" 'BEGIN {
    printf "ratios: down1/kernel=%.2f up1/kernel=%.2f down2/down1=%.2f up2/up1=%.2f",
      d1 / k, u1 / k, d2 / d1, u2 / u1
    if (r > 0) printf " up1/raw-tun=%.2f down1/raw-tun=%.2f", u1 / r, d1 / r
    if (rd > 0) printf " up1/raw-drained=%.2f down1/raw-drained=%.2f", u1 / rd, d1 / rd
    printf "\n" }'
done

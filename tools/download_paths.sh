#!/bin/bash
# Kept in tools/ so docs/PERFORMANCE.md numbers can be reproduced: run as root from the
# project root after `cargo build --release`; prints mptun's summary, the Linux sender's
# counters and the TUN devices' tx_dropped.
# Linux -> mptun download over 1 or 2 paths, unshaped, in a namespace of its own.
# usage: tools/download_paths.sh NPATHS MIB
set -u
usage() {
  echo "usage: tools/download_paths.sh NPATHS MIB   (as root, from the project root)"
  echo "Linux -> mptun download of MIB MiB over NPATHS TUN paths in a namespace of its own;"
  echo "env: MPTUN (binary, default target/release/mptun), OUT (output dir, default /tmp),"
  echo "EXTRA (more mptun listen options)."
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
if [ $# -ne 2 ] || ! [[ $1 =~ ^[1-9]$ ]] || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
  usage >&2; exit 2
fi
N=$1; MIB=$2; NS=tp-$$-$N
EXE=${MPTUN:-target/release/mptun}
ip netns add $NS
MPID=
trap '[ -n "$MPID" ] && kill $MPID 2>/dev/null; ip netns del $NS' EXIT
ip netns exec $NS ip link set lo up
ip netns exec $NS sysctl -qw net.ipv4.conf.all.rp_filter=0 net.mptcp.enabled=1
TUNS=""
for i in $(seq 0 $((N-1))); do
  ip netns exec $NS ip tuntap add dev tun$i mode tun
  ip netns exec $NS ip addr add 198.18.$((i+1)).1/24 dev tun$i
  ip netns exec $NS ip link set tun$i up
  TUNS="$TUNS --tun tun$i=198.18.$((i+1)).2"
done
ip netns exec $NS ip mptcp limits set subflows 4 add_addr_accepted 4
ANN=""; [ $N -gt 1 ] && ANN=--announce
ip netns exec $NS nstat -n
ip netns exec $NS timeout 60 $EXE listen $TUNS --port 5201 --once $ANN --output /dev/null ${EXTRA:-} > ${OUT:-/tmp}/tp-mptun.$N.out 2>${OUT:-/tmp}/tp-mptun.$N.err &
MPID=$!
sleep 0.5
ip netns exec $NS timeout 60 $EXE linux-peer --connect 198.18.1.2:5201 --bytes $((MIB*1024*1024)) --connect-retries 100 > ${OUT:-/tmp}/tp-peer.$N.out 2>&1
wait
cat ${OUT:-/tmp}/tp-mptun.$N.out | tr ' ' '\n' | grep -E "duration|goodput|subflows|^sf" | tr '\n' ' '; echo
ip netns exec $NS nstat | grep -E "MPTcp|TcpOutSegs|TcpRetransSegs|NoDSSInWindow|DSSNotMatching|Timeouts|FastRetrans|SackRecover|DSACK|LossProbe|Reorder|SACKReneg|TCPLost|Spurious|OFO|Reneg" | tr -s ' ' | tr '\n' ';'; echo
for i in $(seq 0 $((N-1))); do echo -n "tun$i tx_dropped=$(ip netns exec $NS cat /sys/class/net/tun$i/statistics/tx_dropped) "; done; echo

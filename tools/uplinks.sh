#!/bin/bash
# Routed uplinks for mptun: one TUN device per named uplink, with an address, per-source
# routing (mptun's address on that TUN device leaves through that uplink only) and NAT.
# Prints every command it runs; --dry-run prints them without running them; --undo removes
# what the same arguments created. See docs/PROXY.md "Routed uplinks".
#
#   tools/uplinks.sh [--dry-run] [--undo] [--no-nat] [--first-net N] [--user USER] \
#                    NAME:DEV[:GATEWAY] ...
#
# Uplink i (0, 1, ...) NAME:DEV:GATEWAY gets
#   TUN device  mpt-NAME, kernel side 198.18.(N+i).1/24, mptun's address 198.18.(N+i).2
#   ip rule     from 198.18.(N+i).2 lookup table 1000+N+i (priority the same number)
#   table       default via GATEWAY dev DEV (default dev DEV without GATEWAY)
#   NAT         iptables -t nat POSTROUTING -s 198.18.(N+i).2 -o DEV -j MASQUERADE
# and net.ipv4.ip_forward=1 (left on by --undo). N is --first-net (default 100).
set -u

usage() {
  cat <<'EOF'
usage: tools/uplinks.sh [--dry-run] [--undo] [--no-nat] [--first-net N] [--user USER] NAME:DEV[:GATEWAY] ...

Creates, for each uplink i (in order), the TUN device mpt-NAME with the kernel address
198.18.(N+i).1/24, a rule sending what mptun's address 198.18.(N+i).2 sends through table
1000+N+i, a default route via GATEWAY on DEV in that table, and NAT (MASQUERADE) of that
address on DEV; enables net.ipv4.ip_forward. Prints every command, then the --tun options
for mptun. Needs root (iptables for NAT).

  --dry-run      print the commands, run nothing
  --undo         remove what the same arguments created (errors ignored)
  --no-nat       no MASQUERADE (the uplinks' networks route 198.18.(N+i).0/24 back)
  --first-net N  third octet of the first uplink's subnet (default 100; 0..254 minus count)
  --user USER    create the TUN devices for USER (mptun can then run without root)

example: tools/uplinks.sh wifi:wlan0:192.168.1.1 lte:wwan0
EOF
}

DRY=0; UNDO=0; NAT=1; FIRST=100; OWNER=""; UPLINKS=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --dry-run) DRY=1 ;;
    --undo) UNDO=1 ;;
    --no-nat) NAT=0 ;;
    --first-net) shift; FIRST=${1:-} ;;
    --user) shift; OWNER=${1:-} ;;
    -*) echo "uplinks.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) UPLINKS+=("$1") ;;
  esac
  shift
done
if [ ${#UPLINKS[@]} -eq 0 ]; then
  echo "uplinks.sh: no uplink given" >&2; usage >&2; exit 2
fi
if ! [[ $FIRST =~ ^[0-9]+$ ]] || [ $((FIRST + ${#UPLINKS[@]})) -gt 255 ]; then
  echo "uplinks.sh: --first-net must be a number with room for ${#UPLINKS[@]} subnets below 255" >&2
  exit 2
fi
if [ -n "$OWNER" ] && ! [[ $OWNER =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]]; then
  echo "uplinks.sh: bad --user $OWNER" >&2; exit 2
fi

NAMES=(); DEVS=(); GWS=()
for u in "${UPLINKS[@]}"; do
  IFS=: read -r name dev gw extra <<<"$u"
  if [ -n "${extra:-}" ] || ! [[ ${name:-} =~ ^[A-Za-z0-9_-]{1,11}$ ]] \
     || ! [[ ${dev:-} =~ ^[A-Za-z0-9_.@-]{1,15}$ ]] \
     || { [ -n "${gw:-}" ] && ! [[ $gw =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; }; then
    echo "uplinks.sh: bad uplink '$u' (NAME:DEV[:GATEWAY]: NAME 1-11 of A-Za-z0-9_-, DEV an interface, GATEWAY an IPv4 address)" >&2
    exit 2
  fi
  for n in "${NAMES[@]}"; do
    if [ "$n" = "$name" ]; then echo "uplinks.sh: uplink name $name given twice" >&2; exit 2; fi
  done
  NAMES+=("$name"); DEVS+=("$dev"); GWS+=("${gw:-}")
done

FAILED=0
# run CMD...: print it, then run it (unless --dry-run). Applying stops at the first error;
# undoing goes on (what is already gone fails harmlessly).
run() {
  echo "+ $*"
  [ $DRY -eq 1 ] && return 0
  if ! "$@"; then
    if [ $UNDO -eq 1 ]; then
      FAILED=1
    else
      echo "uplinks.sh: failed: $* (remove what was made with --undo and the same arguments)" >&2
      exit 1
    fi
  fi
}

if [ $DRY -eq 0 ] && [ "$(id -u)" != 0 ]; then
  echo "uplinks.sh: needs root (it creates TUN devices, routes and rules); try --dry-run" >&2
  exit 1
fi
if [ $DRY -eq 0 ] && [ $NAT -eq 1 ] && ! command -v iptables >/dev/null; then
  echo "uplinks.sh: iptables is not installed (needed for NAT; --no-nat if the uplinks route the TUN subnets back)" >&2
  exit 1
fi

TUNS=""
for i in "${!NAMES[@]}"; do
  net=$((FIRST + i)); table=$((1000 + FIRST + i))
  tun="mpt-${NAMES[$i]}"; dev=${DEVS[$i]}; gw=${GWS[$i]}
  kernel="198.18.$net.1"; mine="198.18.$net.2"
  if [ -n "$gw" ]; then via=(via "$gw" dev "$dev"); else via=(dev "$dev"); fi
  if [ $UNDO -eq 1 ]; then
    [ $NAT -eq 1 ] && run iptables -t nat -D POSTROUTING -s "$mine/32" -o "$dev" -j MASQUERADE
    run ip route del default "${via[@]}" table "$table"
    run ip rule del from "$mine" table "$table" priority "$table"
    run ip tuntap del dev "$tun" mode tun
  else
    [ "$i" = 0 ] && run sysctl -qw net.ipv4.ip_forward=1
    if [ -n "$OWNER" ]; then
      run ip tuntap add dev "$tun" mode tun user "$OWNER"
    else
      run ip tuntap add dev "$tun" mode tun
    fi
    run ip addr add "$kernel/24" dev "$tun"
    run ip link set "$tun" up
    run ip rule add from "$mine" table "$table" priority "$table"
    run ip route add default "${via[@]}" table "$table"
    [ $NAT -eq 1 ] && run iptables -t nat -A POSTROUTING -s "$mine/32" -o "$dev" -j MASQUERADE
  fi
  TUNS="$TUNS --tun $tun=$mine"
done

if [ $UNDO -eq 1 ]; then
  [ $FAILED -eq 1 ] && echo "uplinks.sh: some of it was not there (see the errors above)" >&2
  echo "removed (net.ipv4.ip_forward left as it is)"
else
  echo "mptun options:$TUNS"
fi
exit 0

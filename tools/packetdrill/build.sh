#!/usr/bin/env bash
# Builds packetdrill (multipath-tcp fork, ../shared/packetdrill) into a cache directory, for
# tests/packetdrill.rs. Usage: tools/packetdrill/build.sh OUT_DIR
# Leaves OUT_DIR/packetdrill (the binary), OUT_DIR/gtests/net/{mptcp,tcp} (the scripts) and
# OUT_DIR/packetdrill.h (the interface header the shim is compiled against). Does nothing if
# the binary is already there and newer than the tarball. Needs cc, make, bison, flex and
# OpenSSL's headers (libssl-dev); nothing is run as root and nothing is installed.
# Environment: PACKETDRILL_DIR (default: ../shared/packetdrill from the project root) holds
# packetdrill-mptcp.tar.gz and mptcp_utils-openssl.patch.
set -euo pipefail
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ] || [ $# -ne 1 ]; then
    echo "usage: tools/packetdrill/build.sh OUT_DIR" >&2
    [ $# -eq 1 ] && exit 0 || exit 2
fi
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="${PACKETDRILL_DIR:-$root/../shared/packetdrill}"
tarball="$src/packetdrill-mptcp.tar.gz"
patchfile="$src/mptcp_utils-openssl.patch"
out="$1"
for f in "$tarball" "$patchfile"; do
    [ -f "$f" ] || { echo "build.sh: $f not found (set PACKETDRILL_DIR)" >&2; exit 1; }
done
for t in cc make bison flex patch; do
    command -v "$t" >/dev/null || { echo "build.sh: $t not installed (apt-get install bison flex libssl-dev make patch gcc)" >&2; exit 1; }
done
# rebuilt when the tarball or this recipe changes
recipe="$(cat "$0" "$patchfile" | sha256sum | cut -c1-16)"
if [ -x "$out/packetdrill" ] && [ "$out/packetdrill" -nt "$tarball" ] &&
    [ "$(cat "$out/recipe" 2>/dev/null)" = "$recipe" ]; then
    exit 0
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$out/src"
rm -rf "$work"
mkdir -p "$work"
tar -xzf "$tarball" -C "$work"
cd "$work/gtests/net/packetdrill"
./configure >/dev/null
patch -p0 < "$patchfile" >/dev/null
# run.c puts packetdrill in SCHED_RR and mlockall(MCL_FUTURE)s it for wall-clock timing.
# With the shim's virtual clock neither is needed; as a user with the usual 8 MiB
# RLIMIT_MEMLOCK the locked process cannot even create its system-call thread, and a
# real-time spinner would starve the other jobs of a small CI machine. Both calls go.
sed -i -e 's/^\tset_scheduling_priority();$/\t\/* mptun: no SCHED_RR *\//' \
    -e 's/^\tlock_memory();$/\t\/* mptun: no mlockall *\//' run.c
grep -q 'mptun: no mlockall' run.c || { echo "build.sh: could not disable lock_memory in run.c" >&2; exit 1; }
make -j1 packetdrill \
    CFLAGS="-g -O1 -Wall -Wno-address-of-packed-member -Wno-deprecated-declarations -Wno-unused-function" \
    packetdrill-ext-libs="-lpthread -lrt -ldl -lz -lcrypto" >"$out/build.log" 2>&1 \
    || { tail -30 "$out/build.log" >&2; exit 1; }
cp packetdrill.h "$out/packetdrill.h"
rm -rf "$out/gtests"
mkdir -p "$out/gtests/net"
cp -r "$work/gtests/net/mptcp" "$work/gtests/net/tcp" "$work/gtests/net/common" "$out/gtests/net/"
cp packetdrill "$out/packetdrill.tmp"
mv "$out/packetdrill.tmp" "$out/packetdrill"
echo "$recipe" > "$out/recipe"

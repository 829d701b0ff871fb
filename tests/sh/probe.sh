#!/bin/sh
# The Makefile's probes answer both ways: `make probe` with the peers'
# headers, .pc file, gnuplot, prometheus and promtool and a Python with its
# header, pytest and numpy present in a made-up tree says yes to each,
# and without them no; `make lib` without a required package names it (and
# the command that installs it) before compiling anything.
# Run by `make check`; SRC and CC are set.
set -eu
unset MAKEFLAGS MFLAGS MAKELEVEL PKG_CONFIG_PATH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "probe.sh: $*" >&2; exit 1; }

# with: every peer; without: none.  -nostdinc: only the made-up tree counts.
mkdir -p "$tmp/with/inc/iceoryx/v9.9.9/iceoryx_binding_c" "$tmp/with/pc" "$tmp/with/bin" \
	"$tmp/without/inc" "$tmp/without/pc" "$tmp/without/bin"
: >"$tmp/with/inc/ck_ring.h"
: >"$tmp/with/inc/iceoryx/v9.9.9/iceoryx_binding_c/runtime.h"
printf 'Name: libdpdk\nDescription: fake\nVersion: 22.11\nCflags:\nLibs:\n' >"$tmp/with/pc/libdpdk.pc"
printf 'Name: libnats\nDescription: fake\nVersion: 3.4.1\nCflags:\nLibs:\n' >"$tmp/with/pc/libnats.pc"
for pc in gstreamer-1.0 gstreamer-base-1.0 gstreamer-video-1.0 gstreamer-check-1.0; do
	printf 'Name: %s\nDescription: fake\nVersion: 1.22.0\nCflags:\nLibs:\n' $pc >"$tmp/with/pc/$pc.pc"
done
printf '#!/bin/sh\nexit 0\n' >"$tmp/with/bin/gnuplot"
cp "$tmp/with/bin/gnuplot" "$tmp/with/bin/prometheus"
cp "$tmp/with/bin/gnuplot" "$tmp/with/bin/promtool"
chmod +x "$tmp/with/bin/gnuplot" "$tmp/with/bin/prometheus" "$tmp/with/bin/promtool"
# a Python whose include directory holds Python.h and which imports
# pytest and numpy; without: one that has nothing
mkdir -p "$tmp/with/py"
: >"$tmp/with/py/Python.h"
printf '#!/bin/sh\ncase "$2" in *sysconfig*) echo "%s" ;; esac\nexit 0\n' "$tmp/with/py" \
	>"$tmp/with/bin/python3"
printf '#!/bin/sh\nexit 1\n' >"$tmp/without/bin/python3"
chmod +x "$tmp/with/bin/python3" "$tmp/without/bin/python3"

for t in with without; do
	want=$([ $t = with ] && echo yes || echo no)
	PKG_CONFIG_LIBDIR=$tmp/$t/pc make -s -C "$SRC" --no-print-directory probe \
		CC="$CC -nostdinc -isystem $tmp/$t/inc" GNUPLOT="$tmp/$t/bin/gnuplot" \
		PYTHON="$tmp/$t/bin/python3" PROMETHEUS="$tmp/$t/bin/prometheus" \
		PROMTOOL="$tmp/$t/bin/promtool" >"$tmp/out" 2>&1 ||
		{ cat "$tmp/out"; fail "make probe failed"; }
	for peer in ck dpdk iceoryx gnuplot nats python gstreamer prometheus; do
		grep -q "^  $peer: $want " "$tmp/out" ||
			{ cat "$tmp/out"; fail "$t the peers: $peer is not '$want'"; }
	done
done

# required packages: stubs for all but jemalloc (the libraries are real)
mkdir -p "$tmp/req/urcu" "$tmp/req/criterion"
: >"$tmp/req/urcu/rculfhash.h"
: >"$tmp/req/criterion/criterion.h"
if make -C "$SRC" --no-print-directory lib BUILD="$tmp/build" \
	CC="$CC -nostdinc -isystem $tmp/req" >"$tmp/out" 2>&1; then
	cat "$tmp/out"; fail "make lib without jemalloc's header succeeded"
fi
for want in '^  libjemalloc-dev$' 'make deps' \
	'apt-get update && apt-get install -y libjemalloc-dev$'; do
	grep -q "$want" "$tmp/out" || { cat "$tmp/out"; fail "no '$want' in the message"; }
done
! grep -q 'liburcu-dev\|libcriterion-dev' "$tmp/out" || { cat "$tmp/out"; fail "names a package that is there"; }
[ ! -e "$tmp/build" ] || fail "make lib compiled before saying what is missing"

mkdir -p "$tmp/req/jemalloc"
: >"$tmp/req/jemalloc/jemalloc.h"
make -n -C "$SRC" --no-print-directory lib BUILD="$tmp/build" \
	CC="$CC -nostdinc -isystem $tmp/req" >"$tmp/out" 2>&1 ||
	{ cat "$tmp/out"; fail "make lib refuses with every required header present"; }
echo "probe.sh: ck, dpdk, iceoryx, gnuplot, nats, python, gstreamer, prometheus probed yes and no; a missing package is named"

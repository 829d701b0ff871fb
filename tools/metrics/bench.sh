#!/bin/sh
# Time `shmctl-tool metrics` over many rings: creates N rings (default
# 1000; a third SPSC, a third MPMC, a third broadcast) in /dev/shm named
# shmring-mbench-<pid>-<i>, scrapes them R times (default 10), prints the
# scrape's own figure (shmring_scrape_duration_seconds: reading every
# segment and writing the text, what each request to --listen costs) and
# the wall time of the whole command (start, scan, read, format, write,
# exit), the median and the worst, then removes the rings.  On a machine
# shared with other work the wall times include waiting for a CPU: the
# load average is printed with them.
#   tools/metrics/bench.sh [N] [R]      (SHMCTL=path of shmctl-tool)
set -eu
N=${1:-1000}
R=${2:-10}
T=${SHMCTL:-build/shmctl-tool}
[ -x "$T" ] || { echo "bench.sh: $T not found (make tools, or set SHMCTL)" >&2; exit 2; }
P=shmring-mbench-$$
tmp=$(mktemp -d)
cleanup() {
	for f in /dev/shm/"$P"-*; do [ -e "$f" ] && "$T" rm --force "shm:${f#/dev/shm/}" >/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
i=0
while [ $i -lt "$N" ]; do
	case $((i % 3)) in
	0) k=spsc ;; 1) k=mpmc ;; *) k=bcast ;;
	esac
	"$T" create "shm:$P-$i" --kind $k --capacity 64K --max-msg 1K >/dev/null
	i=$((i + 1))
done
# CPU seconds of the children so far (user + system): `times` in this
# shell (in a command substitution it would count the subshell's)
child_cpu() {
	sed -n 2p "$1" | tr -d 's' | awk '{ split($1, u, "m"); split($2, y, "m");
		printf "%.6f\n", u[1] * 60 + u[2] + y[1] * 60 + y[2] }'
}
times >"$tmp/times0"
cpu0=$(child_cpu "$tmp/times0")
r=0
while [ $r -lt "$R" ]; do
	s=$(date +%s%N)
	"$T" metrics --match "$P-*" >"$tmp/out"
	e=$(date +%s%N)
	mv "$tmp/out" "$tmp/out.$r"
	echo "$(( (e - s) / 1000 ))" >>"$tmp/wall"
	r=$((r + 1))
done
times >"$tmp/times1"
cpu1=$(child_cpu "$tmp/times1")
r=0
while [ $r -lt "$R" ]; do
	got=$(grep -c '^shmring_ring_up{.*} 1$' "$tmp/out.$r")
	[ "$got" = "$N" ] || { echo "bench.sh: $got rings up, want $N" >&2; exit 1; }
	sed -n 's/^shmring_scrape_duration_seconds //p' "$tmp/out.$r" >>"$tmp/scrape"
	mv "$tmp/out.$r" "$tmp/out"
	r=$((r + 1))
done
lines=$(wc -l <"$tmp/out")
bytes=$(wc -c <"$tmp/out")
sort -g "$tmp/scrape" | awk -v n="$N" -v r="$R" -v l="$lines" -v b="$bytes" '
	{ v[NR] = $1 } END { printf "%d rings, %d scrapes, %d lines, %d bytes each\n", n, r, l, b;
	printf "scrape (read and format):      median %.1f ms, worst %.1f ms\n",
		v[int((NR + 1) / 2)] * 1000, v[NR] * 1000 }'
sort -n "$tmp/wall" | awk '{ v[NR] = $1 } END {
	printf "whole command (wall):          median %.1f ms, worst %.1f ms\n",
		v[int((NR + 1) / 2)] / 1000, v[NR] / 1000 }'
awk -v a="$cpu0" -v b="$cpu1" -v r="$R" 'BEGIN {
	printf "whole command (CPU, user+sys): mean %.1f ms (and two date(1) runs)\n",
		(b - a) * 1000 / r }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

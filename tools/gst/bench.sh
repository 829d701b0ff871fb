#!/usr/bin/env bash
# 4K RGBA frames (31.6 MiB) from videotestsrc through a transport to a
# fakesink in another process: frames/s and CPU time per frame of both
# processes, for shmringsink/shmringsrc (the sink's default ring of 4
# frames, and a ring of 2 frames) and for GStreamer's shmsink/shmsrc, and
# the source alone in one process (the ceiling).
#
#   tools/gst/bench.sh [FRAMES [ROUNDS]]   (default 300 frames, 5 rounds;
#                                           run from the tree root after
#                                           `make`, or set BUILD)
# Needs gst-launch-1.0 and the elements videotestsrc, fakesink (Debian
# gstreamer1.0-tools, gstreamer1.0-plugins-base) and shmsink/shmsrc
# (gstreamer1.0-plugins-bad).  The pipelines run one after the other in
# each round; it prints each pipeline's median over the rounds with the
# lowest and highest, the load average before and after, and the ratios
# of the medians.
set -euo pipefail
FRAMES=${1:-300}
ROUNDS=${2:-5}
BUILD=${BUILD:-build}
LIMIT=${LIMIT:-120}     # seconds a pipeline may take before it is killed
W=3840 H=2160
FRAME=$((W * H * 4))
CAPS="video/x-raw,format=RGBA,width=$W,height=$H,framerate=30/1"
SOURCE="videotestsrc pattern=solid-color num-buffers=$FRAMES ! $CAPS"
export GST_PLUGIN_PATH=$PWD/$BUILD/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}

for e in shmringsink shmringsrc videotestsrc fakesink shmsink shmsrc; do
	gst-inspect-1.0 "$e" >/dev/null 2>&1 || {
		echo "bench.sh: no GStreamer element $e (make gst; Debian gstreamer1.0-plugins-base, -bad)" >&2
		exit 2; }
done
tmp=$(mktemp -d /tmp/shmring-gstbench.XXXXXX)
ring=gstbench-$$
trap 'rm -rf "$tmp"; rm -f /dev/shm/$ring' EXIT

# run NAME PIPELINE...: in the background, its wall/user/sys seconds into
# $tmp/NAME.time when it ends; killed after LIMIT seconds
run() {
	local name=$1
	shift
	/usr/bin/time -f '%e %U %S' -o "$tmp/$name.time" \
		timeout -k 5 "$LIMIT" gst-launch-1.0 -q "$@" >"$tmp/$name.log" 2>&1 &
}

# record NAME SENDER [RECEIVER]: one line "NAME frames/s cpu sender receiver"
# (ms per frame) into $tmp/rows; frames/s from the sender's wall time (it
# ends after its last frame is taken)
record() {
	local name=$1 snd=$2 rcv=${3:-}
	# (time puts "Command exited with non-zero status" first when it did)
	if grep -q 'non-zero status' "$tmp/$snd.time"; then
		echo "round $r: $name failed or stalled (killed after ${LIMIT}s), left out:" \
			"$(head -c 300 "$tmp/$snd.log")" >&2
		return 0
	fi
	read -r wall us ss < <(tail -1 "$tmp/$snd.time")
	local ur=0 sr=0
	[ -n "$rcv" ] && read -r _ ur sr < <(tail -1 "$tmp/$rcv.time")
	awk -v n="$name" -v f="$FRAMES" -v w="$wall" -v u="$us" -v s="$ss" -v ur="$ur" -v sr="$sr" \
		'BEGIN { printf "%s %.1f %.3f %.3f %.3f\n", n, f / w, (u + s + ur + sr) * 1000 / f,
			(u + s) * 1000 / f, (ur + sr) * 1000 / f }' >>"$tmp/rows"
}

# shmring: the reader first (it waits for the ring)
ring_run() {
	local name=$1
	shift
	run "${name}_rx" shmringsrc uri=shm:$ring ! fakesink enable-last-sample=false
	run "${name}_tx" $SOURCE ! shmringsink uri=shm:$ring "$@"
	wait
	record "$name" "${name}_tx" "${name}_rx"
}

echo "$FRAMES frames of ${W}x${H} RGBA ($FRAME bytes), videotestsrc pattern=solid-color, $ROUNDS rounds"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
	# the ceiling: the source alone
	run alone $SOURCE ! fakesink enable-last-sample=false
	wait
	record alone alone

	# the sink sizes the ring from the caps: 4 frames (128 MiB), or 2
	# (64 MiB: rounded up to a power of two, 3 frames would be 128 MiB)
	ring_run shmring
	ring_run shmring2 capacity=$((2 * (FRAME + 4096)))

	# shmsink/shmsrc: the area holds 4 frames; the sink waits for its
	# reader; shmsrc needs the caps and is-live, and ends with an error
	# when the sink goes away (its exit status is not looked at); a
	# reader that keeps the last buffer (fakesink's default) makes
	# shmsink wait for it at EOS
	sock=$tmp/shm.sock
	rm -f "$sock"
	run shm_tx $SOURCE ! shmsink socket-path="$sock" shm-size=$((FRAME * 4 + 4096)) \
		wait-for-connection=true sync=false
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
	run shm_rx shmsrc socket-path="$sock" is-live=true ! "$CAPS" ! fakesink enable-last-sample=false
	wait || true
	record shm shm_tx shm_rx
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

# medians (and the lowest, highest) of each column per pipeline
awk '
function med(a, n,   i, j, t) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ k = $1; n[k]++; for (c = 2; c <= 5; c++) v[k, c, n[k]] = $c; if (!(k in seen)) { seen[k] = 1; order[++no] = k } }
END {
	label["alone"] = "source alone (ceiling)"; label["shmring"] = "shmringsink/src, 4 frames"
	label["shmring2"] = "shmringsink/src, 2 frames"; label["shm"] = "shmsink/shmsrc"
	printf "%-27s %21s %26s %8s %8s\n", "pipeline (median of runs)", "frames/s [min-max]",
		"cpu ms/frame [min-max]", "sender", "receiver"
	for (o = 1; o <= no; o++) {
		k = order[o]
		for (c = 2; c <= 5; c++) {
			for (i = 1; i <= n[k]; i++) a[i] = v[k, c, i]
			m[k, c] = med(a, n[k]); lo[k, c] = a[1]; hi[k, c] = a[n[k]]
		}
		printf "%-27s %7.1f [%5.1f-%5.1f] %9.2f [%5.2f-%5.2f] %8.2f %8.2f\n", label[k],
			m[k, 2], lo[k, 2], hi[k, 2], m[k, 3], lo[k, 3], hi[k, 3], m[k, 4], m[k, 5]
	}
	for (o = 1; o <= no; o++) {
		k = order[o]
		if ((k != "shmring" && k != "shmring2") || !(("shm", 2) in m) || !(("alone", 2) in m))
			continue
		printf "%s vs shm: %.2fx the frames/s, %.2fx the CPU per frame; %.2fx the ceiling'"'"'s frames/s\n",
			label[k], m[k, 2] / m["shm", 2], m[k, 3] / m["shm", 3], m[k, 2] / m["alone", 2]
	}
}' "$tmp/rows"

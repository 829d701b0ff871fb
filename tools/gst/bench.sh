#!/usr/bin/env bash
# 4K RGBA frames (31.6 MiB) from videotestsrc through a transport to a
# fakesink in another process: frames/s and CPU time per frame of both
# processes, for shmringsink/shmringsrc and for GStreamer's shmsink/shmsrc,
# and the source alone in one process (the ceiling).
#
#   tools/gst/bench.sh [FRAMES]          (default 300; run from the tree root
#                                          after `make`, or set BUILD)
# Needs gst-launch-1.0 and the elements videotestsrc, fakesink (Debian
# gstreamer1.0-tools, gstreamer1.0-plugins-base) and shmsink/shmsrc
# (gstreamer1.0-plugins-bad).  Prints one line per pipeline and the ratios.
set -euo pipefail
FRAMES=${1:-300}
BUILD=${BUILD:-build}
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
ring=shm:gstbench-$$
trap 'rm -rf "$tmp"; rm -f /dev/shm/gstbench-$$' EXIT

# run NAME PIPELINE...: in the background, its wall/user/sys seconds into
# $tmp/NAME.time when it ends
run() {
	local name=$1
	shift
	/usr/bin/time -f '%e %U %S' -o "$tmp/$name.time" \
		gst-launch-1.0 -q "$@" >"$tmp/$name.log" 2>&1 &
}

# report NAME SENDER [RECEIVER]: frames/s from the sender's wall time (it
# ends after its last frame is taken), CPU ms per frame of both
report() {
	local name=$1 snd=$2 rcv=${3:-}
	# (time puts "Command exited with non-zero status" first when it did)
	read -r wall us ss < <(tail -1 "$tmp/$snd.time")
	local ur=0 sr=0
	[ -n "$rcv" ] && read -r _ ur sr < <(tail -1 "$tmp/$rcv.time")
	awk -v n="$name" -v f="$FRAMES" -v w="$wall" -v u="$us" -v s="$ss" -v ur="$ur" -v sr="$sr" \
		'BEGIN { printf "%-24s %7.1f frames/s  cpu %6.2f ms/frame (sender %5.2f + receiver %5.2f)\n",
			n, f / w, (u + s + ur + sr) * 1000 / f, (u + s) * 1000 / f, (ur + sr) * 1000 / f }' |
		tee -a "$tmp/report"
}

echo "$FRAMES frames of ${W}x${H} RGBA ($FRAME bytes), videotestsrc pattern=solid-color"

# the ceiling: the source alone
run alone $SOURCE ! fakesink enable-last-sample=false
wait
report "source alone" alone

# shmring: the reader first (it waits for the ring); the sink sizes the
# ring for 4 frames from the caps
run ring_rx shmringsrc uri=$ring ! fakesink enable-last-sample=false
run ring_tx $SOURCE ! shmringsink uri=$ring
wait
report "shmringsink/shmringsrc" ring_tx ring_rx

# shmsink/shmsrc: the area holds 4 frames; the sink waits for its reader;
# shmsrc needs the caps and is-live, and ends with an error when the sink
# goes away (its exit status is not looked at); a reader that keeps the
# last buffer (fakesink's default) makes shmsink wait for it at EOS
sock=$tmp/shm.sock
run shm_tx $SOURCE ! shmsink socket-path="$sock" shm-size=$((FRAME * 4 + 4096)) \
	wait-for-connection=true sync=false
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
run shm_rx shmsrc socket-path="$sock" is-live=true ! "$CAPS" ! fakesink enable-last-sample=false
wait || true
report "shmsink/shmsrc" shm_tx shm_rx

awk 'NR == 2 { rf = $2; rc = $5 } NR == 3 { sf = $2; sc = $5 }
	END { printf "shmring vs shm: %.2fx the frames/s, %.2fx the CPU per frame\n", rf / sf, rc / sc }' \
	"$tmp/report"

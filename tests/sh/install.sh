#!/bin/sh
# `make install PREFIX=P` after a plain build installs a shmring.pc for P:
# a program builds through `pkg-config --cflags --libs shmring` alone (and
# --static) and runs.  DESTDIR only stages: it never shows in the .pc.
# Then the inline header as a user builds with it (below).
# Run by `make check`; SRC, BUILD, CC, CXX and PKG_CONFIG are set.
set -eu
unset MAKEFLAGS MFLAGS MAKELEVEL
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
if ! command -v "$PKG_CONFIG" >/dev/null 2>&1; then
	echo "install.sh: $PKG_CONFIG absent"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install.sh: $*" >&2; exit 1; }

p=$tmp/prefix
make -C "$SRC" --no-print-directory install BUILD="$BUILD" CC="$CC" PREFIX="$p" \
	>"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "make install PREFIX=$p failed"; }
[ -e "$p/etc/cron.d/shmring-gc" ] || fail "the cron file is not under the prefix"

cat >"$tmp/prog.c" <<'C'
#include <shmring.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	struct shmring *r;
	char uri[64], buf[8];
	int rc;

	snprintf(uri, sizeof(uri), "shm:shmring-test-pkgconfig-%ld", (long)getpid());
	rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER |
			  SHMRING_CONSUMER, NULL, &r);
	if (rc < 0) {
		printf("open: %s\n", shmring_strerror(rc));
		return 1;
	}
	rc = shmring_send(r, "hello", 5, 0);
	ssize_t n = rc < 0 ? rc : shmring_recv(r, buf, sizeof(buf), 0);
	shmring_close(r);
	shmring_unlink(uri);
	if (n != 5) {
		printf("send/recv: %s\n", shmring_strerror((int)n));
		return 1;
	}
	printf("%.5s\n", buf);
	return 0;
}
C
export PKG_CONFIG_PATH="$p/lib/pkgconfig"
flags=$("$PKG_CONFIG" --cflags --libs shmring) || fail "pkg-config does not find shmring"
[ "$("$PKG_CONFIG" --variable=prefix shmring)" = "$p" ] || fail "shmring.pc: prefix is not $p"
case " $flags " in
*" -I$p/include "*"-L$p/lib "*) ;;
*) fail "pkg-config says '$flags', not $p's directories" ;;
esac
# shellcheck disable=SC2086
$CC -o "$tmp/prog" "$tmp/prog.c" $flags || fail "cc ... $flags failed"
out=$(LD_LIBRARY_PATH=$p/lib "$tmp/prog") || fail "the program failed: $out"
[ "$out" = hello ] || fail "the program said '$out'"
LD_LIBRARY_PATH=$p/lib ldd "$tmp/prog" | grep -q "$p/lib/libshmring.so.0" ||
	fail "the program does not use $p/lib/libshmring.so.0"

# <shmring/inline.h>: a program built against the installed headers as
# C11 and as C++17, each with -Wall -Wextra -Werror, runs the stream
# contract through the inline functions (tests/prog/inline_stream.c:
# producer and consumer processes, sequence numbers and checksums, send and
# reserve/commit, recv and acquire/release) and gets -EPROTO for another
# layout version; the library exports every inline function as a symbol.
CXX=${CXX:-g++}
command -v "$CXX" >/dev/null 2>&1 || fail "no C++ compiler ($CXX; make deps installs g++)"
[ -f "$p/include/shmring/inline.h" ] || fail "<shmring/inline.h> is not installed"
prog=$SRC/tests/prog/inline_stream.c
# shellcheck disable=SC2086
$CC -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -x c -o "$tmp/c11" "$prog" $flags ||
	fail "$CC -std=c11 -Wall -Wextra -Werror against the installed headers failed"
# shellcheck disable=SC2086
$CXX -std=c++17 -Wall -Wextra -Werror -O2 -x c++ -o "$tmp/cxx17" "$prog" $flags ||
	fail "$CXX -std=c++17 -Wall -Wextra -Werror against the installed headers failed"

# the header alone, strictly: no extension or GNU feature macro needed
printf '#include <shmring/inline.h>\nint main(void) { return 0; }\n' >"$tmp/only.c"
# shellcheck disable=SC2086
$CC -std=c11 -pedantic -Wall -Wextra -Wconversion -Werror -x c -fsyntax-only "$tmp/only.c" \
	$("$PKG_CONFIG" --cflags shmring) || fail "the header alone, C11 -pedantic"
# shellcheck disable=SC2086
$CXX -std=c++17 -pedantic -Wall -Wextra -Wconversion -Werror -x c++ -fsyntax-only "$tmp/only.c" \
	$("$PKG_CONFIG" --cflags shmring) || fail "the header alone, C++17 -pedantic"

for t in c11 cxx17; do
	out=$(LD_LIBRARY_PATH=$p/lib timeout 120 "$tmp/$t") || fail "$t: $out"
	case $out in
	"ok "*) echo "install.sh: $t: $out" ;;
	*) fail "$t said '$out'" ;;
	esac
done

# every inline function is also a symbol of the library
for f in send recv reserve commit acquire release send_batch recv_batch; do
	nm -D --defined-only "$p/lib/libshmring.so.0" | grep -Eq " T shmring_inl_$f(@|$)" ||
		fail "libshmring.so does not export shmring_inl_$f"
done

# --static: the archive with the libraries it needs (Libs.private)
flags=$("$PKG_CONFIG" --cflags --libs --static shmring | sed 's/-lshmring\>/-l:libshmring.a/')
# shellcheck disable=SC2086
$CC -o "$tmp/prog-static" "$tmp/prog.c" $flags || fail "cc ... $flags failed"
out=$("$tmp/prog-static") || fail "the static program failed: $out"
[ "$out" = hello ] || fail "the static program said '$out'"
! ldd "$tmp/prog-static" | grep -q libshmring || fail "the static program loads libshmring.so"

# DESTDIR stages the files; the .pc names the real prefix
make -C "$SRC" --no-print-directory install BUILD="$BUILD" CC="$CC" \
	PREFIX=/opt/shmring-test DESTDIR="$tmp/stage" >"$tmp/log" 2>&1 ||
	{ cat "$tmp/log"; fail "make install DESTDIR=... failed"; }
pc=$tmp/stage/opt/shmring-test/lib/pkgconfig/shmring.pc
grep -qx 'prefix=/opt/shmring-test' "$pc" || fail "$pc: wrong prefix"
! grep -q "$tmp" "$pc" || fail "$pc names the staging directory"
echo "install.sh: pkg-config builds against PREFIX=$p (shared and --static, <shmring/inline.h> as C11 and C++17); DESTDIR stages only"

#!/bin/sh
# The include graph of the library follows the layers of docs/design.md
# section 1.1: each folder includes only what its row allows.  A new edge
# that points up (or sideways) fails here, naming the file and the header.
# Run by `make check`; SRC is set.
set -eu
cd "${SRC:-.}"

# folder (or header) -> what it may include, besides itself and the public
# headers (shmring.h, shmring/inline.h)
allowed() {
	case $1 in
	mem|fs)               echo "" ;;
	sync)                 echo "fs" ;;
	ring)                 echo "sync" ;;
	shm)                  echo "ring sync mem" ;;
	mmapfile)             echo "shm ring sync" ;;
	backend/backend.h)    echo "" ;;
	backend)              echo "backend/backend.h mmapfile shm ring sync mem fs" ;;
	fallback)             echo "backend/backend.h shm/segment.h sync mem fs" ;;
	api)                  echo "backend/backend.h backend shm/registry.h shm/segment.h" ;;
	*)                    echo "?" ;;
	esac
}

bad=0
checked=0
for f in $(ls mem/* fs/* sync/* ring/* shm/* mmapfile/* backend/* fallback/* api/* 2>/dev/null |
	   grep -E '\.[ch]$'); do
	dir=${f%%/*}
	me=$dir
	[ "$f" = backend/backend.h ] && me=backend/backend.h
	for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
		case $inc in shmring.h | shmring/inline.h) continue ;; esac
		case $inc in
		../*) target=${inc#../} ;;
		*)    target=$dir/$inc ;;
		esac
		checked=$((checked + 1))
		tdir=${target%%/*}
		[ "$tdir" = "$dir" ] && [ "$me" != backend/backend.h ] && continue
		ok=no
		for a in $(allowed "$me"); do
			case $a in
			*/*) [ "$target" = "$a" ] && ok=yes ;;
			*)   [ "$tdir" = "$a" ] && ok=yes ;;
			esac
		done
		if [ $ok = no ]; then
			echo "layers.sh: $f includes $inc: $me may include only: $(allowed "$me")" >&2
			bad=1
		fi
	done
done
[ $bad = 0 ] || exit 1
echo "layers.sh: $checked includes follow the layers of docs/design.md 1.1"

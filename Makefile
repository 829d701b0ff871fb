# shmring — plain GNU make.  `make help` lists the targets.
#
#   make            library (static + shared), tools, tests
#   make check      install missing Debian packages, build, run every test
#   make demo       install missing packages, build, run the quick benchmark
#   make check SAN=address|thread   the same under a sanitizer (own build dir)
#   make python     the Python binding in build/python (docs/python.md)

VERSION_MAJOR := 0
VERSION_MINOR := 1
VERSION_PATCH := 0
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR    ?=

CC  ?= cc
SAN ?=
ifeq ($(SAN),)
BUILD ?= build
SANFLAGS :=
else
BUILD ?= build-$(SAN)
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer
ifeq ($(SAN),address)
SANFLAGS += -fsanitize=undefined -fno-sanitize-recover=all
endif
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# ---- probes: what this machine has (`make probe` prints the answers) ----
# They ask the compiler and pkg-config, not dpkg, so headers installed any
# other way (CPPFLAGS=-I..., LDFLAGS=-L..., CPATH, PKG_CONFIG_PATH) count.
#
# `y` if <$(1)> can be included.  The '#' comes from a variable: GNU make
# 4.3 passes a backslash-escaped one to the shell as is, and a stray
# backslash makes the preprocessor succeed whether the header exists or not.
HASH := \#
have_header = $(shell printf '$(HASH)include <%s>\n' '$(1)' | $(CC) $(CPPFLAGS) -E -x c - >/dev/null 2>&1 && echo y)
# `y` if a program including <$(1)> links with the libraries $(2)
have_lib = $(shell printf '$(HASH)include <%s>\nint main(void) { return 0; }\n' '$(1)' | \
	$(CC) $(CPPFLAGS) -x c - -o /dev/null $(LDFLAGS) $(2) >/dev/null 2>&1 && echo y)
# the directories $(CC) searches for <...>, in order
cc_include_dirs = $(shell $(CC) $(CPPFLAGS) -E -Wp,-v -x c /dev/null 2>&1 >/dev/null | \
	sed -n 's|^ \(/[^ ]*\)$$|\1|p')
PKG_CONFIG ?= pkg-config
GNUPLOT    ?= gnuplot

# Required: the Debian package, then the probe that says it is there.
REQ_PKGS := build-essential liburcu-dev libjemalloc-dev libcriterion-dev
probe_build-essential  = $(shell command -v $(firstword $(CC)) >/dev/null 2>&1 && echo y)
probe_liburcu-dev      = $(call have_lib,urcu/rculfhash.h,-lurcu-bp -lurcu-cds)
probe_libjemalloc-dev  = $(call have_lib,jemalloc/jemalloc.h,-ljemalloc)
probe_libcriterion-dev = $(call have_lib,criterion/criterion.h,-lcriterion)
# the ThreadSanitizer build runs its tests without Criterion
ifeq ($(SAN),thread)
REQ_PKGS := $(filter-out libcriterion-dev,$(REQ_PKGS))
endif
req_missing = $(strip $(foreach p,$(REQ_PKGS),$(if $(probe_$(p)),,$(p))))

# Optional benchmark peers (shmring-bench compiles in those it finds) and
# gnuplot for `make bench`'s plot: `y` or empty.
HAVE_CK      := $(call have_header,ck_ring.h)
HAVE_DPDK    := $(shell $(PKG_CONFIG) --exists libdpdk 2>/dev/null && echo y)
# iceoryx installs under a versioned directory: include/iceoryx/vX.Y.Z/
ICEORYX_INC  := $(firstword $(foreach d,$(call cc_include_dirs), \
	$(wildcard $(d)/iceoryx/v*/iceoryx_binding_c/runtime.h)))
HAVE_ICEORYX := $(if $(ICEORYX_INC),y)
HAVE_GNUPLOT := $(shell command -v $(GNUPLOT) >/dev/null 2>&1 && echo y)
# GStreamer: the plugin gst/ and tests/test_gst.c (not built without it;
# not under ThreadSanitizer, which sees one process and no GLib)
GST_PC := gstreamer-1.0 gstreamer-base-1.0 gstreamer-video-1.0 gstreamer-check-1.0
HAVE_GST := $(shell $(PKG_CONFIG) --exists $(GST_PC) 2>/dev/null && echo y)
GST_ON := $(if $(filter thread,$(SAN)),,$(HAVE_GST))
# liburing: tests/test_poll.c's io_uring loop (skipped without it)
HAVE_LIBURING := $(call have_lib,liburing.h,-luring)
# Prometheus (prometheus and promtool): tests/test_metrics.c checks
# `shmctl-tool metrics` with them (those tests are skipped without them)
PROMETHEUS ?= prometheus
PROMTOOL   ?= promtool
HAVE_PROMETHEUS := $(shell command -v $(PROMETHEUS) >/dev/null 2>&1 && \
	command -v $(PROMTOOL) >/dev/null 2>&1 && echo y)
MON_DEB_PKGS := prometheus
# the NATS C client: shmring-bridge and tests/test_bridge.c (`make HAVE_NATS=`
# builds without them)
HAVE_NATS := $(shell $(PKG_CONFIG) --exists libnats 2>/dev/null && echo y)

OPT    ?= -O2
CFLAGS ?= $(OPT) -g
WARN   := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS_ALL := -std=c11 -D_GNU_SOURCE -Iinclude $(CPPFLAGS)
CFLAGS_ALL   := $(CFLAGS) $(WARN) -fPIC -fvisibility=hidden $(SANFLAGS) -MMD -MP
# libshmring.so does not link jemalloc, so that it can be dlopen()ed (see
# mem/alloc.c); the programs built here link it and get its arena
LDLIBS_SO    := -lurcu-bp -lurcu-cds -lpthread
LDLIBS_LIB   := $(LDLIBS_SO) -ljemalloc
LDFLAGS_ALL  := $(LDFLAGS) $(SANFLAGS)

LIB_SRCS := $(wildcard api/*.c backend/*.c ring/*.c sync/*.c mem/*.c fs/*.c shm/*.c mmapfile/*.c fallback/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
SONAME   := libshmring.so.$(VERSION_MAJOR)
# libshmring.a, the archive installed, is one object in which only the
# shmring_* functions are global (see its rule); the white-box tests and the
# tools, which call internal functions, link INTERNAL: the same objects, one
# per member, their internal names still global.
STATIC   := $(BUILD)/libshmring.a
INTERNAL := $(BUILD)/internal/libshmring.a
OBJCOPY  ?= objcopy
SHARED   := $(BUILD)/$(SONAME)

# cron reads /etc/cron.d only: a system-wide install puts its file there,
# an install under any other prefix keeps everything under that prefix
SYSCONFDIR ?= $(if $(filter /usr /usr/local,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

SHMCTL_SRCS := $(wildcard tools/shmctl/*.c)
TOOLS := $(BUILD)/shmring-bench $(if $(SHMCTL_SRCS),$(BUILD)/shmctl-tool)
SHMCTL_OBJS := $(SHMCTL_SRCS:%.c=$(BUILD)/%.o)
TEST_SRCS := $(filter-out $(if $(GST_ON),,tests/test_gst.c),$(wildcard tests/test_*.c))
TEST_COMMON := $(filter-out tests/test_%.c,$(wildcard tests/*.c))
TEST_COMMON_OBJS = $(TEST_COMMON:%.c=$(BUILD)/%.o)
ifneq ($(HAVE_NATS),y)
TEST_SRCS := $(filter-out tests/test_bridge.c,$(TEST_SRCS))
endif
TESTS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
# the conformance and stream suites once more through <shmring/inline.h>
# (tests/common.h, SHMRING_TEST_INLINE)
INLINE_TESTS := $(BUILD)/tests/test_conformance_inline $(BUILD)/tests/test_stream_inline
TESTS += $(INLINE_TESTS)
# ThreadSanitizer cannot follow a ring across processes: under SAN=thread
# run the suites that drive the ring with threads sharing one mapping.
TSAN_TESTS := $(BUILD)/tests/test_spsc $(BUILD)/tests/test_registry $(BUILD)/tests/test_mpmc \
	      $(BUILD)/tests/test_bcast $(BUILD)/tests/test_fixed
ifeq ($(SAN),thread)
TESTS := $(TSAN_TESTS)
endif
RUN_TESTS := $(TESTS)
EXAMPLES := $(BUILD)/readme_example $(BUILD)/durable_queue $(BUILD)/event_loop

# Criterion runs tests in parallel; two cores, heavy multi-process suites.
CRITERION_JOBS ?= 2
TEST_ENV := ASAN_OPTIONS=detect_leaks=1:leak_check_at_exit=0:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	SHMRING_TEST_BUILD=$(BUILD)

DEB_PKGS := build-essential pkg-config liburcu-dev libcriterion-dev libjemalloc-dev \
	util-linux mandoc jq liburing-dev

# Before compiling anything: name the missing packages, not a compiler
# error.  Goals that build nothing themselves skip it (`make check` installs
# the packages first, then builds in a sub-make, which checks).
NOBUILD_GOALS := deps bench-deps demo-deps gst-deps fuzz-deps metrics-deps check demo bench torture fuzz fuzz-short \
	probe bridge-deps demo-bridge check-bridge-long clean fuzz-clean help lint-man uninstall \
	python-deps
ifneq ($(filter-out $(NOBUILD_GOALS),$(or $(MAKECMDGOALS),all)),)
REQ_MISSING := $(req_missing)
ifneq ($(REQ_MISSING),)
empty :=
$(info shmring: cannot build: $(CC) does not find what these packages install:)
$(foreach p,$(REQ_MISSING),$(info $(empty)  $(p)))
$(info Install them as root with `make deps`, or with:)
$(info $(empty)  apt-get update && apt-get install -y $(REQ_MISSING))
$(error missing packages: $(REQ_MISSING))
endif
endif

.PHONY: all lib tools tests deps check demo bench torture install uninstall clean help lint-man \
	probe check-sh

# ThreadSanitizer builds only what it tests (the library and the thread
# suites); the tools use fences gcc refuses under -fsanitize=thread.
ifeq ($(SAN),thread)
all: lib tests
else
all: lib tools tests $(EXAMPLES)
endif
ifeq ($(GST_ON),y)
all: gst
endif

lib: $(STATIC) $(SHARED) $(BUILD)/shmring.pc

tools: $(TOOLS)

tests: $(TESTS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c $< -o $@

# A partial link (-r) makes every library object one, then objcopy makes
# local every name the sources left hidden: a program linking libshmring.a
# statically may define its own lock_set() or seg_open() without a clash.
# The libjemalloc references of mem/alloc.c stay undefined and weak.
$(BUILD)/libshmring.o: $(LIB_OBJS)
	@$(if $(Q),echo "  LD -r   $@")
	$(Q)$(CC) -r -nostdlib -o $@.tmp $^
	$(Q)$(OBJCOPY) --localize-hidden $@.tmp $@ && rm -f $@.tmp

$(STATIC): $(BUILD)/libshmring.o
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(INTERNAL): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJS) shmring.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=shmring.map \
		-Wl,-z,defs -o $@ $(LIB_OBJS) $(LDFLAGS_ALL) $(LDLIBS_SO)
	$(Q)ln -sf $(SONAME) $(BUILD)/libshmring.so

# The crash-point build (sync/crash.h): the same sources with
# SHMRING_CRASH_POINTS, linked only into the crash tests.
CRASH_LIB := $(BUILD)/crash/libshmring.a
CRASH_OBJS := $(LIB_SRCS:%.c=$(BUILD)/crash/%.o)
CRASH_TESTS := $(BUILD)/tests/test_torture

$(BUILD)/crash/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (crash points)")
	$(Q)$(CC) $(CPPFLAGS_ALL) -DSHMRING_CRASH_POINTS $(CFLAGS_ALL) -c $< -o $@

$(CRASH_LIB): $(CRASH_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(CRASH_TESTS): $(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_COMMON_OBJS) $(CRASH_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $< $(TEST_COMMON_OBJS) $(CRASH_LIB) $(LDFLAGS_ALL) $(TEST_LIBS) $(LDLIBS_LIB) -lm

# shmring.pc for the PREFIX/LIBDIR/INCLUDEDIR given now: `make install`
# writes it again with its own (DESTDIR is only where files are staged).
# Directories under the prefix are written relative to ${prefix}.
pc_dir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
gen_pc = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pc_dir,$(LIBDIR))|' \
	-e 's|@INCLUDEDIR@|$(call pc_dir,$(INCLUDEDIR))|' -e 's|@VERSION@|$(VERSION)|' \
	shmring.pc.in > $(1)

$(BUILD)/shmring.pc: shmring.pc.in Makefile
	@mkdir -p $(BUILD)
	$(Q)$(call gen_pc,$@)

# ---- shmring-bench, its peers, the examples that double as benchmarks ----
# tools/bench/: one file per concern; peer_*.c are compiled in only when the
# peer's headers are installed (`make bench` installs them as root).  The
# library never links them.
BENCH_DEB_PKGS := libdpdk-dev libck-dev iceoryx libiceoryx-binding-c-dev gnuplot-nox
DEMO_DEB_PKGS := libck-dev
BENCH_SRCS := $(filter-out tools/bench/peer_%.c,$(wildcard tools/bench/*.c))
BENCH_HAVE :=
BENCH_LIBS :=
ifneq ($(SAN),thread)
ifeq ($(HAVE_DPDK),y)
BENCH_SRCS += tools/bench/peer_dpdk.c
BENCH_HAVE += -DBENCH_HAVE_DPDK
BENCH_LIBS += -lrte_ring
# DPDK's own flags (-march, rte_config.h), its headers as system headers
$(BUILD)/tools/bench/peer_dpdk.o: CPPFLAGS_ALL += \
	$(patsubst -I%,-isystem %,$(shell $(PKG_CONFIG) --cflags libdpdk))
endif
ifeq ($(HAVE_CK),y)
BENCH_SRCS += tools/bench/peer_ck.c
BENCH_HAVE += -DBENCH_HAVE_CK
endif
ifeq ($(HAVE_ICEORYX),y)
BENCH_SRCS += tools/bench/peer_iceoryx.c
BENCH_HAVE += -DBENCH_HAVE_ICEORYX
BENCH_LIBS += -liceoryx_binding_c
$(BUILD)/tools/bench/peer_iceoryx.o: CPPFLAGS_ALL += \
	-isystem $(patsubst %/iceoryx_binding_c/runtime.h,%,$(ICEORYX_INC))
endif
endif
BENCH_OBJS := $(BENCH_SRCS:%.c=$(BUILD)/%.o)
$(BUILD)/tools/bench/main.o: CPPFLAGS_ALL += $(BENCH_HAVE)
# main.o says which peers are in: rebuild it when that changes
$(BUILD)/tools/bench/main.o: $(BUILD)/bench-peers.stamp
$(BUILD)/bench-peers.stamp: FORCE
	@mkdir -p $(BUILD)
	@echo '$(BENCH_HAVE)' | cmp -s - $@ || echo '$(BENCH_HAVE)' > $@

# the MPMC algorithm transports include ring/mpmc.h (private)
$(BUILD)/tools/bench/t_mpmc_safe.o $(BUILD)/tools/bench/t_mpmc_nosafety.o: CPPFLAGS_ALL += -I.

$(BUILD)/shmring-bench: $(BENCH_OBJS) $(INTERNAL)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(BENCH_OBJS) $(INTERNAL) $(LDFLAGS_ALL) $(BENCH_LIBS) $(LDLIBS_LIB) -lm

ifneq ($(SAN),thread)
all: $(BUILD)/market_data $(BUILD)/video_frames
endif

.PHONY: FORCE bench-deps demo-deps
FORCE:
bench-deps:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(BENCH_DEB_PKGS)"
demo-deps:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(DEMO_DEB_PKGS)"
# ---- end of shmring-bench ----

# ---- shmring-bridge: rings through NATS / JetStream (tools/bridge/) ----
# Built only with the NATS C client (libnats-dev); it uses the public API
# only and links the installed form of the library.  The library never
# links libnats.  The tests also need nats-server (skipped without it).
BRIDGE_DEB_PKGS := libnats-dev nats-server
BRIDGE_SRCS := $(wildcard tools/bridge/*.c)
BRIDGE_OBJS := $(BRIDGE_SRCS:%.c=$(BUILD)/%.o)
ifeq ($(HAVE_NATS),y)
ifneq ($(SAN),thread)
TOOLS += $(BUILD)/shmring-bridge
tools: $(BUILD)/shmring-bridge
endif
$(BUILD)/tools/bridge/%.o: CPPFLAGS_ALL += $(shell $(PKG_CONFIG) --cflags libnats)
$(BUILD)/shmring-bridge: $(BRIDGE_OBJS) $(STATIC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(BRIDGE_OBJS) $(STATIC) $(LDFLAGS_ALL) $$($(PKG_CONFIG) --libs libnats) \
		$(LDLIBS_LIB) -lm
# the test runs the tool
$(BUILD)/tests/test_bridge: | $(BUILD)/shmring-bridge
endif
.PHONY: bridge-deps demo-bridge check-bridge-long
bridge-deps:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(BRIDGE_DEB_PKGS)"
# a local nats-server -js on a free loopback port, a ring bridged through
# it into a second ring: rates and latencies beside the NATS client's own
demo-bridge: bridge-deps
	$(Q)$(MAKE) --no-print-directory -s lib tools
	$(Q)$(BUILD)/shmring-bridge --bench
# the issue's full runs: 1 million messages up to 256 KiB, 20 + 20 kill -9
# of the bridges and 5 restarts of nats-server (make check runs short forms)
check-bridge-long: bridge-deps
	$(Q)$(MAKE) --no-print-directory tests
	$(TEST_ENV) SHMRING_BRIDGE_LONG=1 $(BUILD)/tests/test_bridge --jobs 1 --verbose
# ---- end of shmring-bridge ----

# ---- the GStreamer plugin: build/gst/libgstshmring.so --------------------
# Elements shmringsink and shmringsrc; the public API only, linked with
# libshmring.so (found beside it in the build tree: GST_PLUGIN_PATH=build/gst).
# Built when the probe finds GStreamer's development files (`make gst-deps`).
GST_DEB_PKGS := libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
GST_SRCS := $(wildcard gst/*.c)
GST_OBJS := $(GST_SRCS:%.c=$(BUILD)/%.o)
GST_PLUGIN := $(BUILD)/gst/libgstshmring.so
.PHONY: gst gst-deps
ifeq ($(GST_ON),y)
GST_CFLAGS := $(patsubst -I%,-isystem %,$(shell $(PKG_CONFIG) --cflags gstreamer-base-1.0 gstreamer-video-1.0))
GST_LIBS := $(shell $(PKG_CONFIG) --libs gstreamer-base-1.0 gstreamer-video-1.0)
$(GST_OBJS): CPPFLAGS_ALL += $(GST_CFLAGS)

gst: $(GST_PLUGIN) $(BUILD)/shmring-gst-latency

$(GST_PLUGIN): $(GST_OBJS) $(SHARED)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-z,defs -o $@ $(GST_OBJS) $(LDFLAGS_ALL) -L$(BUILD) -lshmring \
		-Wl,-rpath,'$$ORIGIN/..' $(GST_LIBS)

# tools/gst/: the latency probe beside tools/gst/bench.sh (GStreamer only)
$(BUILD)/tools/gst/latency.o: CPPFLAGS_ALL += $(GST_CFLAGS)
$(BUILD)/shmring-gst-latency: $(BUILD)/tools/gst/latency.o
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $< $(LDFLAGS_ALL) $(GST_LIBS)

# the test loads the plugin as GStreamer does (dlopen) and drives it with
# gst-check's GstHarness
$(BUILD)/tests/test_gst.o: CPPFLAGS_ALL += \
	$(patsubst -I%,-isystem %,$(shell $(PKG_CONFIG) --cflags gstreamer-check-1.0 gstreamer-video-1.0))
$(BUILD)/tests/test_gst: TEST_LIBS += $(shell $(PKG_CONFIG) --libs gstreamer-check-1.0 gstreamer-video-1.0)
$(BUILD)/tests/test_gst: | $(GST_PLUGIN)
else
gst:
	@echo "gst: SKIPPED: no GStreamer development files (Debian: $(GST_DEB_PKGS); make gst-deps)"
endif
gst-deps:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(GST_DEB_PKGS)"

# shmctl-tool reads segments from outside: it links the static library and
# sees the private headers (segment layout, control block, ring parser).
$(BUILD)/tools/shmctl/%.o: tools/shmctl/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS_ALL) -I. $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/shmctl-tool: $(SHMCTL_OBJS) $(INTERNAL)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(SHMCTL_OBJS) $(INTERNAL) $(LDFLAGS_ALL) $(LDLIBS_LIB)

$(BUILD)/%: $(BUILD)/docs/examples/%.o $(STATIC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $< $(STATIC) $(LDFLAGS_ALL) $(LDLIBS_LIB)

# Criterion cannot start under ThreadSanitizer (its arena maps fixed
# addresses TSan reserves, upstream issue #274): the TSan build compiles the
# same test sources against a small stand-in (tests/tsan-shim).
ifeq ($(SAN),thread)
TEST_INC := -Itests/tsan-shim
TEST_LIBS :=
TEST_COMMON_OBJS += $(BUILD)/tests/tsan-shim/runner.o
else
TEST_INC :=
TEST_LIBS := -lcriterion
endif

# test_poll's io_uring event loop, when liburing is there
ifeq ($(HAVE_LIBURING),y)
$(BUILD)/tests/test_poll.o: CPPFLAGS_ALL += -DSHMRING_HAVE_LIBURING
$(BUILD)/tests/test_poll: TEST_LIBS += -luring
endif

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_COMMON_OBJS) $(INTERNAL)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $< $(TEST_COMMON_OBJS) $(INTERNAL) $(LDFLAGS_ALL) $(TEST_LIBS) $(LDLIBS_LIB) -lm

# Test objects see the private headers (white-box tests of ring/ and shm/).
$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS_ALL) $(TEST_INC) -I. $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/tests/%_inline.o: tests/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (inline)")
	$(Q)$(CC) $(CPPFLAGS_ALL) $(TEST_INC) -I. -DSHMRING_TEST_INLINE $(CFLAGS_ALL) -c $< -o $@

# ---- script tests: tests/sh/*.sh use make, the compiler, an install and
# the programs of tests/prog as a user would.  Each exits 0 (passed), 77
# (skipped: something it needs is absent) or else (failed).  They run in
# the plain build only: they load and install the library themselves.
SCRIPT_TESTS := $(sort $(wildcard tests/sh/*.sh))
RUN_SCRIPTS :=
TEST_PROGS := $(BUILD)/tests/prog/dlopen_stream $(BUILD)/tests/prog/linked_stream
ifeq ($(SAN),)
RUN_SCRIPTS := $(SCRIPT_TESTS)
tests: $(TEST_PROGS)
endif
SCRIPT_ENV := SRC=$(CURDIR) BUILD=$(abspath $(BUILD)) CC='$(CC)' CXX='$(CXX)' \
	PKG_CONFIG='$(PKG_CONFIG)'
run_scripts = for s in $(RUN_SCRIPTS); do \
		echo "-- $$s"; $(SCRIPT_ENV) sh $$s; rc=$$?; \
		if [ $$rc = 77 ]; then echo "   (skipped)"; elif [ $$rc != 0 ]; then fail="$$fail $$s"; fi; \
	done

# tests/prog/stream_alloc.c twice: loaded by dlopen, and linked with jemalloc
$(BUILD)/tests/prog/dlopen_stream: $(BUILD)/tests/prog/stream_alloc.o | $(SHARED)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $< $(LDFLAGS_ALL) -rdynamic -ldl -lpthread

$(BUILD)/tests/prog/linked_stream.o: tests/prog/stream_alloc.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (linked)")
	$(Q)$(CC) $(CPPFLAGS_ALL) -DSTREAM_LINKED $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/tests/prog/linked_stream: $(BUILD)/tests/prog/linked_stream.o $(STATIC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $< $(STATIC) $(LDFLAGS_ALL) -rdynamic -Wl,--no-as-needed $(LDLIBS_LIB) -ldl

# ---- the Python binding (python/): optional, like the bench peers ----
# A CPython extension (python/*.c) linked with libshmring.a, and the package
# python/shmring/ around it, assembled in $(BUILD)/python/shmring: use it
# with PYTHONPATH=$(BUILD)/python, no install needed.  Built and tested with
# Debian's interpreter: the `python3` first on PATH may be another one (pyenv)
# that sees neither python3-dev's headers nor python3-pytest/python3-numpy.
PYTHON ?= /usr/bin/python3
PY_DEB_PKGS := python3-dev python3-pytest python3-numpy
# recursively expanded: only the goals that use them start the interpreter
PY_INC = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)
PY_EXT = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX") or "")' 2>/dev/null)
have_python_dev = $(if $(PY_INC),$(shell printf '$(HASH)include <Python.h>\n' | \
	$(CC) $(CPPFLAGS) -isystem $(PY_INC) -E -x c - >/dev/null 2>&1 && echo y))
have_python_test = $(shell $(PYTHON) -c 'import pytest, numpy' >/dev/null 2>&1 && echo y)
PY_DIR  := $(BUILD)/python
PY_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard python/*.c))
PY_PKG  := $(wildcard python/shmring/*.py python/shmring/*.pyi python/shmring/py.typed)
PY_MOD  = $(PY_DIR)/shmring/_shmring$(PY_EXT)
# the pytest run: SHMRING_PY_LONG=1 for the long forms (1 million messages)
PY_TEST_ENV := PYTHONPATH=$(abspath $(PY_DIR)) PYTHONDONTWRITEBYTECODE=1 \
	SHMRING_TEST_BUILD=$(abspath $(BUILD))
PY_TEST_ARGS ?= -q -p no:cacheprovider
# ASan cannot start inside a process that did not load it first: the
# interpreter preloads it (and keeps its own leaks to itself)
ifeq ($(SAN),address)
PY_TEST_ENV += LD_PRELOAD=$(shell $(CC) -print-file-name=libasan.so) \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
endif
.PHONY: python python-deps check-python

$(PY_OBJS): CPPFLAGS_ALL += -isystem $(PY_INC)

# the extension does not export the library's symbols: only PyInit__shmring
$(PY_DIR)/shmring/_shmring%: $(PY_OBJS) $(STATIC) $(PY_PKG)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)cp $(PY_PKG) $(dir $@)
	$(Q)$(CC) -shared -o $@ $(PY_OBJS) $(STATIC) -Wl,--exclude-libs,ALL $(LDFLAGS_ALL) $(LDLIBS_SO)

python:
	@if [ -z "$(have_python_dev)" ]; then \
		echo "python: $(CC) finds no Python.h for $(PYTHON): install python3-dev"; \
		echo "  (as root: make python-deps, or apt-get install -y $(PY_DEB_PKGS))"; exit 1; fi
	$(Q)$(MAKE) --no-print-directory -q $(PY_MOD) || $(MAKE) --no-print-directory $(PY_MOD)

python-deps:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(PY_DEB_PKGS)"

# Debian's prometheus (with promtool) for tests/test_metrics.c.  Installing
# it may start its service; the tests start their own on a free port.
.PHONY: metrics-deps
metrics-deps:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(MON_DEB_PKGS)"

# make check runs it: the pytest suite, or a line saying why it is skipped
check-python:
	@if [ -z "$(have_python_dev)" ] || [ -z "$(have_python_test)" ]; then \
		echo "python: SKIPPED: $(PYTHON) lacks$(if $(have_python_dev),, python3-dev)$(if $(have_python_test),, pytest or numpy) (Debian: $(PY_DEB_PKGS); make python-deps)"; \
	else \
		$(MAKE) --no-print-directory python && \
		echo "-- python/tests ($(PYTHON) -m pytest)" && \
		$(PY_TEST_ENV) $(PYTHON) -m pytest $(PY_TEST_ARGS) python/tests; \
	fi

deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "deps: installing$$missing"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "deps: missing Debian packages; run as root:"; \
			echo "  apt-get update && apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

# What the probes at the top found; tests/sh/probe.sh checks the answers.
probe:
	@echo "required (make deps installs them):"
	@$(foreach p,$(REQ_PKGS),echo "  $(p): $(if $(probe_$(p)),yes,no)";)
	@echo "optional (make bench-deps installs them):"
	@echo "  ck: $(if $(HAVE_CK),yes,no) (libck-dev)"
	@echo "  dpdk: $(if $(HAVE_DPDK),yes,no) (libdpdk-dev)"
	@echo "  iceoryx: $(if $(HAVE_ICEORYX),yes,no) (iceoryx libiceoryx-binding-c-dev)"
	@echo "  gnuplot: $(if $(HAVE_GNUPLOT),yes,no) (gnuplot-nox)"
	@echo "  liburing: $(if $(HAVE_LIBURING),yes,no) (liburing-dev; make deps installs it)"
	@echo "  nats: $(if $(HAVE_NATS),yes,no) (libnats-dev nats-server; make bridge-deps installs them)"
	@echo "  python: $(if $(and $(have_python_dev),$(have_python_test)),yes,no) ($(PY_DEB_PKGS) for $(PYTHON); make python-deps)"
	@echo "  gstreamer: $(if $(HAVE_GST),yes,no) ($(GST_DEB_PKGS); make gst-deps installs them)"
	@echo "  prometheus: $(if $(HAVE_PROMETHEUS),yes,no) ($(MON_DEB_PKGS); make metrics-deps installs it)"

# Every suite runs even when one fails; each one's output is also kept in
# $(BUILD)/check-logs, and a failed run ends by naming the failed suites
# with their failing tests' lines, so that the end of a long log says why.
check: deps
	$(Q)$(MAKE) --no-print-directory all
	@echo "== running tests ($(if $(SAN),SAN=$(SAN),no sanitizer)) =="
	@$(if $(GST_ON)$(filter thread,$(SAN)),,echo "-- test_gst: SKIPPED: no GStreamer development files (Debian: $(GST_DEB_PKGS))";) \
	fail=; mkdir -p $(BUILD)/check-logs; for t in $(RUN_TESTS); do \
		echo "-- $$t"; log=$(BUILD)/check-logs/$${t##*/}.log; \
		{ $(TEST_ENV) $$t --jobs $(CRITERION_JOBS) --short-filename 2>&1; echo $$? >$$log.rc; } | tee $$log; \
		[ "$$(cat $$log.rc)" = 0 ] || fail="$$fail $$t"; \
	done; \
	$(run_scripts); \
	$(if $(filter y,$(HAVE_NATS)),,echo "test_bridge: SKIPPED: no NATS C client (Debian: $(BRIDGE_DEB_PKGS); make bridge-deps)";) \
	$(if $(HAVE_PROMETHEUS)$(filter thread,$(SAN)),,echo "test_metrics: promtool and real-Prometheus tests SKIPPED: no prometheus (Debian: $(MON_DEB_PKGS); make metrics-deps)";) \
	$(if $(filter thread,$(SAN)),echo "python: SKIPPED under SAN=thread (the interpreter cannot load a TSan extension)",$(MAKE) --no-print-directory check-python || fail="$$fail python"); \
	if [ -z "$$fail" ]; then echo "check: all test suites passed"; exit 0; fi; \
	for t in $$fail; do \
		log=$(BUILD)/check-logs/$${t##*/}.log; echo "check: FAILED: $$t"; \
		[ -f "$$log" ] && grep -i -E -A4 '^\[FAIL\]|Assertion Failed|^SUMMARY: |Timed out|crashed|^WARNING: ThreadSanitizer' $$log | head -40; \
	done; \
	echo "check: FAILED:$$fail"; exit 1

# the script tests alone
check-sh: tests
	@fail=; $(run_scripts); [ -z "$$fail" ]

# The long crash runs: 5000 SIGKILLs of SPSC producers and consumers and
# 5000 of MPMC ones (make check runs 200 each), and 50 million messages per
# stream test; 10 million per lost-wake-up case of test_poll; broadcast
# rings: 2 million messages per fan-out test (1 to 64 subscribers, and
# overwrite with slow ones), 2000 rounds of subscribers and producers
# SIGKILLed and replaced (make check: 40).  On 2 CPUs the 64-subscriber
# form alone takes 11 to 13 minutes: 65 processes share them, and every
# message wakes the subscribers that slept (its test allows an hour).
torture: deps
	$(Q)$(MAKE) --no-print-directory tests
	$(TEST_ENV) SHMRING_CRASH_KILLS=5000 $(BUILD)/tests/test_crash --verbose
	$(TEST_ENV) SHMRING_MPMC_KILLS=5000 SHMRING_CRASH_NMAX=20 $(BUILD)/tests/test_torture --verbose --jobs 1
	$(TEST_ENV) SHMRING_STREAM_MSGS=50000000 $(BUILD)/tests/test_stream --jobs 1
	$(TEST_ENV) SHMRING_POLL_MSGS=10000000 $(BUILD)/tests/test_poll --jobs 1
	$(TEST_ENV) SHMRING_BCAST_MSGS=2000000 SHMRING_BCAST_KILLS=2000 $(BUILD)/tests/test_bcast --jobs 1

# ---- fuzzing: make fuzz [FUZZ_SECONDS=N]; make check runs fuzz-short ----
# libFuzzer targets (tests/fuzz/), built with clang, ASan and UBSan in their
# own directory: the library and shmctl-tool's objects (without its main.o)
# instrumented for coverage.  Each target runs FUZZ_SECONDS from the seeds
# in tests/fuzz/corpus/<target>/ (`make fuzz-corpus` remakes them), keeps
# what it finds in $(FUZZ_BUILD)/corpus/<target>/ and a crashing input in
# $(FUZZ_BUILD)/crashes/<target>/.  make check (no SAN) runs the same when
# clang's libFuzzer is there, and says so when it is not.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SHORT_SECONDS ?= 40
FUZZ_BUILD := build-fuzz
FUZZ_DEB_PKGS := clang libclang-rt-dev
FUZZ_TARGETS := fuzz_ring fuzz_tool fuzz_http
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g $(WARN) -fvisibility=hidden $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_TOOL_OBJS := $(filter-out %/main.o,$(SHMCTL_SRCS:%.c=$(FUZZ_BUILD)/%.o))
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
FUZZ_OPTS := -max_total_time=$(FUZZ_SECONDS) -timeout=60 -rss_limit_mb=2048 \
	-print_final_stats=1
FUZZ_PROBE := int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) \
	{ (void)d; (void)n; return 0; }
.PHONY: fuzz fuzz-build fuzz-run fuzz-short fuzz-deps fuzz-corpus fuzz-clean

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (fuzz)")
	$(Q)$(FUZZ_CC) $(CPPFLAGS_ALL) -I. $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/fuzz_ring: $(FUZZ_BUILD)/tests/fuzz/fuzz_ring.o $(FUZZ_LIB_OBJS)
$(FUZZ_BUILD)/fuzz_tool: $(FUZZ_BUILD)/tests/fuzz/fuzz_tool.o $(FUZZ_TOOL_OBJS) $(FUZZ_LIB_OBJS)
$(FUZZ_BUILD)/fuzz_http: $(FUZZ_BUILD)/tests/fuzz/fuzz_http.o $(FUZZ_TOOL_OBJS) $(FUZZ_LIB_OBJS)
$(FUZZ_BINS):
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDFLAGS) $(LDLIBS_LIB)

fuzz-build: $(FUZZ_BINS)

fuzz-deps:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) $(FUZZ_DEB_PKGS)"

fuzz: fuzz-deps
	$(Q)$(MAKE) --no-print-directory fuzz-run

fuzz-run: fuzz-build
	$(Q)for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/crashes/$$t; \
		echo "== $$t: $(FUZZ_SECONDS) s"; \
		$(FUZZ_BUILD)/$$t $(FUZZ_OPTS) -artifact_prefix=$(FUZZ_BUILD)/crashes/$$t/ \
			$(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t 2>$(FUZZ_BUILD)/$$t.log; \
		rc=$$?; grep -E '^(INFO: seed corpus|#[0-9]+[[:space:]]+DONE|stat::|Done )' $(FUZZ_BUILD)/$$t.log; \
		if [ $$rc != 0 ]; then tail -60 $(FUZZ_BUILD)/$$t.log; \
			echo "fuzz: $$t FAILED (log: $(FUZZ_BUILD)/$$t.log)"; exit 1; fi; \
	done; echo "fuzz: no crash in $(FUZZ_TARGETS)"

# As root (CI), the fuzz packages are installed first; elsewhere a missing
# clang or libFuzzer skips the step with a message.
fuzz-short:
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory fuzz-deps >/dev/null || true; fi; \
	if echo '$(FUZZ_PROBE)' | $(FUZZ_CC) -fsanitize=fuzzer,address -x c - -o /dev/null \
		>/dev/null 2>&1; then \
		$(MAKE) --no-print-directory fuzz-run FUZZ_SECONDS=$(FUZZ_SHORT_SECONDS); \
	else \
		echo "fuzz-short: SKIPPED: no $(FUZZ_CC) with libFuzzer (Debian: $(FUZZ_DEB_PKGS))"; \
	fi

ifeq ($(SAN),)
check: fuzz-short
endif

$(BUILD)/mkcorpus: $(BUILD)/tests/fuzz/mkcorpus.o $(INTERNAL)
	$(Q)$(CC) -o $@ $< $(INTERNAL) $(LDFLAGS_ALL) $(LDLIBS_LIB)

fuzz-corpus: $(BUILD)/mkcorpus
	$(Q)rm -rf tests/fuzz/corpus/fuzz_ring tests/fuzz/corpus/fuzz_tool
	$(Q)mkdir -p tests/fuzz/corpus/fuzz_ring tests/fuzz/corpus/fuzz_tool
	$(BUILD)/mkcorpus tests/fuzz/corpus/fuzz_ring tests/fuzz/corpus/fuzz_tool

fuzz-clean:
	rm -rf $(FUZZ_BUILD)
clean: fuzz-clean

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
# ---- end of fuzzing ----

# The peers' own output (iceoryx's warnings, DPDK's log) goes to a file:
# the terminal shows the bench's tables only.
PEER_LOG := $(abspath $(BUILD))/bench-peers.log

demo: demo-deps
	$(Q)$(MAKE) --no-print-directory -s lib tools
	$(Q)$(BUILD)/shmring-bench --quick --peer-log $(PEER_LOG)

# gnuplot is looked for now: bench-deps has just installed it
bench: bench-deps
	$(Q)$(MAKE) --no-print-directory -s lib tools
	$(Q)$(BUILD)/shmring-bench --peer-log $(PEER_LOG) \
		$$(command -v $(GNUPLOT) >/dev/null && echo --plot $(BUILD)/bench.svg)

MAN3 := $(wildcard docs/man/*.3)
MAN7 := $(wildcard docs/man/*.7)
MAN1 := $(wildcard docs/man/*.1)

lint-man:
	mandoc -Tlint -W warning $(MAN1) $(MAN3) $(MAN7)

# the GStreamer plugin, when built, where GStreamer looks (its $ORIGIN/..
# rpath is LIBDIR, where libshmring.so is)
GST_PLUGINDIR ?= $(LIBDIR)/gstreamer-1.0

install: lib tools $(if $(GST_ON),gst)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
		$(DESTDIR)$(MANDIR)/man7
	install -m 644 include/shmring.h $(DESTDIR)$(INCLUDEDIR)/
	install -D -m 644 include/shmring/inline.h $(DESTDIR)$(INCLUDEDIR)/shmring/inline.h
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libshmring.so
	$(call gen_pc,$(BUILD)/shmring-install.pc)
	install -m 644 $(BUILD)/shmring-install.pc $(DESTDIR)$(PKGCONFIGDIR)/shmring.pc
	install -m 755 $(TOOLS) $(DESTDIR)$(BINDIR)/
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/)
	$(if $(MAN3),install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/)
	$(if $(MAN7),install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/)
	$(if $(GST_ON),install -D -m 755 $(GST_PLUGIN) $(DESTDIR)$(GST_PLUGINDIR)/libgstshmring.so)
	$(if $(wildcard tools/cron/shmring-gc),install -D -m 644 tools/cron/shmring-gc $(DESTDIR)$(SYSCONFDIR)/cron.d/shmring-gc)
	$(if $(wildcard tools/systemd/shmring-gc.service),install -D -m 644 tools/systemd/shmring-gc.service $(DESTDIR)$(SYSTEMDUNITDIR)/shmring-gc.service)
	$(if $(wildcard tools/systemd/shmring-gc.timer),install -D -m 644 tools/systemd/shmring-gc.timer $(DESTDIR)$(SYSTEMDUNITDIR)/shmring-gc.timer)
	install -D -m 644 tools/systemd/shmring-metrics.service $(DESTDIR)$(SYSTEMDUNITDIR)/shmring-metrics.service
	install -D -m 644 tools/systemd/shmring-metrics.timer $(DESTDIR)$(SYSTEMDUNITDIR)/shmring-metrics.timer
	install -D -m 644 tools/grafana/shmring.json $(DESTDIR)$(PREFIX)/share/shmring/grafana/shmring.json
	$(if $(filter y,$(HAVE_NATS)),install -D -m 644 tools/systemd/shmring-bridge@.service $(DESTDIR)$(SYSTEMDUNITDIR)/shmring-bridge@.service)

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/shmring.h $(DESTDIR)$(INCLUDEDIR)/shmring/inline.h \
		$(DESTDIR)$(LIBDIR)/libshmring.a \
		$(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libshmring.so \
		$(DESTDIR)$(PKGCONFIGDIR)/shmring.pc $(DESTDIR)$(GST_PLUGINDIR)/libgstshmring.so \
		$(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(TOOLS))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(MAN3))) \
		$(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(MAN7))) \
		$(DESTDIR)$(SYSCONFDIR)/cron.d/shmring-gc \
		$(DESTDIR)$(SYSTEMDUNITDIR)/shmring-gc.service $(DESTDIR)$(SYSTEMDUNITDIR)/shmring-gc.timer \
		$(DESTDIR)$(SYSTEMDUNITDIR)/shmring-bridge@.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/shmring-metrics.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/shmring-metrics.timer \
		$(DESTDIR)$(PREFIX)/share/shmring/grafana/shmring.json

clean:
	rm -rf build build-address build-thread build-undefined

help:
	@sed -n '1,9p' Makefile

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

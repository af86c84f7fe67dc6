# ferry - build, test, demo and benchmark.  `make demo` and `make check`
# install what they need on Debian 12 (apt-get, as root) and are the whole
# set-up; see README.md.

# `make` alone builds bin/ferry (rules above `all:` must not become the goal).
.DEFAULT_GOAL := all
BUILD_JOBS := $(shell nproc 2>/dev/null || echo 2)

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla
# Include paths of Debian's packages (pkg-config --cflags would say the
# same, but must not run before `make deps` has installed it).
PKG_INC := -I/usr/include/fuse3 -I/usr/include/samba-4.0 -I/usr/include/json-c \
	-I/usr/include/postgresql
CPPFLAGS := -Iinclude -Isrc/lib $(PKG_INC) -D_FILE_OFFSET_BITS=64
# libcurl, libnbd, libpq, libmicrohttpd and libsmbclient are not linked:
# they are loaded at first use (src/lib/common/dl.h: ferry starts in a
# third of the time).
LIBS    := -lssl -lcrypto -lzstd -llz4 -lz -lext2fs -lcom_err \
	-lfuse3 -ljson-c -lsodium -lsqlite3 -lpthread

DEBS := build-essential pkg-config libssl-dev libzstd-dev liblz4-dev zlib1g-dev \
	clang libclang-rt-14-dev e2fsprogs fdisk strace time openssl zstd \
	libnbd-dev libnbd-bin libext2fs-dev qemu-utils qemu-guest-agent bc \
	libfuse3-dev fuse3 libsmbclient-dev samba smbclient libcurl4-openssl-dev \
	libmicrohttpd-dev libjson-c-dev libsodium-dev libsqlite3-dev libpq-dev \
	postgresql ceph-mon ceph-osd radosgw ceph-common attr \
	tmux

LIB_SRC := $(wildcard src/lib/common/*.c) $(wildcard src/lib/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
TOOLS_SRC := $(wildcard tests/tools/*.c)
TOOLS_BIN := $(TOOLS_SRC:tests/tools/%.c=build/tools/%)

OBJ_DIR := build/obj
ASAN_DIR := build/asan
LIB_OBJ := $(LIB_SRC:%.c=$(OBJ_DIR)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(OBJ_DIR)/%.o)
ASAN_LIB_OBJ := $(LIB_SRC:%.c=$(ASAN_DIR)/%.o)
ASAN_CLI_OBJ := $(CLI_SRC:%.c=$(ASAN_DIR)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/unit/%)

# Backup server, its CLI and the proxy agent (src/server/, docs/server.md),
# linked into bin/ferry.
SRV_SRC := $(wildcard src/server/*.c)
SRV_OBJ := $(SRV_SRC:%.c=$(OBJ_DIR)/%.o)
ASAN_SRV_OBJ := $(SRV_SRC:%.c=$(ASAN_DIR)/%.o)
CLI_OBJ += $(SRV_OBJ)
ASAN_CLI_OBJ += $(ASAN_SRV_OBJ)
$(SRV_OBJ) $(ASAN_SRV_OBJ): $(wildcard src/server/*.h)
DEBS += jq sqlite3 curl iproute2
build/fuzz/fuzz_cron build/fuzz/fuzz_jobspec: src/server/cron.c src/server/jobspec.c src/server/srv.h
build/fuzz/fuzz_api_scope: src/server/scope.c src/server/srv.h
build/fuzz/fuzz_conf_files: src/server/conf.c src/server/srv.h
ASAN_UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(ASAN_DIR)/unit/%)
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all deps check check-fast check-asan fuzz demo bench bench-restore bench-remote lint clean torture

all: bin/ferry

deps:
	@./scripts/deps.sh $(DEBS)

$(OBJ_DIR)/%.o: %.c $(wildcard include/ferry/*.h src/lib/*.h src/lib/common/*.h src/cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c -o $@ $<

$(ASAN_DIR)/%.o: %.c $(wildcard include/ferry/*.h src/lib/*.h src/lib/common/*.h src/cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(ASAN_FLAGS) -c -o $@ $<

build/libferry.a: $(LIB_OBJ)
	@mkdir -p build
	rm -f $@ && ar rcs $@ $^

$(ASAN_DIR)/libferry.a: $(ASAN_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

bin/ferry: $(CLI_OBJ) build/libferry.a
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) build/libferry.a $(LIBS)

# ferry-smb, the ASan binary of the tests that reach SMB, also loads
# libsmbclient at start (src/lib/smb_dl.c then finds it already there):
# dlopen'd, LeakSanitizer's exit-time tracer crashed ("Tracer caught
# signal 11") in t0524 on Samba's thread-local data.  The others do
# without its 90 libraries: an ASan ferry starts in 0.05 s instead of
# 0.10 s, and the ASan tier runs ferry thousands of times.
ASAN_SMB := -Wl,--no-as-needed -lsmbclient -Wl,--as-needed

$(ASAN_DIR)/ferry: $(ASAN_CLI_OBJ) $(ASAN_DIR)/libferry.a
	$(CC) $(ASAN_FLAGS) -o $@ $(ASAN_CLI_OBJ) $(ASAN_DIR)/libferry.a $(LIBS)

$(ASAN_DIR)/ferry-smb: $(ASAN_CLI_OBJ) $(ASAN_DIR)/libferry.a
	$(CC) $(ASAN_FLAGS) -o $@ $(ASAN_CLI_OBJ) $(ASAN_DIR)/libferry.a $(LIBS) $(ASAN_SMB)

build/unit/%: tests/unit/%.c tests/unit/unit.h build/libferry.a
	@mkdir -p build/unit
	$(CC) $(CPPFLAGS) -Itests/unit $(WARN) $(CFLAGS) -o $@ $< build/libferry.a $(LIBS)

$(ASAN_DIR)/unit/%: tests/unit/%.c tests/unit/unit.h $(ASAN_DIR)/libferry.a
	@mkdir -p $(ASAN_DIR)/unit
	$(CC) $(CPPFLAGS) -Itests/unit $(WARN) $(ASAN_FLAGS) -o $@ $< $(ASAN_DIR)/libferry.a $(LIBS)

# Helpers the end-to-end tests run (the fault-injecting proxy).
build/tools/%: tests/tools/%.c
	@mkdir -p build/tools
	$(CC) $(WARN) $(CFLAGS) -o $@ $<

# Fuzz targets: libFuzzer with ASan/UBSan (clang).
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)
# The library is compiled once for all targets (coverage-instrumented,
# ASan/UBSan), then each target is linked against it.
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: %.c $(wildcard include/ferry/*.h src/lib/*.h src/lib/common/*.h)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -g -O1 -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<
build/fuzz/libferry.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
build/fuzz/%: fuzz/%.c build/fuzz/libferry.a $(wildcard fuzz/*.h)
	@mkdir -p build/fuzz
	clang $(CPPFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< build/fuzz/libferry.a $(LIBS)

# Each target runs FUZZ_SECONDS (10) on its corpus, one per CPU at a time.
FUZZ_RUN := $(FUZZ_BIN:build/fuzz/%=fuzz-run/%)
.PHONY: $(FUZZ_RUN)
fuzz: $(FUZZ_BIN)
	@$(MAKE) --no-print-directory -j$(BUILD_JOBS) $(FUZZ_RUN)
$(FUZZ_RUN): fuzz-run/%: build/fuzz/%
	@n=$*; mkdir -p build/fuzz-corpus/$$n; \
	build/fuzz/$$n -max_total_time=$${FUZZ_SECONDS:-10} -max_len=65536 \
	    build/fuzz-corpus/$$n $$(test -d fuzz/corpus/$$n && echo fuzz/corpus/$$n) >build/fuzz/$$n.log 2>&1 \
	|| { echo "fuzz: $$n FAILED"; tail -40 build/fuzz/$$n.log; exit 1; }; \
	echo "fuzz: $$n for $${FUZZ_SECONDS:-10} s: $$(tail -1 build/fuzz/$$n.log)"

# The whole suite: unit + end-to-end, then the same under ASan/UBSan,
# then a short fuzz run.  tests/run prints "N passed, N failed".  Once the
# packages are in, everything is built at once (one compiler per CPU), and
# several end-to-end scripts run at a time (FERRY_TEST_JOBS): the normal
# tier waits on servers, timers and child processes more than it
# computes (4 at a time: 374 s, 3: 424 s on two cores); the ASan tier is
# bound by the CPU (3 or 4 at a time: 486 / 483 s), so it runs 3.  A clean
# clone's `make check` took about 18 minutes on two cores.
FERRY_TEST_JOBS ?= 4
FERRY_ASAN_JOBS ?= 3
check: deps
	$(MAKE) -j$(BUILD_JOBS) all $(UNIT_BIN) $(TOOLS_BIN) $(ASAN_DIR)/ferry $(ASAN_DIR)/ferry-smb $(ASAN_UNIT_BIN) $(FUZZ_BIN)
	$(MAKE) lint
	FERRY_TEST_JOBS=$(FERRY_TEST_JOBS) ./tests/run
	$(MAKE) check-asan
	$(MAKE) fuzz

check-fast: all $(UNIT_BIN) $(TOOLS_BIN)
	FERRY_TEST_JOBS=$(FERRY_TEST_JOBS) ./tests/run

check-asan: $(ASAN_DIR)/ferry $(ASAN_DIR)/ferry-smb $(ASAN_UNIT_BIN) $(TOOLS_BIN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	FERRY=$(CURDIR)/$(ASAN_DIR)/ferry UNIT_DIR=$(CURDIR)/$(ASAN_DIR)/unit \
	FERRY_TEST_TIER=asan FERRY_TEST_JOBS=$(FERRY_ASAN_JOBS) ./tests/run

torture: all $(TOOLS_BIN)
	FERRY_KILLS=200 ./tests/run e2e

demo: deps all
	./scripts/demo.sh

bench: deps all
	./bench/run

bench-restore: deps all
	./bench/run-restore

# The network mover: loopback TLS against local, a WAN, mover memory.
bench-remote: deps all $(TOOLS_BIN)
	./bench/run-remote

lint:
	@./scripts/lint.sh

clean:
	rm -rf build bin

# wtrelayd — see README.md.
#   make            build/wtrelayd, build/wtclient, build/wtbench
#   make test       all tests (unit, integration, browser); last line "N passed, N failed"
#   make unit       unit tests only
#   make asan       all tests against an AddressSanitizer/UBSan build
#   make bench      benchmarks with baselines; writes BENCHMARKS.md
#   make fuzz       libFuzzer targets (clang), FUZZ_SECONDS=60 each; stats per target
#   make soak       SOAK_SESSIONS=100 sessions of mixed traffic through a bad
#                   path for SOAK_SECONDS=600; RSS and fds must stay flat
#   make run        install deps, build, make a dev certificate, run the daemon
#   make install    PREFIX=/usr/local DESTDIR= (make uninstall keeps the config)

CC       ?= cc
PREFIX   ?= /usr/local
BUILD    ?= build
PKGS     := libngtcp2 libngtcp2_crypto_gnutls libnghttp3 gnutls inih libsystemd libmicrohttpd hiredis
CFLAGS   ?= -O2 -g
# Always on, even when CFLAGS is given on the command line (make asan).
WFLAGS   := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -MMD -MP
CPPFLAGS += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lev -pthread

PROGS    := src/main.c src/wtclient.c src/wtbench.c src/wtbench_broadcast.c src/wtbench_mixed.c
SRCS     := $(filter-out $(PROGS),$(wildcard src/*.c))
OBJS     := $(SRCS:src/%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test unit asan bench run deps cert install uninstall clean fuzz fuzz-build soak
all: $(BUILD)/wtrelayd $(BUILD)/wtclient $(BUILD)/wtbench

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -c -o $@ $<

# The demo page (www/demo.html) goes into the binary as a byte array: the
# daemon serves it with no file to find at run time.
%/demo_html.h: www/demo.html
	mkdir -p $(@D)
	{ echo '/* generated from www/demo.html by the Makefile */'; \
	  echo 'static const unsigned char demo_html[] = {'; \
	  od -An -v -tx1 $< | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; } >$@.tmp && mv $@.tmp $@

$(BUILD)/admin.o: src/admin.c $(BUILD)/demo_html.h | $(BUILD)
	$(CC) $(CPPFLAGS) -I$(BUILD) $(WFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libwtrelayd.a: $(OBJS)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/wtrelayd: $(BUILD)/main.o $(BUILD)/libwtrelayd.a
	$(CC) $(WFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/wtclient: $(BUILD)/wtclient.o $(BUILD)/libwtrelayd.a
	$(CC) $(WFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/wtbench: $(BUILD)/wtbench.o $(BUILD)/wtbench_broadcast.o $(BUILD)/wtbench_mixed.o $(BUILD)/libwtrelayd.a
	$(CC) $(WFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# test_wt_session drives sessions with no ngtcp2 connection behind them:
# what would reach ngtcp2 or the write loop is recorded by the test.
UNIT_LDFLAGS_test_wt_session := -Wl,--wrap=ngtcp2_conn_shutdown_stream \
	-Wl,--wrap=ngtcp2_conn_extend_max_offset \
	-Wl,--wrap=ngtcp2_conn_set_stream_user_data \
	-Wl,--wrap=quic_conn_want_write -Wl,--wrap=h3_resume
$(BUILD)/tests/%: tests/unit/%.c tests/unit/t.h $(BUILD)/libwtrelayd.a | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -Isrc $(LDFLAGS) $(UNIT_LDFLAGS_$*) -o $@ $< \
		$(BUILD)/libwtrelayd.a $(LDLIBS)

# The integration tests' client: a QUIC/HTTP/3 WebTransport client that can
# also misbehave on purpose (tests/it/).
$(BUILD)/wtprobe: tests/tools/wtprobe.c $(BUILD)/libwtrelayd.a | $(BUILD)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -Isrc -o $@ $< $(BUILD)/libwtrelayd.a $(LDLIBS)

# The daemon with one misbehaviour linked in (tests/tools/evil.c): a server
# for testing the client role (tests/it/45-evil-server.sh).
$(BUILD)/wtrelayd-evil: $(BUILD)/main.o tests/tools/evil.c $(BUILD)/libwtrelayd.a
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) $(LDFLAGS) -Wl,--wrap=nghttp3_conn_submit_response \
		-o $@ $(BUILD)/main.o tests/tools/evil.c $(BUILD)/libwtrelayd.a $(LDLIBS)

# Backends for the forward handler's tests (tests/it/48-forward.sh).
$(BUILD)/tbackend: tests/tools/tbackend.c $(BUILD)/libwtrelayd.a | $(BUILD)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -Isrc -o $@ $< $(BUILD)/libwtrelayd.a $(LDLIBS)

# systemd's end of NOTIFY_SOCKET (tests/it/50-notify.sh).
$(BUILD)/notifylisten: tests/tools/notifylisten.c | $(BUILD)
	$(CC) $(WFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<

# A Retry token the daemon can read but must refuse (tests/it/35-retry.sh).
$(BUILD)/mktoken: tests/tools/mktoken.c $(BUILD)/libwtrelayd.a | $(BUILD)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -Isrc -o $@ $< $(BUILD)/libwtrelayd.a $(LDLIBS)

# Bounded bursts of client Initials from many loopback addresses, never
# answered (tests/it/75-per-address.sh, 76-flood.sh, make bench).
$(BUILD)/initflood: tests/tools/initflood.c | $(BUILD)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# A hostile daemon on Redis: forged cluster messages on a room's channel
# (tests/it/99-cluster-hostile.sh).
$(BUILD)/clusterpub: tests/tools/clusterpub.c $(BUILD)/libwtrelayd.a | $(BUILD)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) $(LDFLAGS) -Isrc -o $@ $< $(BUILD)/libwtrelayd.a $(LDLIBS)

# The loopback UDP ceiling for make bench.
$(BUILD)/udpblast: tests/bench/udpblast.c | $(BUILD)
	$(CC) $(WFLAGS) $(CFLAGS) -pthread -o $@ $<

# The one-TCP-connection-per-request ceiling for make bench's forward rows.
$(BUILD)/tcprr: tests/bench/tcprr.c | $(BUILD)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -o $@ $<

$(BUILD) $(BUILD)/tests:
	mkdir -p $@

unit: $(UNIT_BIN)
	BUILD=$(BUILD) tests/run.sh unit

# Installs what is missing first (a fresh machine: apt, npm), then builds;
# in the recipe rather than as prerequisites so that make -j cannot build
# before the libraries are there.
test:
	scripts/install-deps.sh --test
	$(MAKE) all $(UNIT_BIN) $(BUILD)/wtprobe $(BUILD)/mktoken $(BUILD)/wtrelayd-evil $(BUILD)/tbackend $(BUILD)/notifylisten $(BUILD)/initflood $(BUILD)/clusterpub
	BUILD=$(BUILD) tests/run.sh

asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" all build-asan/wtprobe build-asan/mktoken build-asan/wtrelayd-evil build-asan/tbackend build-asan/notifylisten build-asan/initflood build-asan/clusterpub $(patsubst $(BUILD)/%,build-asan/%,$(UNIT_BIN))
	BUILD=build-asan ASAN_OPTIONS=detect_leaks=1 tests/run.sh unit it browser

# The soak (tests/it/77-soak.sh, which make test runs for 30 s): against
# an ASan build, BUILD=build-asan SOAK_SECONDS=60 tests/it/77-soak.sh
# after make asan has built it.
SOAK_SECONDS  ?= 600
SOAK_SESSIONS ?= 100
soak:
	$(MAKE) all $(BUILD)/wtprobe
	BUILD=$(BUILD) SOAK_SECONDS=$(SOAK_SECONDS) SOAK_SESSIONS=$(SOAK_SESSIONS) \
		tests/run.sh soak

# Coverage-guided fuzzing (tests/fuzz/): the library's sources again, built
# by clang with libFuzzer's coverage and ASan/UBSan into their own
# directory (gcc's build/ is untouched), one binary per parser.  make fuzz
# runs each for FUZZ_SECONDS on a copy of its seed corpus; tests/it/80-fuzz.sh
# runs each for a few seconds in make test when clang is there.
FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=all
FUZZ_OBJS    := $(SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/obj/%.o: src/%.c $(FUZZ_BUILD)/demo_html.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) -I$(FUZZ_BUILD) $(WFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/libwtrelayd.a: $(FUZZ_OBJS)
	rm -f $@
	$(AR) rcs $@ $^

# --wrap=getaddrinfo: host names are not looked up while fuzzing
# (tests/fuzz/fuzz.h), numeric addresses still go through the resolver.
# fuzz_session drives a session with no ngtcp2 connection behind it: what
# would reach ngtcp2 or the write loop is recorded by the target instead.
FUZZ_LDFLAGS_session := -Wl,--wrap=ngtcp2_conn_shutdown_stream \
	-Wl,--wrap=ngtcp2_conn_extend_max_offset \
	-Wl,--wrap=ngtcp2_conn_set_stream_user_data \
	-Wl,--wrap=quic_conn_want_write -Wl,--wrap=h3_resume
# fuzz_cluster_rooms drives cluster.c with no Redis: hiredis's calls are
# recorded and answered by the target.
FUZZ_LDFLAGS_cluster_rooms := -Wl,--wrap=redisAsyncConnect \
	-Wl,--wrap=redisAsyncSetConnectCallback \
	-Wl,--wrap=redisAsyncSetDisconnectCallback -Wl,--wrap=redisAsyncCommand \
	-Wl,--wrap=redisAsyncFree -Wl,--wrap=redisAsyncDisconnect
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libwtrelayd.a
	$(FUZZ_CC) $(CPPFLAGS) $(WFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -Isrc \
		-Wl,--wrap=getaddrinfo $(FUZZ_LDFLAGS_$*) -o $@ $< \
		$(FUZZ_BUILD)/libwtrelayd.a $(LDLIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh

bench: all $(BUILD)/udpblast $(BUILD)/tbackend $(BUILD)/tcprr $(BUILD)/initflood
	scripts/install-deps.sh --bench
	BUILD=$(BUILD) scripts/bench.sh

deps:
	scripts/install-deps.sh

cert:
	scripts/gen-dev-cert.sh

run:
	scripts/install-deps.sh
	$(MAKE) all
	scripts/gen-dev-cert.sh
	$(BUILD)/wtrelayd -c conf/wtrelayd.ini

# The daemon goes to sbin (a system service, wtrelayd(8)); the unit's
# ExecStart and the config's certificate paths are rewritten for the
# installed layout.  An existing configuration is never overwritten (nor
# removed by uninstall): the shipped one goes beside it as .dist.
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
SYSUSERS_DIR ?= $(PREFIX)/lib/sysusers.d
MANDIR   ?= $(PREFIX)/share/man
MANPAGES := man/wtrelayd.8 man/wtrelayd.ini.5 man/wtclient.1 man/wtbench.1
install: all
	install -D -m 0755 $(BUILD)/wtrelayd $(DESTDIR)$(PREFIX)/sbin/wtrelayd
	install -D -m 0755 $(BUILD)/wtclient $(DESTDIR)$(PREFIX)/bin/wtclient
	install -D -m 0755 $(BUILD)/wtbench $(DESTDIR)$(PREFIX)/bin/wtbench
	install -d -m 0755 $(DESTDIR)/etc/wtrelayd
	sed -e 's|^cert = .*|cert = /etc/wtrelayd/cert.pem|' \
	    -e 's|^key = .*|key = /etc/wtrelayd/key.pem|' \
	    conf/wtrelayd.ini >$(DESTDIR)/etc/wtrelayd/wtrelayd.ini.dist
	chmod 0644 $(DESTDIR)/etc/wtrelayd/wtrelayd.ini.dist
	[ -e $(DESTDIR)/etc/wtrelayd/wtrelayd.ini ] || \
	    cp -p $(DESTDIR)/etc/wtrelayd/wtrelayd.ini.dist $(DESTDIR)/etc/wtrelayd/wtrelayd.ini
	install -d -m 0755 $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	sed -e 's|^ExecStart=/usr/local/sbin/wtrelayd |ExecStart=$(PREFIX)/sbin/wtrelayd |' \
	    systemd/wtrelayd.service >$(DESTDIR)$(SYSTEMD_UNIT_DIR)/wtrelayd.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/wtrelayd.service
	install -D -m 0644 systemd/wtrelayd.sysusers $(DESTDIR)$(SYSUSERS_DIR)/wtrelayd.conf
	for m in $(MANPAGES); do \
	    install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m#man/} || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/wtrelayd $(DESTDIR)$(PREFIX)/bin/wtclient \
	    $(DESTDIR)$(PREFIX)/bin/wtbench $(DESTDIR)$(SYSTEMD_UNIT_DIR)/wtrelayd.service \
	    $(DESTDIR)$(SYSUSERS_DIR)/wtrelayd.conf \
	    $(DESTDIR)/etc/wtrelayd/wtrelayd.ini.dist
	for m in $(MANPAGES); do rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m#man/}; done

clean:
	rm -rf build build-asan $(FUZZ_BUILD)

# every object's header dependencies, the programs' too (a header that
# changed a struct must rebuild each object that lays it out)
-include $(OBJS:.o=.d) $(PROGS:src/%.c=$(BUILD)/%.d) \
	$(wildcard $(FUZZ_BUILD)/obj/*.d $(FUZZ_BUILD)/*.d)

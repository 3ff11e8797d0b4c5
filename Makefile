# tenantflow — see README.md. `make` builds build/tenantflow; `make run` and
# `make test` are the two commands a newcomer needs. `make install` honours
# PREFIX and DESTDIR (and BINDIR, DATADIR, MANDIR, SYSCONFDIR, UNITDIR).

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR  ?= $(DATADIR)/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(PREFIX)/lib/systemd/system
MIGRATIONS_INSTALL := $(DATADIR)/tenantflow/migrations
SANITIZE ?=
CC      ?= cc

# gnutls: libmicrohttpd's TLS backend; we call it directly to swap certificates
# on SIGHUP (see src/platform/tls.c).
PKGS    := libmicrohttpd libpq jansson libsodium libcurl gnutls
BUILD   := build
ifneq ($(SANITIZE),)
BUILD   := build-san
endif
# FUZZ=1 (set by `make fuzz`): clang with libFuzzer's coverage, ASan and UBSan
# on every object, in a build directory of its own.
FUZZ    ?=
ifneq ($(FUZZ),)
BUILD   := build-fuzz
CC      := clang
override SANITIZE :=
endif

WARN    := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wcast-qual -Wpointer-arith -Wundef -Wvla -Wnull-dereference -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -I$(BUILD)/gen $(WARN) -MMD -MP \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif
# clang's -Wformat=2 also flags the vsnprintf inside our own printf-style
# wrappers (gcc exempts functions that take a va_list), hence the one -Wno-.
ifneq ($(FUZZ),)
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=all -Wno-format-nonliteral
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC  := $(sort $(wildcard src/platform/*.c src/modules/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/gen/assets.o
# Files under docs/ that the binary serves (/openapi.json, /docs), compiled in.
ASSETS   := openapi.json reference/index.html reference/docs.js reference/docs.css
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
# One libFuzzer target per parser of untrusted bytes (see README "Fuzzing"):
# replay_NAME links target NAME with the corpus replay driver (gcc, make test),
# fuzz_NAME with libFuzzer (clang, make fuzz).
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_OBJ := $(FUZZ_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/tests/fuzz/replay.o
REPLAY_BIN := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)
FUZZ_BIN := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_SECONDS ?= 60

.PHONY: all deps run test unit check bench fuzz fuzz-targets clean install uninstall FORCE
.SECONDARY: $(FUZZ_OBJ)
all: $(BUILD)/tenantflow

# Paths compiled into the binary follow PREFIX; the header is rewritten only
# when they change, so a different PREFIX rebuilds exactly what uses it.
$(BUILD)/gen/tf_paths.h: FORCE
	@mkdir -p $(dir $@)
	@printf '#define TF_DEFAULT_MIGRATIONS_DIR "%s"\n' '$(MIGRATIONS_INSTALL)' >$@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(BUILD)/obj/src/platform/config.o: $(BUILD)/gen/tf_paths.h

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/gen/assets.c: scripts/embed.sh $(addprefix docs/,$(ASSETS))
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	@scripts/embed.sh $@ docs $(ASSETS)

$(BUILD)/gen/assets.o: $(BUILD)/gen/assets.c
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libtenantflow.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/tenantflow: $(BUILD)/obj/src/main.o $(BUILD)/libtenantflow.a
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit_tests: $(UNIT_OBJ) $(BUILD)/libtenantflow.a
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs check 2>/dev/null)

$(BUILD)/fuzz/replay_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay.o \
                        $(BUILD)/libtenantflow.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/libtenantflow.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# Installs the Debian packages the build and the tests need (apt-get, sudo when
# not root); a no-op when they are present.
deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory all $(BUILD)/unit_tests $(REPLAY_BIN)
	@BUILD=$(BUILD) scripts/test.sh

unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests

check:
	@scripts/check.sh

# Runs every fuzz target for FUZZ_SECONDS (see README "Fuzzing"); clang and
# its libFuzzer runtime are installed for this path only.
fuzz:
	@scripts/deps.sh clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-targets
	@BUILD=build-fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

fuzz-targets: $(FUZZ_BIN)

# Throughput and latency against pgbench on the same machine (see README).
bench:
	@scripts/deps.sh wrk
	@$(MAKE) --no-print-directory all
	@scripts/bench.sh

clean:
	rm -rf build build-san build-fuzz

# The unit and the example environment file name the installed paths.
INSTALL_PATHS := -e 's|/usr/local/bin/|$(BINDIR)/|g' \
                 -e 's|/usr/local/share/tenantflow/migrations|$(MIGRATIONS_INSTALL)|g' \
                 -e 's|/etc/tenantflow/|$(SYSCONFDIR)/tenantflow/|g'
# The man page names its files PREFIX/...; installed, it names the real ones.
MAN_PATHS := -e 's|^\.IR PREFIX /lib/systemd/system/|.I $(UNITDIR)/|' \
             -e 's|^\.IR PREFIX /|.I $(PREFIX)/|' -e 's|/etc/tenantflow/|$(SYSCONFDIR)/tenantflow/|g'

# The example environment file goes to SYSCONFDIR/tenantflow/tenantflow.env
# only when none is there (an edited one is never overwritten), and uninstall
# removes it only while it is still identical to the example.
install: $(BUILD)/tenantflow
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/tenantflow/migrations \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/tenantflow
	install -m 755 $(BUILD)/tenantflow $(DESTDIR)$(BINDIR)/tenantflow
	install -m 644 migrations/*.sql $(DESTDIR)$(DATADIR)/tenantflow/migrations/
	sed $(MAN_PATHS) docs/tenantflow.8 >$(DESTDIR)$(MANDIR)/man8/tenantflow.8
	chmod 644 $(DESTDIR)$(MANDIR)/man8/tenantflow.8
	sed $(INSTALL_PATHS) contrib/tenantflow.service >$(DESTDIR)$(UNITDIR)/tenantflow.service
	chmod 644 $(DESTDIR)$(UNITDIR)/tenantflow.service
	sed $(INSTALL_PATHS) contrib/tenantflow.env \
	    >$(DESTDIR)$(DATADIR)/tenantflow/tenantflow.env.example
	chmod 644 $(DESTDIR)$(DATADIR)/tenantflow/tenantflow.env.example
	test -e $(DESTDIR)$(SYSCONFDIR)/tenantflow/tenantflow.env || \
	    install -m 640 $(DESTDIR)$(DATADIR)/tenantflow/tenantflow.env.example \
	        $(DESTDIR)$(SYSCONFDIR)/tenantflow/tenantflow.env

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tenantflow $(DESTDIR)$(MANDIR)/man8/tenantflow.8 \
	    $(DESTDIR)$(UNITDIR)/tenantflow.service
	rm -f $(DESTDIR)$(DATADIR)/tenantflow/migrations/*.sql
	-cmp -s $(DESTDIR)$(DATADIR)/tenantflow/tenantflow.env.example \
	    $(DESTDIR)$(SYSCONFDIR)/tenantflow/tenantflow.env && \
	    rm -f $(DESTDIR)$(SYSCONFDIR)/tenantflow/tenantflow.env
	rm -f $(DESTDIR)$(DATADIR)/tenantflow/tenantflow.env.example
	-rmdir $(DESTDIR)$(DATADIR)/tenantflow/migrations $(DESTDIR)$(DATADIR)/tenantflow \
	    $(DESTDIR)$(SYSCONFDIR)/tenantflow 2>/dev/null

-include $(LIB_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d) $(BUILD)/obj/src/main.d

# tenantflow — see README.md. `make` builds build/tenantflow; `make run` and
# `make test` are the two commands a newcomer needs.

PREFIX  ?= /usr/local
DESTDIR ?=
SANITIZE ?=
CC      ?= cc

PKGS    := libmicrohttpd libpq jansson libsodium libcurl
BUILD   := build
ifneq ($(SANITIZE),)
BUILD   := build-san
endif

WARN    := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wcast-qual -Wpointer-arith -Wundef -Wvla -Wnull-dereference -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(WARN) -MMD -MP \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

LIB_SRC  := $(sort $(wildcard src/platform/*.c src/modules/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/gen/assets.o
# Files under docs/ that the binary serves (/openapi.json, /docs), compiled in.
ASSETS   := openapi.json reference/index.html reference/docs.js reference/docs.css
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: all deps run test unit check bench clean install uninstall
all: $(BUILD)/tenantflow

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

# Installs the Debian packages the build and the tests need (apt-get, sudo when
# not root); a no-op when they are present.
deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory all $(BUILD)/unit_tests
	@BUILD=$(BUILD) scripts/test.sh

unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests

check:
	@scripts/check.sh

# Throughput and latency against pgbench on the same machine (see README).
bench:
	@scripts/deps.sh wrk
	@$(MAKE) --no-print-directory all
	@scripts/bench.sh

clean:
	rm -rf build build-san

-include $(LIB_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/obj/src/main.d

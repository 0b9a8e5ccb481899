# lfp: `make` installs what is missing and builds; `make test` runs the whole suite;
# `make demo` brings up a namespace topology and shows lfp at work; `make bench` runs the benchmarks.
SHELL := /bin/bash
NODE_GYP := node_modules/.bin/node-gyp
NATIVE := native/build/Release/lfp_native.node
PKTIO := native/pktio/build/Release/lfp_pktio.node
CRYPTO := native/crypto/build/Release/lfp_crypto.node
TS_SOURCES := $(shell find cache-manager fp-manager fastpath fpc shared-mem stats-daemon hitflags-daemon fptun-kmod cli lib native netlink tests -name '*.ts' -not -path '*/node_modules/*' 2>/dev/null)

.PHONY: all deps build native ts test test-unit test-kernel demo bench bench-sync bench-fwd bench-ipsec clean

all: build

deps:
	@bash scripts/install-deps.sh

native: deps $(NATIVE) $(PKTIO) $(CRYPTO)

$(NATIVE): $(wildcard native/*.cc native/*.h) native/binding.gyp | deps
	cd native && ../$(NODE_GYP) rebuild --nodedir=/usr --loglevel=warn

$(PKTIO): $(wildcard native/pktio/src/*.cc native/pktio/src/*.h native/pktio/src/*.c) native/pktio/binding.gyp | deps
	cd native/pktio && ../../$(NODE_GYP) rebuild --nodedir=/usr --loglevel=warn

$(CRYPTO): $(wildcard native/crypto/src/*.cc native/crypto/src/*.h) native/crypto/binding.gyp | deps
	cd native/crypto && ../../$(NODE_GYP) rebuild --nodedir=/usr --loglevel=warn

build/.stamp: $(TS_SOURCES) tsconfig.json fpc/fpc.proto | deps
	node_modules/.bin/tsc -p tsconfig.json
	@touch $@

ts: build/.stamp

build: deps native ts

test: build
	node_modules/.bin/mocha --reporter build/tests/lib/reporter.js 'build/tests/unit/**/*.test.js' 'build/tests/kernel/**/*.test.js'

test-unit: build
	node_modules/.bin/mocha 'build/tests/unit/**/*.test.js'

test-kernel: build
	node_modules/.bin/mocha 'build/tests/kernel/**/*.test.js'

demo: build
	bash scripts/demo.sh

bench: bench-sync bench-fwd bench-ipsec

bench-sync: build
	node --max-old-space-size=8192 build/tests/bench/bench-sync.js

bench-fwd: build
	node --max-old-space-size=8192 build/tests/bench/bench-fwd.js

bench-ipsec: build
	node build/tests/bench/bench-ipsec.js

clean:
	rm -rf build native/build

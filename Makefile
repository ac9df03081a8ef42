# pyrunc: two commands on a fresh Debian 12 machine of this kind (root, apt reachable).
#   make demo   set everything up and run a demo container with pyrunc
#   make test   set everything up (with test dependencies) and run the whole suite
SHELL := /bin/bash
# Debian's own interpreter (apt: python3.11, python3.11-venv), not a version manager's: it is
# linked statically with its common C modules built in, so every `pyrunc` call starts ~1 ms
# sooner and imports _socket, fcntl, _struct, select for free (docs/PERFORMANCE.md, "What this
# round changed", 2).
PYTHON ?= /usr/bin/python3.11
VENV := .venv
APT_PACKAGES := python3.11 python3.11-venv busybox-static runc jq libseccomp2 strace hyperfine iproute2 procps bsdutils
# A venv made by another interpreter (an older checkout's) is rebuilt, not reused.
ifneq ($(wildcard $(VENV)/.created),)
ifneq ($(shell cat $(VENV)/.created),$(PYTHON))
$(shell rm -rf $(VENV))
endif
endif
# What the whole suite drives: the real callers (e2e, CRI), rootless use (uidmap, slirp4netns,
# fuse-overlayfs) and the pure cgroup v2 guest (tests/vm; apparmor gives it apparmor_parser; criu
# checkpoints there; python3-protobuf lets tests/unit/test_criu_rpc.py check our codec with pycriu;
# selinux-policy-default is the policy the SELinux guest loads: tests/vm/test_selinux.py).
# The image tools' path (tests/e2e/test_image_tools.py): buildah, skopeo, umoci. python3-pip (with
# setuptools and wheel) builds pyrunc's wheel offline for tests/integration/test_packaging.py.
TEST_APT_PACKAGES := criu python3-protobuf podman conmon containerd containernetworking-plugins docker.io qemu-system-x86 linux-image-amd64 apparmor selinux-policy-default uidmap slirp4netns fuse-overlayfs buildah skopeo umoci python3-pip
BUILD := build

.PHONY: demo test setup test-setup lint clean apt

# Replace pip's console script with a lean, isolated launcher (pyrunc/launcher.py says why); every
# pip install writes pip's script again, so each one is followed by this. The launcher must run
# this venv's interpreter: callers exec it with an empty environment. With a C compiler the
# command is pyrunc/launcher.c built for this venv (it starts the interpreter from a read-only
# overlay: pyrunc/selfexe.py); without one it is the script itself.
define launcher
$(VENV)/bin/python -m pyrunc.launcher $(VENV)/bin/pyrunc
@head -1 $(VENV)/bin/pyrunc-launcher.py | grep -qx "#!$(CURDIR)/$(VENV)/bin/python -IS" || \
  { echo "$(VENV)/bin/pyrunc-launcher.py does not point at $(CURDIR)/$(VENV)" >&2; exit 1; }
@$(VENV)/bin/pyrunc --version >/dev/null || { echo "$(VENV)/bin/pyrunc does not run" >&2; exit 1; }
endef

demo: setup
	@bash tests/demo.sh $(BUILD)/demo

test: test-setup
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests

lint: test-setup
	$(VENV)/bin/ruff check pyrunc tests spec conformance bench examples

setup: $(BUILD)/.apt $(VENV)/.installed

test-setup: setup $(BUILD)/.apt-test $(VENV)/.test-installed

apt: $(BUILD)/.apt

# Install only what is missing: apt-get update costs time on every run otherwise.
$(BUILD)/.apt:
	@mkdir -p $(BUILD)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

# docker.io would start a system dockerd from its postinst: a policy-rc.d refuses that
# (only while we install, and only if the machine has none of its own). The Makefile is a
# prerequisite so that a package added to the list is installed on a machine set up before.
$(BUILD)/.apt-test: $(BUILD)/.apt Makefile
	@missing=""; for p in $(TEST_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; own=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	    chmod +x /usr/sbin/policy-rc.d; own=1; fi; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; rc=$$?; \
	  [ -z "$$own" ] || rm -f /usr/sbin/policy-rc.d; [ $$rc = 0 ]; \
	fi
	@touch $@

$(VENV)/.created: | $(BUILD)/.apt
	$(PYTHON) -m venv $(VENV)
	@echo $(PYTHON) > $@

# PYTHONDONTWRITEBYTECODE=1 on these machines: precompile so no run pays for compiling, and
# bundle pyrunc's compiled modules into one file (pyrunc/bundle.py says why).
$(VENV)/.installed: $(VENV)/.created pyproject.toml pyrunc/launcher.c $(shell find pyrunc -name '*.py')
	$(VENV)/bin/python -m pip install -q -e . --config-settings editable_mode=compat
	$(call launcher)
	$(VENV)/bin/python -m compileall -q pyrunc $$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') >/dev/null || true
	$(VENV)/bin/python -m pyrunc.bundle
	@touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(VENV)/bin/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	$(call launcher)
	@touch $@

clean:
	rm -rf $(BUILD) $(VENV) *.egg-info

# Differential conformance run: pyrunc vs Debian's runc (1.1.5) and, where ../shared is beside the
# checkout (PYRUNC_SHARED elsewhere), runc 1.5.1 from ../shared/oracle: one report, a column each.
# Regenerates docs/CONFORMANCE.md; fails when a scenario a runc passes is failed by pyrunc (a
# regression), except the documented places where runc 1.5.1 and the spec changed runc 1.1's way.
RUNC15 := $(or $(PYRUNC_SHARED),../shared)/oracle/bin/runc-1.5.1
.PHONY: conformance
conformance: setup
	conformance/run --runtime $(VENV)/bin/pyrunc --oracle $$(command -v runc || echo /usr/sbin/runc) \
	  $$([ -x $(RUNC15) ] && echo --oracle $(RUNC15) || echo "conformance: no $(RUNC15), runc 1.1.5 only" >&2) \
	  --jobs 2 --quiet --report $(BUILD)/conformance.json --conformance-doc docs/CONFORMANCE.md

# pyrunc vs runc side by side (docs/PERFORMANCE.md); BENCH_ARGS=--quick for a short run.
# Precompile first: PYTHONDONTWRITEBYTECODE=1 would otherwise make pyrunc pay compile time.
.PHONY: bench
bench: setup
	$(VENV)/bin/python -m compileall -q pyrunc >/dev/null
	$(VENV)/bin/python -m pyrunc.bundle
	bench/compare --json bench/results/latest.json $(BENCH_ARGS)
	bench/plot bench/results/latest.json bench/results/latency.png

# The long hypothesis run of the hostile-input fuzzer (make test runs it with 40 examples).
FUZZ_EXAMPLES ?= 2000
.PHONY: fuzz
fuzz: test-setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/fuzz

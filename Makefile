# Two set-up commands on a fresh machine: `make demo` and `make test`.
# Both create .venv if missing and install what they need (torch from the CPU wheel on disk; never CUDA).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.sqtool-installed
PYTEST_ARGS ?=
# NO_APT=1: never run apt-get, even as root (the MCU tests then skip; under CI=true they fail)
NO_APT ?=

.PHONY: demo test install deps-debian clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first and pinned, so nothing later can pull a CUDA build of it
$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[all]"
	$(PY) -c "import torch, sys; sys.exit(0 if '+cpu' in torch.__version__ or not torch.version.cuda else 'a CUDA build of torch was installed')"
	touch $(STAMP)

install: $(STAMP)

# cross-compiler, C library and emulator for the Cortex-M firmware (only when root and missing)
deps-debian:
	@if [ -n "$(NO_APT)" ]; then \
	  echo "NO_APT set: not installing gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm valgrind"; \
	elif command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null \
	    && [ -e /usr/lib/picolibc/arm-none-eabi/picolibc.specs ]; then \
	  echo "Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm valgrind; \
	else \
	  echo "missing: apt-get install gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm valgrind (needs root)"; \
	fi

test: $(STAMP) deps-debian
	$(PY) -m pytest -q -n 2 --durations=15 $(PYTEST_ARGS)

demo: $(STAMP) deps-debian
	$(VENV)/bin/sqtool demo

clean:
	rm -rf runs build .pytest_cache

# argusd: `make demo` sets everything up and runs the daemon on real footage; `make test` sets up and tests;
# `sudo make install` installs it as a system service (scripts/install.sh; PREFIX=... ROOT=... pass through).
.PHONY: setup demo test install

setup:
	scripts/setup.sh

demo: setup
	scripts/demo.sh

test: setup
	scripts/test.sh

install:
	scripts/install.sh

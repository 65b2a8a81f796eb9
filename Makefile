# argusd: `make demo` sets everything up and runs the daemon on real footage; `make test` sets up and tests.
.PHONY: setup demo test

setup:
	scripts/setup.sh

demo: setup
	scripts/demo.sh

test: setup
	scripts/test.sh

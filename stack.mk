# Local stack (tools/local_stack.py does the work; see its docstring and local-stack.md).
# stack-install: emulators into .local-stack/ (idempotent, stamp files); stack-up: start and wait
# (a second call is harmless); stack-down: stop by recorded pids and wait; stack-status: show.
.PHONY: stack-install stack-up stack-down stack-status stack-env

STACK := $(PY) tools/local_stack.py

stack-install: venv
	$(STACK) install

stack-up: venv
	$(STACK) up

stack-down:
	@if [ -x $(PY) ]; then $(STACK) down; else python3 tools/local_stack.py down; fi

stack-status:
	@if [ -x $(PY) ]; then $(STACK) status; else python3 tools/local_stack.py status; fi

stack-env:
	@$(STACK) env

# `sam build` (infra/template.yaml, BuildMethod: makefile) runs `make build-<resource>` here
# with ARTIFACTS_DIR set. Each function is built from its own package (--package): a build
# of a bare `--bin` at the workspace root would unify features with every member, putting
# the CLI's embedded store (rusqlite) and the tests' features into the Lambda binaries.
# Needs cargo-lambda (and zig for the arm64 cross-build).

.PHONY: build-ApiFunction build-CopyAgentFunction build-SocialAgentFunction build-VisualAgentFunction build-AuditFunction build-FinalizeFunction build-NotifierFunction build-WsFunction build-ExecutionEventsFunction build-TriggerFunction build-DeferredAuditFunction build-SweeperFunction

CARGO_LAMBDA ?= cargo lambda build --release --arm64

# $(call lambda,PACKAGE,BINARY)
define lambda
	$(CARGO_LAMBDA) --package $(1) --bin $(2)
	cp target/lambda/$(2)/bootstrap $(ARTIFACTS_DIR)/bootstrap
endef

build-ApiFunction:
	$(call lambda,campaign-api,api)

build-CopyAgentFunction:
	$(call lambda,campaign-tasks,copy-agent)

build-SocialAgentFunction:
	$(call lambda,campaign-tasks,social-agent)

build-VisualAgentFunction:
	$(call lambda,campaign-tasks,visual-agent)

build-AuditFunction:
	$(call lambda,campaign-tasks,audit)

build-FinalizeFunction:
	$(call lambda,campaign-tasks,finalize)

build-NotifierFunction:
	$(call lambda,campaign-notifier,notifier)

build-WsFunction:
	$(call lambda,campaign-ws,ws)

build-ExecutionEventsFunction:
	$(call lambda,campaign-execution-events,execution-events)

build-TriggerFunction:
	$(call lambda,campaign-trigger,trigger)

build-DeferredAuditFunction:
	$(call lambda,campaign-deferred-audit,deferred-audit)

build-SweeperFunction:
	$(call lambda,campaign-sweeper,sweeper)

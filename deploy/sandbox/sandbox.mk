# Sandbox targets; included by the main Makefile (include deploy/sandbox/sandbox.mk).
# Variables: SANDBOX_NAME (default demo), SANDBOX_NODES (default 3), SANDBOX_DEMO=1 to apply demo content.
SANDBOX_DIR   := $(dir $(lastword $(MAKEFILE_LIST)))
SANDBOX_NAME  ?= demo
SANDBOX_NODES ?= 3
SANDBOX_DEMO  ?= 1

.PHONY: sandbox-build sandbox-up sandbox-down sandbox-status

sandbox-build: ## Build (or reuse cached) control-plane binaries for the sandbox
	$(SANDBOX_DIR)build

sandbox-up: ## Start a local Kubernetes sandbox (.run/sandbox/$(SANDBOX_NAME))
	$(SANDBOX_DIR)up --name $(SANDBOX_NAME) --nodes $(SANDBOX_NODES) $(if $(filter 1 yes true,$(SANDBOX_DEMO)),--demo,)

sandbox-down: ## Stop the sandbox and remove its run folder
	$(SANDBOX_DIR)down --name $(SANDBOX_NAME)

sandbox-status: ## Show sandbox components, apiserver URL and node count
	$(SANDBOX_DIR)status --name $(SANDBOX_NAME)

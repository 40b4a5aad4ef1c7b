# wflow: the two commands of the README, and what they are made of.
#   make demo   set the machine up and run the example workflow on real containers
#   make test   vet and test everything (real containers; see .ci/run for CI)

export PATH := $(PATH):/usr/local/go/bin
GO ?= go

.PHONY: demo test setup build examples vet bench clean

setup:
	scripts/setup.sh

build:
	$(GO) build -o bin/wflow ./cmd/wflow

examples: build
	GOOS=wasip1 GOARCH=wasm $(GO) build -o bin/go-pipeline.wasm ./examples/go-pipeline
	GOOS=wasip1 GOARCH=wasm $(GO) build -o bin/notebook-params.wasm ./examples/notebook-params
	clang --target=wasm32-wasi -O2 -Wall -I sdk/c -o bin/c-branch.wasm examples/c-branch/main.c

demo: setup examples
	bin/wflow run bin/go-pipeline.wasm
	bin/wflow run bin/c-branch.wasm
	@echo "notebook steps, with the local test image and template (no registry or PyPI here; docs/notebooks.md):"
	bin/wflow run bin/notebook-params.wasm --notebook-base wflow-test/python --notebook-dockerfile testdata/notebook/Dockerfile.test.tmpl

# runtime implements wazero's File, whose Seek returns a wazero Errno, not an
# error; vet's stdmethods check flags that (in every package that imports
# runtime), so it is off.
vet:
	$(GO) vet -stdmethods=false ./...
	cd abi && $(GO) vet ./...
	cd sdk/go && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...

# -p 2: two packages at a time on the 2-core machines we run on. -count=1:
# the tests talk to the Docker engine, which Go's test cache cannot see.
test: vet
	$(GO) test -p 2 -count=1 -timeout 20m ./...
	cd sdk/go && $(GO) test -count=1 ./...
	@left=$$( { docker ps -aq --filter label=io.wflow.run; \
	  docker service ls -q --filter label=io.wflow.run; \
	  docker network ls -q --filter label=io.wflow.run; \
	  podman --url unix:///run/podman/podman.sock ps -aq --filter label=io.wflow.run; \
	  for n in n1 n2 n3; do sim="docker -H unix:///run/wflow-swarm-sim/$$n/docker.sock"; \
	    [ -S /run/wflow-swarm-sim/$$n/docker.sock ] || continue; \
	    $$sim ps -aq --filter label=io.wflow.run; \
	    [ $$n != n1 ] || { $$sim service ls -q --filter label=io.wflow.run; $$sim network ls -q --filter label=io.wflow.run; }; done; \
	  } 2>/dev/null | wc -l); \
	left=$$((left + $$(scripts/kube-sim.sh leftovers))); \
	if [ "$$left" -ne 0 ]; then echo "FAIL: $$left container(s), swarm service(s), network(s), Kubernetes Job(s), pod(s) or NetworkPolicy(s) labelled io.wflow.run remain after the tests"; exit 1; fi; \
	echo "no wflow containers, services, networks, Jobs, pods or NetworkPolicies remain (Docker, Podman, the swarms, the Kubernetes cluster)"

# Each benchmark runs next to its baseline in the same run; the side-by-side
# suite rewrites the table of docs/benchmarks.md (about 6 minutes on 2 cores).
bench:
	$(GO) run ./bench -reps 5 -out docs/benchmarks.md
	$(GO) test -run '^$$' -bench HostCall -count 5 ./hostfuncs
	$(GO) test -run '^$$' -bench TrivialStep -benchtime 20x -count 3 ./containers/docker
	$(GO) test -run '^$$' -bench Decision -benchtime 200x ./policies

clean:
	rm -rf bin runs

# The everyday jobs. `make run` is the whole main job on the default preset.
GO ?= go

.PHONY: run train sample test smoke bench vet gpu-tests

run: train sample

train:
	$(GO) run ./cmd/train -dataset mnist

sample:
	$(GO) run ./cmd/sample -out grid.png

test:
	$(GO) test ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)

# A few seconds of real MNIST training with a tiny network, a resume, and a grid.
smoke:
	$(GO) run ./cmd/train -dataset mnist -preset smoke -ckpt-dir checkpoints/smoke -fresh -wipe -steps 10
	$(GO) run ./cmd/train -dataset mnist -preset smoke -ckpt-dir checkpoints/smoke
	$(GO) run ./cmd/sample -ckpt checkpoints/smoke -out checkpoints/smoke/grid.png -n 16 -steps-per-level 5

# Our training and forward speed beside PyTorch's (../shared/bench/torch_ref.py).
bench:
	scripts/bench.sh

# Test binaries for a GPU machine that has no Go toolchain
# (scripts/gpu_check.sh copies and runs them).
gpu-tests:
	CGO_ENABLED=0 $(GO) test -c -tags gpu -o gpu-bin/cuda.test ./internal/cuda
	CGO_ENABLED=0 $(GO) test -c -tags gpu -o gpu-bin/model.test ./model
	CGO_ENABLED=0 $(GO) test -c -tags gpu -o gpu-bin/generate.test ./generate
	CGO_ENABLED=0 $(GO) build -tags gpu -o gpu-bin/sample ./cmd/sample
	CGO_ENABLED=0 $(GO) build -tags gpu -o gpu-bin/train ./cmd/train

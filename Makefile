# The everyday jobs. `make run` is the whole main job on the default preset.
GO ?= go

.PHONY: run train sample test smoke bench bench-gpu vet gpu-tests

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
	$(GO) run ./cmd/train -dataset mnist -preset smoke -ckpt-dir checkpoints/smoke -steps 20
	$(GO) run ./cmd/sample -ckpt checkpoints/smoke -out checkpoints/smoke/grid.png -n 16 -steps 10

# Our training and forward speed beside PyTorch's (../shared/bench/torch_ref.py).
bench:
	scripts/bench.sh

# Our speed on a GPU beside PyTorch eager's on the same GPU (needs -tags gpu
# to build, a GPU and PyTorch with CUDA): scripts/bench_gpu.sh.
bench-gpu:
	scripts/bench_gpu.sh

# Test binaries and commands for a GPU machine that has no Go toolchain,
# packed into gpu-pack/ (scripts/gpu_check.sh run uses them there).
gpu-tests:
	scripts/gpu_check.sh pack

#!/usr/bin/env python3
"""Where PyTorch's training step of the reference network goes on a GPU.

Usage: torch_profile.py TORCH_REF [--base 128 --mult 1,2,2,2 --channels 3 --size 32]

Imports ScoreNet and dsm_loss from TORCH_REF (../shared/bench/torch_ref.py,
carried to the GPU machine as gpu-pack/torch_ref.py), runs 5 warm-up steps
of backward and Adam, then profiles 10 with torch.profiler and prints the
CUDA kernels' time per step, largest first, grouped by kind (convolution
forward, data and filter gradients, GroupNorm, elementwise, Adam) and the
25 largest kernels, then the step's images/s over 20 steps unprofiled.
NVIDIA_TF32_OVERRIDE=0 in the environment turns TF32 off; --deterministic
sets torch.backends.cudnn.deterministic (cuDNN's deterministic algorithms
only, as ours), --benchmark torch.backends.cudnn.benchmark (algorithms
measured, as our Find).
"""
import argparse, importlib.util, re, sys, time
import torch
from torch.profiler import profile, ProfilerActivity

ap = argparse.ArgumentParser()
ap.add_argument('ref')
ap.add_argument('--base', type=int, default=128)
ap.add_argument('--mult', default='1,2,2,2')
ap.add_argument('--channels', type=int, default=3)
ap.add_argument('--size', type=int, default=32)
ap.add_argument('--batch', type=int, default=128)
ap.add_argument('--deterministic', action='store_true')
ap.add_argument('--benchmark', action='store_true')
a = ap.parse_args()
torch.backends.cudnn.deterministic = a.deterministic
torch.backends.cudnn.benchmark = a.benchmark
spec = importlib.util.spec_from_file_location('torch_ref', a.ref)
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
dev = torch.device('cuda')
net = ref.ScoreNet(C=a.channels, base=a.base, mult=tuple(int(m) for m in a.mult.split(','))).to(dev)
opt = torch.optim.Adam(net.parameters(), lr=1e-4)
x = torch.rand(a.batch, a.channels, a.size, a.size, device=dev)
sig = ref.sigmas_geometric(1.0, 0.01, 10).to(dev)


def step():
    opt.zero_grad()
    ref.dsm_loss(net, x, sig).backward()
    opt.step()


for _ in range(5):
    step()
torch.cuda.synchronize()
steps = 10
with profile(activities=[ProfilerActivity.CUDA]) as prof:
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
kinds = [('conv filter gradient', r'wgrad|dgrad_filter|bwd_filter|wgrad'),
         ('conv data gradient', r'dgrad|bwd_data'),
         ('convolution (other)', r'conv|implicit|xmma|cutlass|sm90|gemm|winograd|fft'),
         ('GroupNorm', r'group_norm|GroupNorm|ComputeFused|RowwiseMoments|compute_stat|ComputeInternalGradients|GammaBeta|gn_'),
         ('Adam', r'adam|Adam|multi_tensor'),
         ('elementwise, reductions, copies', r'.')]
total, by_kind, rows = 0.0, {k: 0.0 for k, _ in kinds}, []
for e in prof.key_averages():
    t = getattr(e, 'device_time_total', None)
    if t is None:
        t = e.cuda_time_total
    if t <= 0 or e.key.startswith('ProfilerStep'):
        continue
    total += t
    rows.append((t, e.count, e.key))
    for k, pat in kinds:
        if re.search(pat, e.key):
            by_kind[k] += t
            break
print(f'torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}, '
      f'TF32 convolutions {torch.backends.cudnn.allow_tf32}, deterministic {a.deterministic}, benchmark {a.benchmark}, '
      f'batch {a.batch}, base {a.base}, mult {a.mult}')
print(f'GPU kernel time per step: {total / steps / 1000:.2f} ms')
for k, _ in kinds:
    print(f'  {k:34s} {by_kind[k] / steps / 1000:7.2f} ms')
print('largest kernels (ms per step, calls per step):')
for t, n, key in sorted(rows, reverse=True)[:25]:
    print(f'  {t / steps / 1000:7.3f} {n / steps:5.1f}  {key[:150]}')
torch.cuda.synchronize()
t0 = time.perf_counter()
for _ in range(20):
    step()
torch.cuda.synchronize()
print(f'train step: {20 * a.batch / (time.perf_counter() - t0):.1f} images/s (20 steps, unprofiled)')

#!/usr/bin/env python3
"""Load a safetensors file written by `go run ./cmd/export` into the PyTorch
reference network (ScoreNet of ../shared/bench/torch_ref.py, whose copy
scripts/scorenet.py is used unless ref names another), strict=True.

The format is read by hand with NumPy (Python's safetensors package is not
needed): an 8-byte little-endian header length, a JSON header, raw data.

    import torch_safetensors as ts
    net, meta = ts.load_scorenet('model.safetensors')   # or ref='path/to/torch_ref.py'
    scores = net(x, sigma)          # x: (N, C, H, W) in [0, 1], sigma: (N,)

Command line (what the Go test and CI use): score raw little-endian float32
inputs and write the scores the same way:

    torch_safetensors.py MODEL.safetensors [--ref torch_ref.py] --x x.f32 --sigma sigma.f32 --out scores.f32
"""
import argparse, importlib.util, json, os, struct, sys
import numpy as np

DTYPES = {'F32': np.float32, 'F64': np.float64, 'F16': np.float16, 'BF16': None}


def read_safetensors(path):
    """Returns ({name: np.ndarray float32}, metadata dict of strings)."""
    with open(path, 'rb') as f:
        blob = f.read()
    (n,) = struct.unpack('<Q', blob[:8])
    header = json.loads(blob[8:8 + n])
    data = memoryview(blob)[8 + n:]
    meta = header.pop('__metadata__', {})
    out = {}
    for name, e in header.items():
        b, end = e['data_offsets']
        raw = data[b:end]
        if e['dtype'] == 'BF16':
            a = (np.frombuffer(raw, '<u2').astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, np.dtype(DTYPES[e['dtype']]).newbyteorder('<')).astype(np.float32)
        out[name] = a.reshape(e['shape'])
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: array} as F32 (what PyTorch's safetensors.torch.save_file does, by hand)."""
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype='<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    if metadata:
        header['__metadata__'] = metadata
    js = json.dumps(header).encode()
    js += b' ' * (-len(js) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(js)) + js + b''.join(blobs))


def import_ref(ref):
    spec = importlib.util.spec_from_file_location('torch_ref', ref)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# SCORENET is the copy of the reference's network beside this file.
SCORENET = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'scorenet.py')


def load_scorenet(path, ref=SCORENET):
    """Builds the reference ScoreNet from the file's metadata and loads it strictly."""
    import torch
    tensors, meta = read_safetensors(path)
    args = json.loads(meta['torch_ref'])
    net = import_ref(ref).ScoreNet(C=args['C'], base=args['base'], mult=tuple(args['mult']), emb=args['emb'])
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)
    return net.eval(), meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model', help='the safetensors file to load (or, with --new, to write)')
    ap.add_argument('--new', help='C,base,mult,emb (e.g. 1,2,1:2:2,16): write a freshly initialised, perturbed '
                    'reference ScoreNet to MODEL without our metadata, as PyTorch users would, then score with it')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--ref', default=SCORENET, help='the file defining ScoreNet (default: scripts/scorenet.py, the copy of ../shared/bench/torch_ref.py\'s)')
    ap.add_argument('--x', required=True, help='inputs, float32 little-endian (N, C, H, W)')
    ap.add_argument('--sigma', required=True, help='noise levels, float32 little-endian (N,)')
    ap.add_argument('--out', required=True)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(2)
    if a.new:
        C, base, mult, emb = a.new.split(',')
        torch.manual_seed(a.seed)
        net = import_ref(a.ref).ScoreNet(C=int(C), base=int(base), mult=tuple(int(m) for m in mult.split(':')), emb=int(emb))
        with torch.no_grad():
            for p in net.parameters():  # GroupNorm gains and every bias off their initial 1 and 0
                p.add_(0.2 * torch.randn_like(p))
        write_safetensors(a.model, {k: v.numpy() for k, v in net.state_dict().items()})
        net.eval()
        cfg, model = {'C': int(C)}, {}
    else:
        net, meta = load_scorenet(a.model, a.ref)
        cfg = json.loads(meta['torch_ref'])
        model = json.loads(meta.get('ncsn.model', '{}'))
    side = 28 if cfg['C'] == 1 else 32
    h, w = model.get('height', side), model.get('width', side)
    sigma = torch.from_numpy(np.fromfile(a.sigma, '<f4').copy())
    x = torch.from_numpy(np.fromfile(a.x, '<f4').copy()).reshape(len(sigma), cfg['C'], h, w)
    with torch.no_grad():
        s = net(x, sigma)
    s.numpy().astype('<f4').tofile(a.out)
    print(json.dumps({'n': len(sigma), 'shape': list(s.shape)}))


if __name__ == '__main__':
    main()

"""The reference network of the project, ScoreNet, as ../shared/bench/torch_ref.py defines it
(the PyTorch yardstick the Go network is measured against), kept here so that a clone anywhere
can load cmd/export's safetensors files: scripts/torch_safetensors.py uses it by default.
export's TestScoreNetCopy checks that these definitions are torch_ref.py's, line for line.
"""
import math
import torch, torch.nn as nn, torch.nn.functional as F


def gn(c):
    return nn.GroupNorm(min(8, c), c)


class ResBlock(nn.Module):
    def __init__(s, cin, cout, emb):
        super().__init__()
        s.n1, s.c1 = gn(cin), nn.Conv2d(cin, cout, 3, padding=1)
        s.e = nn.Linear(emb, cout)
        s.n2, s.c2 = gn(cout), nn.Conv2d(cout, cout, 3, padding=1)
        s.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(s, x, e):
        h = s.c1(F.silu(s.n1(x)))
        h = h + s.e(e)[:, :, None, None]
        h = s.c2(F.silu(s.n2(h)))
        return s.skip(x) + h


class ScoreNet(nn.Module):
    """U-Net: levels at full, 1/2, 1/4 resolution; output divided by sigma (NCSNv2)."""

    def __init__(s, C=1, base=32, mult=(1, 2, 2), emb=128):
        super().__init__()
        chs = [base * m for m in mult]
        s.register_buffer('W', torch.randn(emb // 2) * 16)
        s.mlp = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        s.inc = nn.Conv2d(C, chs[0], 3, padding=1)
        s.enc = nn.ModuleList()
        s.downs = nn.ModuleList()
        c = chs[0]
        for i, ch in enumerate(chs):
            s.enc.append(ResBlock(c, ch, emb))
            c = ch
            if i < len(chs) - 1:
                s.downs.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        s.mid = ResBlock(c, c, emb)
        s.dec = nn.ModuleList()
        s.ups = nn.ModuleList()
        for i in reversed(range(len(chs))):
            s.dec.append(ResBlock(c + chs[i], chs[i], emb))
            c = chs[i]
            if i > 0:
                s.ups.append(nn.Conv2d(c, c, 3, padding=1))
        s.outn, s.outc = gn(c), nn.Conv2d(c, C, 3, padding=1)

    def forward(s, x, sigma):
        p = torch.log(sigma)[:, None] * s.W[None, :] * 2 * math.pi
        e = s.mlp(torch.cat([torch.sin(p), torch.cos(p)], 1))
        h = s.inc(x)
        skips = []
        for i, blk in enumerate(s.enc):
            h = blk(h, e)
            skips.append(h)
            if i < len(s.downs):
                h = s.downs[i](h)
        h = s.mid(h, e)
        for j, blk in enumerate(s.dec):
            sk = skips.pop()
            if h.shape[-1] != sk.shape[-1]:
                h = F.interpolate(h, size=sk.shape[-2:], mode='nearest')
                h = s.ups[j - 1](h)
            h = blk(torch.cat([h, sk], 1), e)
        return s.outc(F.silu(s.outn(h))) / sigma[:, None, None, None]


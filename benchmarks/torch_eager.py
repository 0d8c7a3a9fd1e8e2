"""PyTorch eager reference of the same transformer, for `scaling bench` comparisons.

Same architecture as scaling/model.py (tied embedding, RoPE, pre-norm RMSNorm, causal
attention, GELU MLP, no biases), AdamW + grad clipping, random tokens. Needs torch, which
the project does not depend on:  pip install torch  then
    python benchmarks/torch_eager.py --d-model 128 --layers 2 --seq 128 --batch 32 --vocab 256
"""

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn


def rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(nn.Module):
    def __init__(self, d, h, f):
        super().__init__()
        self.h = h
        self.n1, self.n2 = nn.RMSNorm(d), nn.RMSNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.up, self.down = nn.Linear(d, f, bias=False), nn.Linear(f, d, bias=False)

    def forward(self, x, cos, sin):
        B, L, D = x.shape
        q, k, v = self.qkv(self.n1(x)).view(B, L, 3, self.h, D // self.h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(rope(q, cos, sin), rope(k, cos, sin), v, is_causal=True)
        x = x + self.out(y.transpose(1, 2).reshape(B, L, D))
        return x + self.down(F.gelu(self.up(self.n2(x)), approximate="tanh"))


class Model(nn.Module):
    def __init__(self, v, d, h, f, n, seq):
        super().__init__()
        self.emb = nn.Embedding(v, d)
        self.blocks = nn.ModuleList(Block(d, h, f) for _ in range(n))
        self.norm = nn.RMSNorm(d)
        inv = 1.0 / (10000 ** (torch.arange(0, d // h, 2).float() / (d // h)))
        ang = torch.arange(seq).float()[:, None] * inv[None]
        self.register_buffer("cos", ang.cos()), self.register_buffer("sin", ang.sin())

    def forward(self, t):
        x = self.emb(t)
        for b in self.blocks:
            x = b(x, self.cos, self.sin)
        return self.norm(x) @ self.emb.weight.T


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    torch.manual_seed(0)
    m = Model(a.vocab, a.d_model, a.heads, 4 * a.d_model, a.layers, a.seq)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.1)
    tokens = torch.randint(3, a.vocab, (a.batch, a.seq + 1))

    def step():
        logits = m(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), tokens[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()

    for _ in range(3):
        step()
    times, end = [], time.perf_counter() + a.seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"impl": "torch-eager", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "tokens_per_s": round(a.batch * a.seq / med, 1), "step_ms": round(1000 * med, 2),
                      "d_model": a.d_model, "layers": a.layers, "seq": a.seq, "batch": a.batch}))


if __name__ == "__main__":
    main()

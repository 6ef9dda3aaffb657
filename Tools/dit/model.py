"""Tiny class-conditional DiT (patchify, adaLN-zero, null class for CFG) and cosine schedule.

Prediction target: v (v = sqrt(abar) * eps - sqrt(1 - abar) * x0), which stays well conditioned
at both ends of the cosine schedule. Samplers convert v to eps / x0.
The Swift port in Sources/EffDiffusion mirrors this file line by line.
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class DiTConfig:
    image_size: int = 32
    channels: int = 3
    patch: int = 4
    hidden: int = 128
    depth: int = 6
    heads: int = 4
    mlp_ratio: int = 4
    num_classes: int = 12      # class id num_classes is the null (unconditional) class
    freq_dim: int = 256        # sinusoidal timestep features
    timesteps: int = 1000
    prediction: str = "v"
    schedule: str = "cosine"
    layer_norm_eps: float = 1e-6

    def to_dict(self):
        return asdict(self)


def cosine_alphas_cumprod(T=1000, s=0.008, max_beta=0.999):
    """alpha_bar[t] for t = 0..T-1 (Nichol & Dhariwal), via betas clipped at max_beta; float64."""
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    betas = [min(1 - f(i + 1) / f(i), max_beta) for i in range(T)]
    out, acc = [], 1.0
    for b in betas:
        acc *= 1 - b
        out.append(acc)
    return torch.tensor(out, dtype=torch.float64)


def timestep_features(t, dim, max_period=10000.0):
    """t: float [B] -> [B, dim] as [cos(t*f_i) ..., sin(t*f_i) ...], f_i = max_period^(-i/half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def pos_embed_2d(hidden, grid):
    """Fixed 2-D sin-cos position embedding [grid*grid, hidden] (first half rows h, second cols w)."""
    def one_d(dim, pos):
        omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
        out = pos.double()[:, None] * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)
    gh, gw = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    emb = torch.cat([one_d(hidden // 2, gh.reshape(-1)), one_d(hidden // 2, gw.reshape(-1))], 1)
    return emb.float()


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h = cfg.hidden
        self.heads = cfg.heads
        self.eps = cfg.layer_norm_eps
        self.qkv = nn.Linear(h, 3 * h)
        self.proj = nn.Linear(h, h)
        self.fc1 = nn.Linear(h, cfg.mlp_ratio * h)
        self.fc2 = nn.Linear(cfg.mlp_ratio * h, h)
        self.ada = nn.Linear(h, 6 * h)   # adaLN-zero: shift/scale/gate for attn and mlp

    def forward(self, x, c):
        B, N, H = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(F.silu(c)).chunk(6, dim=1)
        y = modulate(F.layer_norm(x, (H,), eps=self.eps), shift1, scale1)
        q, k, v = self.qkv(y).reshape(B, N, 3, self.heads, H // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(H // self.heads), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, N, H)
        x = x + gate1[:, None] * self.proj(y)
        y = modulate(F.layer_norm(x, (H,), eps=self.eps), shift2, scale2)
        y = self.fc2(F.gelu(self.fc1(y), approximate="tanh"))
        return x + gate2[:, None] * y


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        h, p, C = cfg.hidden, cfg.patch, cfg.channels
        self.grid = cfg.image_size // p
        self.patch_embed = nn.Linear(C * p * p, h)          # patch pixels in (c, py, px) order
        self.register_buffer("pos_embed", pos_embed_2d(h, self.grid), persistent=True)
        self.t_fc1 = nn.Linear(cfg.freq_dim, h)
        self.t_fc2 = nn.Linear(h, h)
        self.class_embed = nn.Embedding(cfg.num_classes + 1, h)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.final_ada = nn.Linear(h, 2 * h)
        self.final = nn.Linear(h, p * p * C)
        self._init()

    def _init(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight); nn.init.zeros_(m.bias)
        nn.init.normal_(self.class_embed.weight, std=0.02)
        nn.init.normal_(self.t_fc1.weight, std=0.02); nn.init.normal_(self.t_fc2.weight, std=0.02)
        for b in self.blocks:
            nn.init.zeros_(b.ada.weight); nn.init.zeros_(b.ada.bias)
        for m in (self.final_ada, self.final):
            nn.init.zeros_(m.weight); nn.init.zeros_(m.bias)

    def patchify(self, x):
        """[B, C, S, S] -> [B, N, C*p*p], tokens row-major over the patch grid."""
        B, C, S, _ = x.shape
        p, g = self.cfg.patch, self.grid
        return x.reshape(B, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(B, g * g, C * p * p)

    def unpatchify(self, y):
        B = y.shape[0]
        p, g, C = self.cfg.patch, self.grid, self.cfg.channels
        return y.reshape(B, g, g, C, p, p).permute(0, 3, 1, 4, 2, 5).reshape(B, C, g * p, g * p)

    def forward(self, x, t, y):
        """x [B,3,32,32], t float [B] (0..T-1), y int [B] (num_classes = null) -> v [B,3,32,32]."""
        tok = self.patch_embed(self.patchify(x)) + self.pos_embed[None]
        temb = self.t_fc2(F.silu(self.t_fc1(timestep_features(t, self.cfg.freq_dim))))
        c = temb + self.class_embed(y)
        for b in self.blocks:
            tok = b(tok, c)
        shift, scale = self.final_ada(F.silu(c)).chunk(2, dim=1)
        out = self.final(modulate(F.layer_norm(tok, (self.cfg.hidden,), eps=self.cfg.layer_norm_eps), shift, scale))
        return self.unpatchify(out)


CONFIGS = {
    "base": DiTConfig(hidden=128, depth=6, heads=4, patch=4),
    "small": DiTConfig(hidden=96, depth=3, heads=4, patch=4),   # ~0.28x the compute of base
}

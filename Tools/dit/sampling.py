"""Noise schedule in continuous time index and the samplers (DDPM, DDIM, DPM-Solver++ 2M).

Mirrors Sources/EffDiffusion/{NoiseSchedule,Samplers}.swift. Time is a continuous index
tau in [0, T-1]; log(alpha) is interpolated piecewise-linearly between the discrete
alpha_bar values (DPM-Solver's discrete-time convention). lambda = log(alpha / sigma).
"""
import math

import numpy as np
import torch

from model import cosine_alphas_cumprod


class Schedule:
    def __init__(self, T=1000):
        self.T = T
        self.abar = cosine_alphas_cumprod(T).numpy()
        self.log_alpha = 0.5 * np.log(self.abar)
        self.lam = self.log_alpha - 0.5 * np.log1p(-self.abar)   # decreasing in tau

    def log_alpha_at(self, tau):
        return float(np.interp(tau, np.arange(self.T), self.log_alpha))

    def alpha_sigma(self, tau):
        la = self.log_alpha_at(tau)
        return math.exp(la), math.sqrt(max(0.0, 1.0 - math.exp(2 * la)))

    def lambda_at(self, tau):
        a, s = self.alpha_sigma(tau)
        return math.log(a) - math.log(s)

    def tau_at_lambda(self, lam):
        """Inverse of lambda(tau): log_alpha(lambda) = -0.5*log(1+exp(-2 lambda)), then invert log_alpha."""
        la = -0.5 * math.log1p(math.exp(-2 * lam))
        # log_alpha is decreasing in tau: interpolate on the reversed arrays.
        return float(np.interp(-la, -self.log_alpha, np.arange(self.T)))

    def taus(self, steps, spacing):
        if spacing == "time":
            return [self.T - 1 - i * (self.T - 1) / steps for i in range(steps + 1)]
        lam0, lam1 = self.lambda_at(self.T - 1), self.lambda_at(0)
        taus = [self.tau_at_lambda(lam0 + i * (lam1 - lam0) / steps) for i in range(steps + 1)]
        taus[0], taus[-1] = self.T - 1.0, 0.0
        return taus


def guided_x0(model, x, tau, y, cfg, null_class, sched):
    """One batched forward (cond + uncond) -> CFG-combined v -> predicted x0 and eps."""
    B = x.shape[0]
    xx = torch.cat([x, x]); tt = torch.full((2 * B,), float(tau))
    yy = torch.cat([y, torch.full_like(y, null_class)])
    with torch.no_grad():
        v_c, v_u = model(xx, tt, yy).chunk(2)
    v = v_u + cfg * (v_c - v_u)
    a, s = sched.alpha_sigma(tau)
    return a * x - s * v, s * x + a * v   # x0, eps


def sample(model, y, steps, sampler="dpmpp2m", cfg=3.0, seed=0, sched=None, noise=None, trace=None):
    """Returns images in [-1,1] [B,3,32,32]. trace (list) receives (tau, x0) per step."""
    sched = sched or Schedule(model.cfg.timesteps)
    B = y.shape[0]; C, S = model.cfg.channels, model.cfg.image_size
    g = torch.Generator().manual_seed(seed)
    x = noise.clone() if noise is not None else torch.randn((B, C, S, S), generator=g)
    null = model.cfg.num_classes
    if sampler == "ddpm":
        taus = list(range(sched.T - 1, -1, -1))
    else:
        taus = sched.taus(steps, "logsnr" if sampler == "dpmpp2m" else "time")
    prev_x0, prev_h = None, None
    for i in range(len(taus) - 1):
        s_tau, t_tau = taus[i], taus[i + 1]
        x0, eps = guided_x0(model, x, s_tau, y, cfg, null, sched)
        if trace is not None:
            trace.append((s_tau, x0.clone()))
        a_s, s_s = sched.alpha_sigma(s_tau); a_t, s_t = sched.alpha_sigma(t_tau)
        if sampler == "ddpm":
            ab_s, ab_t = a_s ** 2, a_t ** 2
            beta = 1 - ab_s / ab_t
            mean = (a_t * beta / (1 - ab_s)) * x0 + (math.sqrt(1 - beta) * (1 - ab_t) / (1 - ab_s)) * x
            var = beta * (1 - ab_t) / (1 - ab_s)
            x = mean + math.sqrt(var) * torch.randn(x.shape, generator=g)
            continue
        h = (math.log(a_t) - math.log(s_t)) - (math.log(a_s) - math.log(s_s))
        d = x0
        n = len(taus) - 1
        lower_final = i == n - 1 and n < 15   # lower_order_final (DPM-Solver++ README)
        if sampler == "dpmpp2m" and prev_x0 is not None and not lower_final:
            r = prev_h / h
            d = x0 + (x0 - prev_x0) / (2 * r)
        x = (s_t / s_s) * x - a_t * math.expm1(-h) * d
        prev_x0, prev_h = x0, h
    return x

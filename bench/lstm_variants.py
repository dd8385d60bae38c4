#!/usr/bin/env python3
"""The IMDB table's LSTM-4: two rewrites of ``modules/lstm.py``'s loop timed against it, and the batch size.

    OMP_NUM_THREADS=1 .venv/bin/python bench/lstm_variants.py [--reps 3] [--batch 32] [--steps 400]

Prints, for 4 layers of 64/64 over ``--steps`` positions (forward + backward of the LSTM alone, unmasked and masked),
the seconds per update of: ``autograd`` (the module as it is), ``bptt`` (a hand-written backward through time: one
autograd node per layer, the gate gradients from the saved activations, U's gradient as one matrix product over all
steps) and ``jit`` (the same loop under ``torch.jit.script``), in alternating rounds; then the plain loop at 4× the
batch. First it checks that ``bptt``'s gradients equal autograd's (float64). Neither rewrite is used by the project:
BENCHMARKS.md, "The IMDB table's LSTM-4", says why.
"""

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fairseq_vanilla.modules.lstm import lstm_layer  # noqa: E402


class Recurrence(torch.autograd.Function):
    """h_t, c_t over all steps from gates_x = W x + b ``(B, T, 4H)`` and U ``(4H, H)``, with a hand-written backward."""

    @staticmethod
    def forward(ctx, gates_x, weight_hh, h0, c0, keep):
        B, T, H4 = gates_x.shape
        H = H4 // 4
        hs, cs = gates_x.new_empty(T + 1, B, H), gates_x.new_empty(T + 1, B, H)  # (T+1, B, H)
        acts = gates_x.new_empty(T, B, H4)  # (T, B, 4H): σ(i), σ(f), tanh(g), σ(o)
        hs[0], cs[0] = h0, c0
        gx = gates_x.transpose(0, 1)  # (T, B, 4H)
        for t in range(T):
            a = torch.addmm(gx[t], hs[t], weight_hh.t())  # (B, 4H)
            torch.sigmoid(a, out=acts[t])
            torch.tanh(a[:, 2 * H : 3 * H], out=acts[t, :, 2 * H : 3 * H])
            i, f, g, o = acts[t].chunk(4, 1)  # 4 × (B, H)
            c = torch.addcmul(f * cs[t], i, g)
            h = o * torch.tanh(c)
            if keep is not None:
                k = keep[:, t : t + 1]  # (B, 1)
                c, h = torch.where(k, c, cs[t]), torch.where(k, h, hs[t])
            cs[t + 1], hs[t + 1] = c, h
        saved_keep = keep if keep is not None else torch.empty(0, dtype=torch.bool)
        ctx.save_for_backward(weight_hh, hs, cs, acts, saved_keep)
        ctx.masked = keep is not None
        return hs[1:].transpose(0, 1), hs[T], cs[T]  # (B, T, H), (B, H), (B, H)

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        weight_hh, hs, cs, acts, keep = ctx.saved_tensors
        T, B, H4 = acts.shape
        dh = d_hT.clone() if d_hT is not None else hs.new_zeros(B, H4 // 4)
        dc = d_cT.clone() if d_cT is not None else hs.new_zeros(B, H4 // 4)
        d_out = d_out.transpose(0, 1) if d_out is not None else None  # (T, B, H)
        d_gates = acts.new_empty(T, B, H4)  # (T, B, 4H)
        for t in range(T - 1, -1, -1):
            if d_out is not None:
                dh = dh + d_out[t]
            i, f, g, o = acts[t].chunk(4, 1)
            tc = torch.tanh(cs[t + 1])
            if ctx.masked:  # a padded step passed (h, c) through unchanged
                k = keep[:, t : t + 1]
                dh_skip, dc_skip = dh.masked_fill(k, 0.0), dc.masked_fill(k, 0.0)
                dh, dc = dh.masked_fill(~k, 0.0), dc.masked_fill(~k, 0.0)
            dcell = dc + dh * o * (1 - tc * tc)
            di, df, dg, do = d_gates[t].chunk(4, 1)
            torch.mul(dcell * g, i * (1 - i), out=di)
            torch.mul(dcell * cs[t], f * (1 - f), out=df)
            torch.mul(dcell * i, 1 - g * g, out=dg)
            torch.mul(dh * tc, o * (1 - o), out=do)
            dh, dc = d_gates[t] @ weight_hh, dcell * f
            if ctx.masked:
                dh, dc = dh + dh_skip, dc + dc_skip
        d_weight_hh = d_gates.reshape(T * B, H4).t() @ hs[:-1].reshape(T * B, H4 // 4)  # (4H, H)
        return d_gates.transpose(0, 1), d_weight_hh, dh, dc, None


def layer_bptt(x, weight_ih, weight_hh, bias, keep=None):
    """As ``lstm_layer``, through :class:`Recurrence`."""
    zeros = x.new_zeros(x.shape[0], weight_hh.size(1))  # (B, H)
    out, h, c = Recurrence.apply(F.linear(x, weight_ih, bias), weight_hh, zeros, zeros, keep)
    return out, (h, c)


@torch.jit.script
def scripted_loop(
    gates_x: Tensor, weight_hh: Tensor, h: Tensor, c: Tensor, keep: Optional[Tensor]
) -> Tuple[Tensor, Tensor, Tensor]:
    outputs: List[Tensor] = []
    for t, gates_t in enumerate(gates_x.unbind(1)):  # T × (B, 4H)
        i, f, g, o = torch.addmm(gates_t, h, weight_hh.t()).chunk(4, 1)
        c_t = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_t = torch.sigmoid(o) * torch.tanh(c_t)
        if keep is not None:
            step = keep[:, t].unsqueeze(1)  # (B, 1)
            h_t, c_t = torch.where(step, h_t, h), torch.where(step, c_t, c)
        h, c = h_t, c_t
        outputs.append(h)
    return torch.stack(outputs, 1), h, c  # (B, T, H)


def layer_jit(x, weight_ih, weight_hh, bias, keep=None):
    """As ``lstm_layer``, the loop under TorchScript."""
    zeros = x.new_zeros(x.shape[0], weight_hh.size(1))  # (B, H)
    out, h, c = scripted_loop(F.linear(x, weight_ih, bias), weight_hh, zeros, zeros, keep)
    return out, (h, c)


def check_gradients() -> float:
    """Largest difference between bptt's and autograd's outputs and gradients, float64, masked and not."""
    torch.manual_seed(0)
    worst = 0.0
    for masked in (False, True):
        x = torch.randn(5, 7, 3, dtype=torch.double, requires_grad=True)
        w = [torch.randn(*s, dtype=torch.double, requires_grad=True) for s in ((16, 3), (16, 4), (16,))]
        keep = torch.rand(5, 7) > 0.3 if masked else None
        grads = []
        for fn in (lstm_layer, layer_bptt):
            out, (h, c) = fn(x, *w, keep)
            loss = out.sum() + (h * h).sum() + (c * 2).sum()
            grads.append([out.detach(), *torch.autograd.grad(loss, [x, *w])])
        worst = max(worst, *(float((a - b).abs().max()) for a, b in zip(*grads)))
    return worst


def seconds_per_update(fn, batch: int, steps: int, masked: bool) -> float:
    """Forward + backward of 4 layers of 64/64 (each layer timed once, ×4)."""
    torch.manual_seed(0)
    x = torch.randn(batch, steps, 64, requires_grad=True)
    w = [(torch.randn(*s) * 0.1).requires_grad_() for s in ((256, 64), (256, 64), (256,))]
    keep = torch.rand(batch, steps) > 0.3 if masked else None
    start = time.perf_counter()
    out, (h, _) = fn(x, *w, keep)
    (out.sum() + h.sum()).backward()
    return 4 * (time.perf_counter() - start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=400)
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    print(f"bptt against autograd, float64: largest difference {check_gradients():.1e}")
    variants = {"autograd": lstm_layer, "bptt": layer_bptt, "jit": layer_jit}
    times = {(name, m): [] for name in variants for m in (False, True)}
    for _ in range(a.reps):  # alternating rounds: every variant once a round
        for name, fn in variants.items():
            for masked in (False, True):
                times[name, masked].append(seconds_per_update(fn, a.batch, a.steps, masked))
    print(f"seconds per update, 4 layers 64/64, batch {a.batch} × {a.steps} steps, {torch.get_num_threads()} thread(s)")
    for (name, masked), ts in times.items():
        print(
            f"  {name:8s} {'masked' if masked else 'unmasked':8s} median {statistics.median(ts):.3f} "
            f"(min {min(ts):.3f}, max {max(ts):.3f})"
        )
    big = [seconds_per_update(lstm_layer, 4 * a.batch, a.steps, True) for _ in range(a.reps)]
    small = times["autograd", True]
    print(
        f"  autograd masked at batch {4 * a.batch}: median {statistics.median(big):.3f} "
        f"({statistics.median(big) / statistics.median(small):.2f}× batch {a.batch}'s per update)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

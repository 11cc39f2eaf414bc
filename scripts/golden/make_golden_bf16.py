"""Golden values for Kumo's bf16 mixed precision (`train.precision = "bf16"`), by PyTorch.

The same model, batch and 5 AdamW steps as make_golden.py, in float64, except that every
matrix product (q/k/v/o, gate/up/down, the output head) rounds its operands to bf16 as Kumo
does: forward x·Wᵀ with bf16(x) and bf16(W); backward dW = bf16(dy)ᵀ·bf16(x) and
dx = bf16(dy)·bf16(W). Products of bf16 values are exact, so only the accumulation (float64
here, fp32 in Kumo) and rare rounding ties differ. Master weights, AdamW, norms, softmax and
the loss stay in float64 (fp32 in Kumo). Writes golden-bf16-<variant>.safetensors.

Run: python3 scripts/golden/make_golden_bf16.py   (needs torch; `make test` does not)
"""

import torch

import make_golden as g


def bf16(x):
    """x rounded to bf16 as Kumo rounds fp32 (round to nearest even), kept in x's dtype."""
    return x.float().bfloat16().to(x.dtype)


class BF16Linear(torch.autograd.Function):
    """x @ w.T with bf16 operands, and the backward's products with bf16 operands."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return bf16(x) @ bf16(w).T

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        dy16 = bf16(dy)
        dw = dy16.reshape(-1, dy.shape[-1]).T @ bf16(x).reshape(-1, x.shape[-1])
        return dy16 @ bf16(w), dw


if __name__ == "__main__":
    for i, name in enumerate(["gqa", "tied"]):
        g.make_variant(name, g.VARIANTS[name], seed=200 + i, linear=BF16Linear.apply, prefix="golden-bf16")

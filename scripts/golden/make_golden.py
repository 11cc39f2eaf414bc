"""Golden values for Kumo's model and optimizer, computed by PyTorch in float64.

For each variant of a tiny LLaMA-family model (MHA, GQA, MQA, parallel_layers, tied
embeddings, and "sft": GQA on a batch of SFT rows whose prompt tokens and padding are masked) this writes Tests/KumoTrainTests/Golden/golden-<variant>.safetensors holding:
the initial weights (Hugging Face names), a batch (input_ids, targets with -100 = ignored),
the logits and loss of the initial weights, every parameter's gradient (grad.<name>), and the
losses, pre-clip gradient norms, learning rates and parameters (step5.<name>) of 5 AdamW
steps with warmup + cosine schedule and global-norm clipping. Weights are drawn as float32;
everything after is computed in float64, so the files are a reference for Kumo's fp32 code.

Run: python3 scripts/golden/make_golden.py   (needs torch; `make test` does not)
"""

import json
import math
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "KumoTrainTests", "Golden")

BASE = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, rope_theta=10000.0, rms_norm_eps=1e-5,
            tie_word_embeddings=False, parallel_layers=False)
VARIANTS = {
    "mha": dict(num_key_value_heads=4),
    "gqa": dict(num_key_value_heads=2),
    "mqa": dict(num_key_value_heads=1),
    "parallel": dict(num_key_value_heads=2, parallel_layers=True),
    "tied": dict(num_key_value_heads=2, tie_word_embeddings=True),
}
BATCH, SEQ = 2, 8
# The SFT case: one example per row, [prompt, response] token ids (the response ends with EOS_ID),
# each row padded with EOS_ID to SFT_SEQ; targets are -100 on prompt tokens and padding.
EOS_ID, SFT_SEQ = 95, 12
SFT_EXAMPLES = [([5, 17, 33, 2, 60], [41, 8, EOS_ID]),
                ([70, 3], [12, 19, 44, 23, 6, 81, 30, 11, EOS_ID]),
                ([9, 9, 14, 52, 27, 66, 38, 1, 50], [77, EOS_ID]),
                ([88, 21, 4], [7, 62, 35, 15, 90, 3, 18, 49, 25, EOS_ID])]
OPT = dict(lr=1e-3, min_lr=1e-4, warmup_steps=2, steps=5, beta1=0.9, beta2=0.95, eps=1e-8,
           weight_decay=0.1, grad_clip=0.5)


def param_shapes(c):
    h, hd = c["hidden_size"], c["hidden_size"] // c["num_attention_heads"]
    qw, kvw, f = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd, c["intermediate_size"]
    shapes = {"model.embed_tokens.weight": (c["vocab_size"], h)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (h,)
        shapes[p + "self_attn.q_proj.weight"] = (qw, h)
        shapes[p + "self_attn.k_proj.weight"] = (kvw, h)
        shapes[p + "self_attn.v_proj.weight"] = (kvw, h)
        shapes[p + "self_attn.o_proj.weight"] = (h, qw)
        if not c["parallel_layers"]:
            shapes[p + "post_attention_layernorm.weight"] = (h,)
        shapes[p + "mlp.gate_proj.weight"] = (f, h)
        shapes[p + "mlp.up_proj.weight"] = (f, h)
        shapes[p + "mlp.down_proj.weight"] = (h, f)
    shapes["model.norm.weight"] = (h,)
    if not c["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (c["vocab_size"], h)
    return shapes


def init_params(c, gen):
    """float32 draws: N(0, 0.02) projections, N(0, 0.1) embeddings, 1 + N(0, 0.1) norms."""
    params = {}
    for name, shape in param_shapes(c).items():
        if len(shape) == 1:
            w = 1 + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float32)
        elif "embed_tokens" in name:
            w = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float32)
        else:
            w = 0.02 * torch.randn(shape, generator=gen, dtype=torch.float32)
        params[name] = w
    return params


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, theta):
    """HF LLaMA rotate_half convention; x is [B, heads, T, hd]."""
    hd, t = x.shape[-1], x.shape[-2]
    inv = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def matmul_t(x, w):
    """x @ w.T: every matrix product of the model goes through here (make_golden_bf16.py swaps it)."""
    return x @ w.T


def forward(c, p, ids, linear=matmul_t):
    h, nh, kv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd, eps = h // nh, c["rms_norm_eps"]
    b, t = ids.shape
    x = p["model.embed_tokens.weight"][ids]
    mask = torch.full((t, t), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(c["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        n = rms_norm(x, p[pre + "input_layernorm.weight"], eps)
        q = linear(n, p[pre + "self_attn.q_proj.weight"]).view(b, t, nh, hd).transpose(1, 2)
        k = linear(n, p[pre + "self_attn.k_proj.weight"]).view(b, t, kv, hd).transpose(1, 2)
        v = linear(n, p[pre + "self_attn.v_proj.weight"]).view(b, t, kv, hd).transpose(1, 2)
        q, k = rope(q, c["rope_theta"]), rope(k, c["rope_theta"])
        k, v = k.repeat_interleave(nh // kv, 1), v.repeat_interleave(nh // kv, 1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, -1) @ v
        a = linear(att.transpose(1, 2).reshape(b, t, nh * hd), p[pre + "self_attn.o_proj.weight"])

        def mlp(m):
            g = linear(m, p[pre + "mlp.gate_proj.weight"])
            u = linear(m, p[pre + "mlp.up_proj.weight"])
            return linear(torch.nn.functional.silu(g) * u, p[pre + "mlp.down_proj.weight"])

        if c["parallel_layers"]:
            x = x + a + mlp(n)
        else:
            x = x + a
            x = x + mlp(rms_norm(x, p[pre + "post_attention_layernorm.weight"], eps))
    x = rms_norm(x, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if c["tie_word_embeddings"] else p["lm_head.weight"]
    return linear(x, head)


def loss_fn(logits, targets):
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=-100)


def lr_at(s):
    if s < OPT["warmup_steps"]:
        return OPT["lr"] * (s + 1) / OPT["warmup_steps"]
    progress = min(1.0, (s - OPT["warmup_steps"]) / max(1, OPT["steps"] - OPT["warmup_steps"]))
    return OPT["min_lr"] + 0.5 * (OPT["lr"] - OPT["min_lr"]) * (1 + math.cos(math.pi * progress))


def random_batch(c, gen):
    ids = torch.randint(0, c["vocab_size"], (BATCH, SEQ), generator=gen)
    targets = torch.randint(0, c["vocab_size"], (BATCH, SEQ), generator=gen)
    targets[0, 2] = targets[1, 0] = targets[1, 7] = -100
    return ids, targets


def sft_batch(c, gen):
    """Kumo's SFT rows: example x0..x(n-1) takes n-1 slots (input x_i, target x_(i+1)); only
    targets that are response tokens are scored."""
    ids = torch.full((len(SFT_EXAMPLES), SFT_SEQ), EOS_ID, dtype=torch.int64)
    targets = torch.full((len(SFT_EXAMPLES), SFT_SEQ), -100, dtype=torch.int64)
    for b, (prompt, response) in enumerate(SFT_EXAMPLES):
        x = prompt + response
        for i in range(len(x) - 1):
            ids[b, i] = x[i]
            if i + 1 >= len(prompt):
                targets[b, i] = x[i + 1]
    return ids, targets


def make_variant(name, overrides, seed, linear=matmul_t, prefix="golden", batch=random_batch):
    c = dict(BASE, **overrides)
    gen = torch.Generator().manual_seed(seed)
    init = init_params(c, gen)
    ids, targets = batch(c, gen)

    params = {k: v.double().clone().requires_grad_(True) for k, v in init.items()}
    logits = forward(c, params, ids, linear)
    loss = loss_fn(logits, targets)
    loss.backward()
    tensors = {"input_ids": ids.int(), "targets": targets.int(), "loss": loss.detach().reshape(1),
               "logits": logits.detach()}
    tensors.update(init)
    tensors.update({"grad." + k: v.grad.detach() for k, v in params.items()})

    params = {k: v.double().clone().requires_grad_(True) for k, v in init.items()}
    decay = [v for k, v in params.items() if v.dim() == 2]
    no_decay = [v for k, v in params.items() if v.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": OPT["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"])
    losses, norms, lrs = [], [], []
    for s in range(OPT["steps"]):
        opt.zero_grad()
        step_loss = loss_fn(forward(c, params, ids, linear), targets)
        step_loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), OPT["grad_clip"])
        for group in opt.param_groups:
            group["lr"] = lr_at(s)
        opt.step()
        losses.append(step_loss.item())
        norms.append(norm.item())
        lrs.append(lr_at(s))
    tensors["losses"] = torch.tensor(losses)
    tensors["grad_norms"] = torch.tensor(norms)
    tensors["lrs"] = torch.tensor(lrs)
    tensors.update({"step5." + k: v.detach() for k, v in params.items()})

    meta = {k: json.dumps(v) for k, v in c.items()}
    meta.update({"optim." + k: json.dumps(v) for k, v in OPT.items()})
    meta["batch"], meta["seq_length"] = json.dumps(ids.shape[0]), json.dumps(ids.shape[1])
    if batch is sft_batch:
        meta["sft_examples"], meta["eos_id"] = json.dumps(SFT_EXAMPLES), json.dumps(EOS_ID)
    path = os.path.join(OUT, f"{prefix}-{name}.safetensors")
    write_safetensors(path, tensors, meta)
    check_round_trip(path, tensors)
    clipped = sum(n > OPT["grad_clip"] for n in norms)
    print(f"{name}: loss {loss.item():.6f}, losses {[round(x, 6) for x in losses]}, "
          f"grad norms {[round(x, 4) for x in norms]} ({clipped} clipped), {os.path.getsize(path)} bytes")


def to_numpy(t):
    if t.dtype in (torch.int32, torch.int64):
        return t.to(torch.int32).numpy(), "I32"
    return t.to(torch.float32).numpy(), "F32"


def write_safetensors(path, tensors, meta):
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for name in sorted(tensors):
        arr, dtype = to_numpy(tensors[name])
        blob = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def check_round_trip(path, tensors):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    for name, t in tensors.items():
        e = header[name]
        arr, dtype = to_numpy(t)
        lo, hi = e["data_offsets"]
        back = np.frombuffer(data[lo:hi], dtype="<f4" if dtype == "F32" else "<i4").reshape(e["shape"])
        assert np.array_equal(back, arr), name


if __name__ == "__main__":
    # Arguments name the variants to write (default: all); "sft" is the masked SFT batch.
    import sys
    wanted = set(sys.argv[1:]) or set(VARIANTS) | {"sft"}
    os.makedirs(OUT, exist_ok=True)
    for i, (name, overrides) in enumerate(VARIANTS.items()):
        if name in wanted:
            make_variant(name, overrides, seed=100 + i)
    if "sft" in wanted:
        make_variant("sft", dict(num_key_value_heads=2), seed=200, batch=sft_batch)

"""Golden values for Kumo's mixture of experts, computed by transformers' MixtralForCausalLM.

A small random Mixtral (vocab 64, hidden 32, 2 layers, 4 heads with 2 key/value heads, 4 experts,
top-2, intermediate 24, output_router_logits with router_aux_loss_coef 0.02) in float64 with eager
attention and eager experts, on make_golden.py's random batch. Writes
Tests/KumoTrainTests/Golden/golden-moe.safetensors with make_golden.py's keys and layout: the
initial weights under save_pretrained's (Kumo's) names, input_ids, targets (-100 = ignored), the
logits, loss = mean cross-entropy + coef·aux (what MixtralForCausalLM adds; the cross-entropy is
taken over Kumo's already shifted targets), aux_loss (load_balancing_loss_func alone), every
parameter's gradient of that loss (grad.<name>, transformers' fused experts split back into
w1/w3/w2), and 5 AdamW steps with warmup, cosine decay and clipping (losses, grad_norms, lrs,
step5.<name>).

transformers computes RMSNorm, the router softmax and the RoPE table in float32 even in a float64
model, so the reference carries float32 rounding there (about 1e-7 relative). The script asserts
that in every forward pass each token's k-th and (k+1)-th router probabilities differ by at least
MARGIN, so fp32 rounding cannot choose other experts than transformers did.

Run: python3 scripts/golden/make_mixtral_golden.py   (needs torch and transformers; `make test` does not)
"""

import json
import os

import torch
from transformers import MixtralConfig, MixtralForCausalLM

import make_golden as g

CONFIG = dict(g.BASE, vocab_size=64, intermediate_size=24, num_key_value_heads=2, num_local_experts=4,
              num_experts_per_tok=2, router_aux_loss_coef=0.02, output_router_logits=True)
SEED = 302
ROUTER_STD = 0.5  # routers far from uniform, so the choices are clear and their gradients large
MARGIN = 1e-4


def param_shapes(c):
    """make_golden's LLaMA tensors with each MLP replaced by a router and per-expert w1, w3, w2."""
    shapes = {}
    h, f = c["hidden_size"], c["intermediate_size"]
    for name, shape in g.param_shapes(c).items():
        if ".mlp." not in name:
            shapes[name] = shape
        elif name.endswith("mlp.gate_proj.weight"):
            p = name[: -len("mlp.gate_proj.weight")] + "block_sparse_moe."
            shapes[p + "gate.weight"] = (c["num_local_experts"], h)
            for e in range(c["num_local_experts"]):
                shapes.update({f"{p}experts.{e}.w1.weight": (f, h), f"{p}experts.{e}.w3.weight": (f, h),
                               f"{p}experts.{e}.w2.weight": (h, f)})
    return shapes


def init_params(c, gen):
    """make_golden's float32 draws, routers N(0, ROUTER_STD)."""
    params = {}
    for name, shape in param_shapes(c).items():
        if len(shape) == 1:
            params[name] = 1 + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float32)
        elif "embed_tokens" in name:
            params[name] = 0.1 * torch.randn(shape, generator=gen, dtype=torch.float32)
        else:
            std = ROUTER_STD if name.endswith("block_sparse_moe.gate.weight") else 0.02
            params[name] = std * torch.randn(shape, generator=gen, dtype=torch.float32)
    return params


def fused_names(c, layer):
    """transformers 5's in-memory tensors of one layer's mixture."""
    p = f"model.layers.{layer}.mlp."
    return p + "gate.weight", p + "experts.gate_up_proj", p + "experts.down_proj"


def to_fused(c, params):
    """save_pretrained names → transformers' state dict (gate_up_proj[e] = [w1; w3], down_proj[e] = w2)."""
    state = {k: v for k, v in params.items() if "block_sparse_moe" not in k}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}.block_sparse_moe."
        router, gate_up, down = fused_names(c, i)
        experts = range(c["num_local_experts"])
        state[router] = params[p + "gate.weight"]
        state[gate_up] = torch.stack([torch.cat([params[f"{p}experts.{e}.w1.weight"],
                                                 params[f"{p}experts.{e}.w3.weight"]]) for e in experts])
        state[down] = torch.stack([params[f"{p}experts.{e}.w2.weight"] for e in experts])
    return state


def from_fused(c, state):
    """The inverse of to_fused."""
    out = {k: v for k, v in state.items() if ".mlp." not in k}
    f = c["intermediate_size"]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}.block_sparse_moe."
        router, gate_up, down = fused_names(c, i)
        out[p + "gate.weight"] = state[router]
        for e in range(c["num_local_experts"]):
            out[f"{p}experts.{e}.w1.weight"] = state[gate_up][e, :f]
            out[f"{p}experts.{e}.w3.weight"] = state[gate_up][e, f:]
            out[f"{p}experts.{e}.w2.weight"] = state[down][e]
    return out


def mixtral(c):
    config = MixtralConfig(
        vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], intermediate_size=c["intermediate_size"],
        num_hidden_layers=c["num_hidden_layers"], num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"], max_position_embeddings=64, rope_theta=c["rope_theta"],
        rms_norm_eps=c["rms_norm_eps"], tie_word_embeddings=False, num_local_experts=c["num_local_experts"],
        num_experts_per_tok=c["num_experts_per_tok"], router_aux_loss_coef=c["router_aux_loss_coef"],
        output_router_logits=c["output_router_logits"], router_jitter_noise=0.0, sliding_window=None)
    model = MixtralForCausalLM._from_config(config, attn_implementation="eager", experts_implementation="eager")
    return model.double().eval()


def loss_and_margin(c, model, ids, targets):
    """MixtralForCausalLM's loss (CE over Kumo's targets + coef·aux), its aux loss, its logits, and the
    smallest gap between a token's k-th and (k+1)-th router probabilities."""
    out = model(input_ids=ids)
    aux = out.aux_loss
    loss = g.loss_fn(out.logits, targets) + c["router_aux_loss_coef"] * aux
    k = c["num_experts_per_tok"]
    margin = min((torch.softmax(r.float(), -1).sort(-1, descending=True).values[:, k - 1:k + 1]
                  .diff(dim=-1).abs().min().item()) for r in out.router_logits)
    assert margin > MARGIN, f"router probabilities within {margin} of a tie: pick another SEED"
    return loss, aux, out.logits, margin


def main():
    c = CONFIG
    gen = torch.Generator().manual_seed(SEED)
    init = init_params(c, gen)
    ids, targets = g.random_batch(c, gen)
    model = mixtral(c)
    model.load_state_dict({k: v.double() for k, v in to_fused(c, init).items()}, strict=True)

    loss, aux, logits, margin = loss_and_margin(c, model, ids, targets)
    loss.backward()
    tensors = {"input_ids": ids.int(), "targets": targets.int(), "loss": loss.detach().reshape(1),
               "aux_loss": aux.detach().reshape(1), "logits": logits.detach()}
    tensors.update(init)
    grads = from_fused(c, {k: p.grad.detach() for k, p in model.named_parameters()})
    tensors.update({"grad." + k: v for k, v in grads.items()})

    model.zero_grad()
    named = dict(model.named_parameters())
    opt = torch.optim.AdamW([{"params": [p for p in named.values() if p.dim() >= 2], "weight_decay": g.OPT["weight_decay"]},
                             {"params": [p for p in named.values() if p.dim() == 1], "weight_decay": 0.0}],
                            lr=g.OPT["lr"], betas=(g.OPT["beta1"], g.OPT["beta2"]), eps=g.OPT["eps"])
    losses, norms, lrs = [], [], []
    for s in range(g.OPT["steps"]):
        opt.zero_grad()
        step_loss, _, _, step_margin = loss_and_margin(c, model, ids, targets)
        margin = min(margin, step_margin)
        step_loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(named.values()), g.OPT["grad_clip"])
        for group in opt.param_groups:
            group["lr"] = g.lr_at(s)
        opt.step()
        losses.append(step_loss.item())
        norms.append(norm.item())
        lrs.append(g.lr_at(s))
    tensors["losses"] = torch.tensor(losses)
    tensors["grad_norms"] = torch.tensor(norms)
    tensors["lrs"] = torch.tensor(lrs)
    final = from_fused(c, {k: p.detach() for k, p in named.items()})
    tensors.update({"step5." + k: v for k, v in final.items()})

    meta = {k: json.dumps(v) for k, v in c.items()}
    meta.update({"optim." + k: json.dumps(v) for k, v in g.OPT.items()})
    meta["batch"], meta["seq_length"] = json.dumps(ids.shape[0]), json.dumps(ids.shape[1])
    path = os.path.join(g.OUT, "golden-moe.safetensors")
    g.write_safetensors(path, tensors, meta)
    g.check_round_trip(path, tensors)
    print(f"moe: loss {loss.item():.6f} (aux {aux.item():.6f}), losses {[round(x, 6) for x in losses]}, "
          f"grad norms {[round(x, 4) for x in norms]}, smallest top-k margin {margin:.2e}, "
          f"{os.path.getsize(path)} bytes")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()

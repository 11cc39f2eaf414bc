"""Golden values for Kumo's DPO loss, computed by PyTorch in float64.

TRL's sigmoid DPO loss, reimplemented from its definition: for each pair, with
z = beta * ((logp_chosen - ref_chosen) - (logp_rejected - ref_rejected)),
loss = -(1 - eps) * log(sigmoid(z)) - eps * log(sigmoid(-z)), averaged over the pairs, where
logp is the sum of the log-probabilities of a row's scored targets (-100: not scored).

Writes Tests/KumoTrainTests/Golden/golden-dpo.safetensors with the GQA model of make_golden.py
(initial weights, Hugging Face names), the rows (chosen then rejected per pair: input_ids,
targets), the reference log-probabilities, the loss and every parameter's gradient.

Run: python3 scripts/golden/make_dpo_golden.py   (needs torch; `make test` does not)
"""

import json
import os

import torch

from make_golden import BASE, OUT, VARIANTS, check_round_trip, forward, init_params, write_safetensors

PAIRS, SEQ, PROMPT = 3, 8, 3
BETA, LABEL_SMOOTHING = 0.5, 0.1


def row_logps(logits, targets):
    logp = torch.log_softmax(logits, -1)
    scored = targets != -100
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * scored).sum(-1)


def dpo_loss(logps, ref):
    chosen, rejected = logps[0::2], logps[1::2]
    z = BETA * ((chosen - ref[0::2]) - (rejected - ref[1::2]))
    losses = -(1 - LABEL_SMOOTHING) * torch.nn.functional.logsigmoid(z) \
        - LABEL_SMOOTHING * torch.nn.functional.logsigmoid(-z)
    return losses.mean()


def main():
    c = dict(BASE, **VARIANTS["gqa"])
    gen = torch.Generator().manual_seed(17)
    init = init_params(c, gen)
    ids = torch.randint(0, c["vocab_size"], (2 * PAIRS, SEQ), generator=gen)
    for s in range(PAIRS):  # both rows of a pair share the prompt
        ids[2 * s + 1, :PROMPT] = ids[2 * s, :PROMPT]
    targets = torch.cat([ids[:, 1:], torch.randint(0, c["vocab_size"], (2 * PAIRS, 1), generator=gen)], 1)
    targets[:, :PROMPT - 1] = -100
    targets[1, 6:] = -100  # a shorter rejected response, padded
    params = {k: v.double().clone().requires_grad_(True) for k, v in init.items()}
    logits = forward(c, params, ids)
    # Near the policy's log-probabilities (so z is moderate), exact in float32 (as the file stores them).
    ref = (row_logps(logits, targets).detach() + torch.randn(2 * PAIRS, generator=gen, dtype=torch.float64))
    ref = ref.float().double()
    loss = dpo_loss(row_logps(logits, targets), ref)
    loss.backward()
    tensors = {"input_ids": ids.int(), "targets": targets.int(), "ref_logps": ref, "loss": loss.detach().reshape(1)}
    tensors.update(init)
    tensors.update({"grad." + k: v.grad.detach() for k, v in params.items()})
    meta = {k: json.dumps(v) for k, v in c.items()}
    meta.update(pairs=json.dumps(PAIRS), seq_length=json.dumps(SEQ), beta=json.dumps(BETA),
                label_smoothing=json.dumps(LABEL_SMOOTHING))
    path = os.path.join(OUT, "golden-dpo.safetensors")
    write_safetensors(path, tensors, meta)
    check_round_trip(path, tensors)
    print(f"dpo: loss {loss.item():.6f}, logps {row_logps(logits, targets).tolist()}, ref {ref.tolist()}")


if __name__ == "__main__":
    main()

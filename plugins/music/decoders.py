"""Token-by-token decoders for the music model: ``prefill(tokens)`` then ``step(token)``, each
returning the next-token logits (1-D float tensor). torch is imported by the callers.

``HFDecoder`` works with any transformers causal LM (its KV cache). ``GPT2Decoder`` runs a
GPT-2 from the same weights with a preallocated KV cache and plain tensor ops: for a 5M-param
model the cost of a token is dominated by per-module Python overhead, and this loop makes a
token ~5× cheaper than transformers' forward (bench/music_speed.py; tests check both agree).
"""

from __future__ import annotations

import math


class HFDecoder:
    def __init__(self, model, device: str = "cpu") -> None:
        self.model, self.device, self.past = model, device, None

    def prefill(self, tokens: list[int]):
        import torch

        out = self.model(torch.tensor([tokens], device=self.device), use_cache=True)
        self.past = out.past_key_values
        return out.logits[0, -1].float().cpu()

    def step(self, token: int):
        import torch

        out = self.model(torch.tensor([[token]], device=self.device),
                         past_key_values=self.past, use_cache=True)
        self.past = out.past_key_values
        return out.logits[0, -1].float().cpu()


class GPT2Decoder:
    """GPT-2 inference (pre-LN blocks, tanh GELU, tied or untied head) with a static cache."""

    @staticmethod
    def supports(model) -> bool:
        config = model.config
        return (config.model_type == "gpt2" and config.activation_function == "gelu_new"
                and not config.scale_attn_by_inverse_layer_idx
                and not config.reorder_and_upcast_attn and config.scale_attn_weights)

    def __init__(self, model, context: int, device: str = "cpu") -> None:
        import torch

        config = model.config
        gpt = model.transformer
        self.heads = config.n_head
        self.width = config.n_embd
        self.head_dim = self.width // self.heads
        self.eps = config.layer_norm_epsilon
        self.context = min(context, config.n_positions)
        self.wte, self.wpe = gpt.wte.weight, gpt.wpe.weight
        self.head = model.lm_head.weight
        self.ln_f = (gpt.ln_f.weight, gpt.ln_f.bias)
        self.blocks = [(b.ln_1.weight, b.ln_1.bias, b.attn.c_attn.weight, b.attn.c_attn.bias,
                        b.attn.c_proj.weight, b.attn.c_proj.bias, b.ln_2.weight, b.ln_2.bias,
                        b.mlp.c_fc.weight, b.mlp.c_fc.bias, b.mlp.c_proj.weight,
                        b.mlp.c_proj.bias) for b in gpt.h]
        shape = (len(self.blocks), self.heads, self.context, self.head_dim)
        self.keys = torch.zeros(shape, dtype=self.wte.dtype, device=device)
        self.values = torch.zeros(shape, dtype=self.wte.dtype, device=device)
        self.length = 0
        self.device = device
        self.scale = 1.0 / math.sqrt(self.head_dim)

    def _forward(self, tokens: list[int]):
        import torch
        import torch.nn.functional as F

        count = len(tokens)
        start = self.length
        if start + count > self.context:
            raise ValueError("the music model's context is full")
        ids = torch.tensor(tokens, device=self.device)
        x = self.wte[ids] + self.wpe[start:start + count]
        end = start + count
        for index, (l1w, l1b, aw, ab, pw, pb, l2w, l2b, fw, fb, mw, mb) in \
                enumerate(self.blocks):
            h = F.layer_norm(x, (self.width,), l1w, l1b, self.eps)
            qkv = torch.addmm(ab, h, aw)  # GPT-2's Conv1D: weight is (in, out)
            q, k, v = qkv.view(count, 3, self.heads, self.head_dim).permute(1, 2, 0, 3)
            self.keys[index, :, start:end] = k
            self.values[index, :, start:end] = v
            attended = F.scaled_dot_product_attention(
                q, self.keys[index, :, :end], self.values[index, :, :end],
                is_causal=count > 1 and start == 0, scale=self.scale)
            if count > 1 and start > 0:
                raise ValueError("prefill only from an empty cache")
            x = x + torch.addmm(pb, attended.permute(1, 0, 2).reshape(count, self.width), pw)
            h = F.layer_norm(x, (self.width,), l2w, l2b, self.eps)
            x = x + torch.addmm(mb, F.gelu(torch.addmm(fb, h, fw), approximate="tanh"), mw)
        self.length = end
        last = F.layer_norm(x[-1], (self.width,), *self.ln_f, self.eps)
        return (self.head @ last).float().cpu()

    def prefill(self, tokens: list[int]):
        self.length = 0
        return self._forward(tokens)

    def step(self, token: int):
        return self._forward([token])


def decoder_for(model, context: int, device: str = "cpu"):
    return GPT2Decoder(model, context, device) if GPT2Decoder.supports(model) else \
        HFDecoder(model, device)

"""The embedded Image model as a diffusers pipeline: a pixel-space UNet2DConditionModel with
cross-attention on all-MiniLM-L6-v2 token states and classifier-free guidance. A UNet built with
``class_embed_type="projection"`` also gets the caption's pooled MiniLM sentence embedding
added to its timestep embedding, so every ResNet block — the 32×32 ones without
cross-attention too — knows what to draw.

Its folder is an ordinary diffusers pipeline folder (``model_index.json`` + ``unet/`` +
``scheduler/`` + ``text_encoder/`` + ``tokenizer/``), loaded with
``EmojiPipeline.from_pretrained``; its ``__call__`` takes the arguments of Stable Diffusion
pipelines (prompt, negative_prompt, num_inference_steps, guidance_scale, height, width,
generator, callback_on_step_end), so the studio drives both the same way.
"""

from __future__ import annotations

import inspect

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor

MAX_TOKENS = 16  # the captions' token length in training (tools/image/build_dataset.py)


def pooled_embedding(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MiniLM's sentence embedding of token states (their mean over the attention mask, at unit
    length, as sentence-transformers pools all-MiniLM-L6-v2), scaled by √dim to unit-variance
    entries: the UNet's ``class_labels`` when its class embedding is a projection."""
    weight = mask.to(torch.float32).unsqueeze(-1)
    mean = (states.float() * weight).sum(1) / weight.sum(1).clamp(min=1)
    return (torch.nn.functional.normalize(mean, dim=-1) * states.shape[-1] ** 0.5).to(states.dtype)


class EmojiPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->unet"
    _callback_tensor_inputs = ["latents"]

    def __init__(self, unet, scheduler, text_encoder, tokenizer) -> None:
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler, text_encoder=text_encoder,
                              tokenizer=tokenizer)

    def encode(self, texts: list[str]):
        batch = self.tokenizer(texts, padding="max_length", truncation=True,
                               max_length=MAX_TOKENS, return_tensors="pt").to(self.device)
        states = self.text_encoder(**batch).last_hidden_state
        return states.to(self.unet.dtype), batch["attention_mask"].bool()

    @torch.no_grad()
    def __call__(self, prompt: str | list[str] = "", negative_prompt: str | list[str] | None = None,
                 num_inference_steps: int = 25, guidance_scale: float = 3.0,
                 height: int | None = None, width: int | None = None,
                 num_images_per_prompt: int = 1,
                 generator: torch.Generator | list[torch.Generator] | None = None,
                 output_type: str = "pil", return_dict: bool = True,
                 callback_on_step_end=None,
                 callback_on_step_end_tensor_inputs: list[str] | None = None,
                 prompt_embeds: torch.Tensor | None = None,
                 prompt_attention_mask: torch.Tensor | None = None,
                 negative_prompt_embeds: torch.Tensor | None = None,
                 negative_prompt_attention_mask: torch.Tensor | None = None,
                 image: torch.Tensor | None = None, mask_image: torch.Tensor | None = None,
                 strength: float = 1.0):
        """Text-to-image; ``prompt_embeds``/``negative_prompt_embeds`` (MiniLM token states,
        with their attention masks) stand in for the prompts as in diffusers pipelines — the
        trainer samples its grids from precomputed states that way.

        Editing as diffusers' img2img and inpaint pipelines do it, in pixel space: ``image``
        (1×3×H×W in [-1, 1]) noised to the ``strength`` share of the schedule is where the
        sampling starts (strength 1: pure noise); with ``mask_image`` (1×1×H×W, 1 = repaint)
        the unmasked pixels are put back, noised to the level of each next step, after every
        step, so what is drawn fits what is kept."""
        if prompt_embeds is None:
            prompts = [prompt] if isinstance(prompt, str) else list(prompt)
            prompts = [p for p in prompts for _ in range(num_images_per_prompt)]
            cond, cond_mask = self.encode(prompts)
        else:
            cond = prompt_embeds.to(self.device, self.unet.dtype)
            cond_mask = (prompt_attention_mask if prompt_attention_mask is not None
                         else torch.ones(cond.shape[:2])).bool().to(self.device)
        count = len(cond)
        if negative_prompt_embeds is None:
            negatives = negative_prompt or ""
            negatives = [negatives] * count if isinstance(negatives, str) else list(negatives)
            uncond, uncond_mask = self.encode(negatives)
            # the unconditional branch was trained on the empty caption with a full mask
            if not any(negatives):
                uncond_mask = torch.ones_like(uncond_mask)
        else:
            uncond = negative_prompt_embeds.to(self.device, self.unet.dtype).expand_as(cond)
            uncond_mask = (negative_prompt_attention_mask
                           if negative_prompt_attention_mask is not None
                           else torch.ones(uncond.shape[:2])).bool().to(self.device)
        size = self.unet.config.sample_size
        height, width = height or size, width or size
        states = torch.cat([uncond, cond])
        masks = torch.cat([uncond_mask, cond_mask])
        shape = (count, self.unet.config.in_channels, height, width)
        # timesteps first: a sigma scheduler's init_noise_sigma is that of its first step
        # (before set_timesteps it is that of t=999, ~20,000 for the squared-cosine schedule)
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        timesteps = self.scheduler.timesteps
        # ancestral schedulers draw noise from the generator; UniPC, PNDM... take none
        extra = ({"generator": generator}
                 if "generator" in inspect.signature(self.scheduler.step).parameters else {})
        # one generator, or one per image as diffusers pipelines take them
        noise = randn_tensor(shape, generator=generator, dtype=torch.float32).to(self.device)
        latents = noise.to(self.unet.dtype) * self.scheduler.init_noise_sigma
        source = mask = None
        if image is not None:
            source = image.to(self.device, self.unet.dtype).expand(shape)
            mask = None if mask_image is None else \
                mask_image.to(self.device, self.unet.dtype).expand(count, 1, height, width)
            run = min(int(num_inference_steps * strength), num_inference_steps)
            order = getattr(self.scheduler, "order", 1)
            start = (num_inference_steps - run) * order
            timesteps = timesteps[start:]
            if hasattr(self.scheduler, "set_begin_index"):
                self.scheduler.set_begin_index(start)
            if strength < 1 and len(timesteps):
                latents = self.scheduler.add_noise(source, noise.to(source.dtype),
                                                   timesteps[:1])
            elif not len(timesteps):
                latents = source
        pooled = (pooled_embedding(states, masks)
                  if self.unet.config.class_embed_type == "projection" else None)
        for index, t in enumerate(timesteps):
            model_input = self.scheduler.scale_model_input(torch.cat([latents, latents]), t)
            prediction = self.unet(model_input, t, encoder_hidden_states=states,
                                   encoder_attention_mask=masks, class_labels=pooled).sample
            unconditional, conditional = prediction.chunk(2)
            prediction = unconditional + guidance_scale * (conditional - unconditional)
            latents = self.scheduler.step(prediction, t, latents, **extra).prev_sample
            if mask is not None:  # the kept pixels, at the next step's noise level
                known = source
                if index + 1 < len(timesteps):
                    known = self.scheduler.add_noise(source, noise.to(source.dtype),
                                                     timesteps[index + 1:index + 2])
                latents = mask * latents + (1 - mask) * known
            if callback_on_step_end is not None:
                out = callback_on_step_end(self, index, t, {"latents": latents}) or {}
                latents = out.get("latents", latents)
        images = ((latents.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
        if output_type == "pil":
            images = self.numpy_to_pil(images)
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)

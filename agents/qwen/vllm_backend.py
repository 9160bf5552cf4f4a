"""Speaker generation through vLLM's offline engine (``vllm.LLM``) for evaluation.

Requests are what vLLM's multimodal API takes: ``{"prompt": <chat-templated text with one
<|vision_start|><|image_pad|><|vision_end|> per image>, "multi_modal_data": {"image": [PIL images]}}``.
Images go through the same qwen-vl-utils resize as the transformers path, and the engine's
``mm_processor_kwargs`` carry the processor's min/max pixels, so both backends see the same image tokens.
vLLM is an optional extra (``pip install 'lewis-bench[vllm]'``); without it this module raises ImportError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.qwen.prompts import to_pil
from agents.qwen.vision import fit_image, pixel_budget

IMAGE_PLACEHOLDER = "<|image_pad|>"


def _vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ImportError("generation_backend='vllm' needs vLLM: pip install 'lewis-bench[vllm]' (a CUDA machine; "
                          "the version range TRL supports)") from exc
    return vllm


class VLLMGenerator:
    """Batched speaker generation on a vLLM engine; ``generate`` mirrors ``QwenVLAgent.generate``."""

    def __init__(self, model: str, processor: Any, max_new_tokens: int = 128, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, max_images_per_prompt: int = 8,
                 gpu_memory_utilization: float = 0.8, max_model_len: int | None = None, llm: Any = None) -> None:
        vllm = _vllm()
        self.processor = processor
        self.max_new_tokens, self.temperature, self.top_p, self.seed = int(max_new_tokens), float(temperature), \
            float(top_p), int(seed)
        lo, hi = pixel_budget(processor)
        self.engine_kwargs: dict[str, Any] = {
            "model": str(model), "seed": self.seed, "gpu_memory_utilization": float(gpu_memory_utilization),
            "limit_mm_per_prompt": {"image": int(max_images_per_prompt)},
            "mm_processor_kwargs": {k: v for k, v in (("min_pixels", lo), ("max_pixels", hi)) if v},
        }
        if max_model_len is not None:
            self.engine_kwargs["max_model_len"] = int(max_model_len)
        self.llm = llm if llm is not None else vllm.LLM(**self.engine_kwargs)

    def sampling_params(self) -> Any:
        """vLLM ``SamplingParams``: greedy at temperature 0, else temperature/top-p sampling."""
        vllm = _vllm()
        if self.temperature <= 0:
            return vllm.SamplingParams(temperature=0.0, max_tokens=self.max_new_tokens, seed=self.seed)
        return vllm.SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_new_tokens,
                                   seed=self.seed)

    def requests(self, messages_list: Sequence[list[dict[str, Any]]],
                 images_list: Sequence[list[Any]]) -> list[dict[str, Any]]:
        """One vLLM request per prompt; raises if a prompt's image placeholders and images disagree."""
        out = []
        for n, (msgs, ims) in enumerate(zip(messages_list, images_list, strict=True)):
            text = self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
            images = [fit_image(to_pil(im), self.processor) for im in ims]
            if text.count(IMAGE_PLACEHOLDER) != len(images):
                raise ValueError(f"prompt {n} has {text.count(IMAGE_PLACEHOLDER)} image placeholders but "
                                 f"{len(images)} images")
            req: dict[str, Any] = {"prompt": text}
            if images:
                req["multi_modal_data"] = {"image": images}
            out.append(req)
        return out

    def generate(self, messages_list: Sequence[list[dict[str, Any]]], images_list: Sequence[list[Any]]) -> list[str]:
        """Decoded completions, one per prompt, in order (vLLM batches and schedules them itself)."""
        if not messages_list:
            return []
        outputs = self.llm.generate(self.requests(messages_list, images_list), self.sampling_params(),
                                    use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outputs]

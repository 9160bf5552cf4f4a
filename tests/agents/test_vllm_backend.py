"""vLLM speaker backend: engine settings and request shapes, checked against a recording stand-in for vllm.

vLLM itself cannot be installed here (no CUDA) nor carried to the GPU machine (wheel too large), so these
tests pin what we send it: the engine kwargs, one request per prompt with as many images as placeholders,
images resized like the transformers path, and the sampling parameters.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest

pytest.importorskip("torch")


@dataclass
class FakeSamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    seed: int | None = None


class FakeLLM:
    instances: list = []

    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []
        FakeLLM.instances.append(self)

    def generate(self, requests, params, use_tqdm=True):
        self.calls.append((requests, params))
        out = types.SimpleNamespace
        return [out(outputs=[out(text=f" said {i} ")]) for i in range(len(requests))]


@pytest.fixture()
def fake_vllm(monkeypatch):
    mod = types.ModuleType("vllm")
    mod.LLM, mod.SamplingParams = FakeLLM, FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", mod)
    FakeLLM.instances.clear()
    return mod


def test_speaker_requests_through_vllm(fake_vllm, tiny_path, rng, images_of):
    from agents.qwen.agent import QwenVLAgent
    from agents.qwen.vision import pixel_budget

    agent = QwenVLAgent(model=tiny_path, dtype="float32", device="cpu", generation_backend="vllm", temperature=0.7,
                        top_p=0.9, max_new_tokens=12, vllm_kwargs={"gpu_memory_utilization": 0.5})
    agent.bind(type("E", (), {"role": "speaker", "action_mode": "text"})())
    assert agent.flags["generation_backend"] == "vllm"
    odd = rng.integers(0, 256, (61, 97, 3), dtype=np.uint8)  # off the 28-px grid: must be resized like HF
    obs = [{"image": odd, "instruction": "Describe it."},
           {"image": images_of(rng, 1)[0], "distractors": images_of(rng, 2)}]
    texts = agent.act_batch(obs)
    assert texts == ["said 0", "said 1"]
    (llm,) = FakeLLM.instances
    lo, hi = pixel_budget(agent.processor)
    assert llm.kwargs["model"] == str(tiny_path) and llm.kwargs["gpu_memory_utilization"] == 0.5
    assert llm.kwargs["mm_processor_kwargs"] == {"min_pixels": lo, "max_pixels": hi}
    (requests, params), = llm.calls
    assert [len(r["multi_modal_data"]["image"]) for r in requests] == [1, 3]
    for r in requests:
        assert r["prompt"].count("<|image_pad|>") == len(r["multi_modal_data"]["image"])
        assert r["prompt"].endswith("<|im_start|>assistant\n")
        for im in r["multi_modal_data"]["image"]:
            assert im.mode == "RGB" and im.size[0] % 28 == 0 and im.size[1] % 28 == 0
            assert lo <= im.size[0] * im.size[1] <= hi
    assert (params.temperature, params.top_p, params.max_tokens) == (0.7, 0.9, 12)


def test_greedy_params_and_clear_errors(fake_vllm, tiny_path, rng, images_of):
    from agents.qwen.agent import QwenVLAgent
    from agents.qwen.loading import load_processor
    from agents.qwen.vllm_backend import VLLMGenerator

    gen = VLLMGenerator(str(tiny_path), load_processor(tiny_path), max_new_tokens=5, temperature=0.0)
    assert gen.sampling_params().temperature == 0.0 and gen.sampling_params().max_tokens == 5
    msgs = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]]
    with pytest.raises(ValueError, match="1 image placeholders but 2 images"):
        gen.requests(msgs, [list(images_of(rng, 2))])
    with pytest.raises(ValueError, match="generation_backend"):
        QwenVLAgent(model=tiny_path, device="cpu", generation_backend="sglang")
    with pytest.raises(ValueError, match="merged"):
        QwenVLAgent(model=tiny_path, device="cpu", generation_backend="vllm", adapter="some/adapter")


def test_missing_vllm_is_a_clear_error(monkeypatch, tiny_path):
    from agents.qwen.loading import load_processor
    from agents.qwen.vllm_backend import VLLMGenerator

    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails as if not installed
    with pytest.raises(ImportError, match="lewis-bench\\[vllm\\]"):
        VLLMGenerator(str(tiny_path), load_processor(tiny_path))

"""LoRA adapters: a peft adapter saved next to the tiny model loads through ``adapter=`` and changes outputs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

import agents
from agents.qwen.loading import load_model


def test_lora_adapter_loads_and_matches_the_trained_adapter(tiny_path, tmp_path, rng, images_of):
    from peft import LoraConfig, get_peft_model

    base = load_model(tiny_path, dtype="float32", device="cpu")
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=r".*language_model.*\.(q_proj|v_proj)", lora_dropout=0.0)
    lora = get_peft_model(base, cfg)
    torch.manual_seed(0)
    with torch.no_grad():  # lora_B starts at zero (a no-op); make the adapter do something
        for n, p in lora.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    lora.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").exists()

    images = list(images_of(rng, 2))
    descs = ["a red mug", "a blue striped ball"]
    with_adapter = agents.make("qwen-vl", model=str(tiny_path), adapter=str(tmp_path / "adapter"), dtype="float32",
                               device="cpu")
    plain = agents.make("qwen-vl", model=str(tiny_path), dtype="float32", device="cpu")
    a = with_adapter.scorer.yes_probabilities(descs, images)
    b = plain.scorer.yes_probabilities(descs, images)
    assert np.abs(a - b).max() > 1e-4  # the adapter changes the listener
    lora.eval()
    from agents.qwen.scoring import YesNoScorer

    ref = YesNoScorer(lora, plain.processor, method="naive").yes_probabilities(descs, images)
    assert np.abs(a - ref).max() <= 1e-4  # merged adapter == the peft model it was saved from
    unmerged = load_model(tiny_path, adapter=tmp_path / "adapter", dtype="float32", device="cpu", merge_adapter=False)
    assert isinstance(unmerged, peft.PeftModel)
    c = YesNoScorer(unmerged, plain.processor, method="shared").yes_probabilities(descs, images)
    assert np.abs(c - ref).max() <= 1e-3  # shared-prefix scoring works through the peft wrapper too
    with pytest.raises(FileNotFoundError, match="adapter"):
        agents.make("qwen-vl", model=str(tiny_path), adapter=str(tmp_path / "missing"))

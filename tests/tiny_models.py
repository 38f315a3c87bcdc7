"""Tiny random transformers models built locally (no download): a Llama-style causal LM with a
chat template and a T5 seq2seq model, sharing a byte-level BPE tokenizer trained on given text.
They produce garbage, fast: enough to run every backend's real code path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def build_tiny_models(root: Path, texts: Sequence[str]) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        T5Config,
        T5ForConditionalGeneration,
    )

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(texts), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    # The turn's text starts after a newline (as in ChatML): a completion's first token never merges
    # with the template's, so prompt + completion tokenises as prompt, then completion (training).
    fast.chat_template = (
        "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>{% endfor %}"
        "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
    )
    torch.manual_seed(0)
    llama = LlamaConfig(  # head_dim 64: vLLM's CPU attention does not take smaller heads
        vocab_size=len(fast),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    LlamaForCausalLM(llama).save_pretrained(root / "causal")
    fast.save_pretrained(root / "causal")
    t5 = T5Config(
        vocab_size=len(fast),
        d_model=32,
        d_ff=64,
        d_kv=8,
        num_layers=2,
        num_heads=4,
        decoder_start_token_id=3,
        pad_token_id=3,
        eos_token_id=2,
    )
    T5ForConditionalGeneration(t5).save_pretrained(root / "seq2seq")
    fast.save_pretrained(root / "seq2seq")
    return root

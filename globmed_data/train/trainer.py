"""Fine-tuning with TRL's SFTTrainer on conversational prompt-completion rows (the loss covers the
completion only: prompt tokens carry label -100) and peft's LoRA, or a full fine-tune.

On a GPU: bf16; on the CPU: float32; gradient checkpointing on both (a recipe can turn it off).
The run is deterministic under the recipe's seed, and a checkpoint is saved every `save_steps`: a
killed run resumes from the last one when it is started again on the same folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from globmed_data.train.examples import Example
from globmed_data.train.recipe import Recipe


class TrainError(RuntimeError):
    """Training cannot start (a missing extra, a base model without a chat template, ...)."""


@dataclass
class TrainResult:
    adapter: Path  # the adapter (LoRA) or the whole model (full) folder
    merged: Path | None
    losses: list[dict[str, float]]  # {"step", "loss", "epoch"} per logged step
    steps: int
    train_tokens: int  # tokens the model was run on (prompt and completion, every epoch)
    seconds: float  # inside trainer.train()
    resumed_from: str | None
    device: str
    dtype: str
    dropped: int  # examples whose answer max_seq_length cut off entirely (TRL drops them)

    @property
    def tokens_per_second(self) -> float:
        return self.train_tokens / self.seconds if self.seconds else 0.0


def weights_folder(out: Path, recipe: Recipe) -> Path:
    """Where a run's trained weights go: the adapter (LoRA) or the whole model (full)."""
    return out / ("adapter" if recipe.method == "lora" else "model")


def pick_device(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(base: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    if not tokenizer.chat_template:
        raise TrainError(
            f"{base}: the tokenizer has no chat template; the benchmark's generative mode asks "
            "through the chat template, so training needs one (use an instruct/chat model)"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def sft_config(recipe: Recipe, checkpoints: Path, device: str) -> Any:
    from trl import SFTConfig

    gpu = device.startswith("cuda")
    return SFTConfig(
        output_dir=str(checkpoints),
        max_length=recipe.max_seq_length,
        completion_only_loss=True,
        learning_rate=recipe.learning_rate,
        num_train_epochs=recipe.epochs or 1.0,
        max_steps=recipe.max_steps or -1,
        per_device_train_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation,
        warmup_steps=recipe.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the steps
        lr_scheduler_type=recipe.lr_scheduler,
        weight_decay=recipe.weight_decay,
        seed=recipe.seed,
        data_seed=recipe.seed,
        logging_steps=recipe.logging_steps,
        logging_first_step=True,
        save_steps=recipe.save_steps,
        save_total_limit=2,
        report_to="none",
        disable_tqdm=True,
        use_cpu=not gpu,
        bf16=gpu,
        activation_checkpointing=recipe.gradient_checkpointing,  # transformers 5's name for it
        dataloader_num_workers=0,
    )


@dataclass
class Prepared:
    trainer: Any  # trl.SFTTrainer, its dataset tokenised and labelled
    tokenizer: Any
    device: str
    dtype: str


def prepare(
    examples: list[Example],
    base: Path,
    recipe: Recipe,
    out: Path,
    *,
    log: Callable[[str], None] = print,
    callbacks: Sequence[Any] = (),
) -> Prepared:
    """The SFTTrainer over `examples` for `base` (a local model folder), ready to train."""
    try:
        import torch
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, PrinterCallback, TrainerCallback, set_seed
        from trl import SFTTrainer
    except ImportError as exc:
        raise TrainError(f"training needs the train extra (torch, transformers, trl, peft): {exc}") from exc

    device = pick_device(recipe.device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    set_seed(recipe.seed)
    tokenizer = load_tokenizer(base)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype)

    class Progress(TrainerCallback):  # one line per logged step, through the caller's logger
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                log(f"step {state.global_step}/{state.max_steps}: loss {logs['loss']:.4f}")

    trainer = SFTTrainer(
        model=model,
        args=sft_config(recipe, out / "checkpoints", device),
        train_dataset=Dataset.from_list([e.as_chat() for e in examples]),
        processing_class=tokenizer,
        peft_config=lora_config(recipe) if recipe.method == "lora" else None,
        callbacks=[Progress(), *callbacks],
    )
    trainer.remove_callback(PrinterCallback)  # its raw dicts on stdout: Progress logs instead
    return Prepared(trainer, tokenizer, device, str(dtype).removeprefix("torch."))


def train(
    examples: list[Example],
    base: Path,
    recipe: Recipe,
    out: Path,
    *,
    log: Callable[[str], None] = print,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Fine-tune `base` on `examples`, resuming from the last checkpoint in out/checkpoints if a
    run was killed; the adapter (or model) goes to out/adapter (out/model for a full fine-tune)."""
    from transformers.trainer_utils import get_last_checkpoint

    prepared = prepare(examples, base, recipe, out, log=log, callbacks=callbacks)
    trainer, tokenizer = prepared.trainer, prepared.tokenizer
    checkpoints = out / "checkpoints"
    resume = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if resume:
        log(f"resuming from {resume}")
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    target = weights_folder(out, recipe)
    trainer.save_model(str(target))
    tokenizer.save_pretrained(str(target))
    merged = None
    if recipe.merge:
        merged = out / "merged"
        trainer.model.merge_and_unload().save_pretrained(str(merged))
        tokenizer.save_pretrained(str(merged))
    losses = [
        {"step": int(h["step"]), "loss": float(h["loss"]), "epoch": float(h.get("epoch", 0.0))}
        for h in trainer.state.log_history
        if "loss" in h
    ]
    (out / "losses.json").write_text(json.dumps(losses, indent=1) + "\n")
    return TrainResult(
        target,
        merged,
        losses,
        int(trainer.state.global_step),
        _tokens_seen(trainer, output),
        seconds,
        resume,
        prepared.device,
        prepared.dtype,
        len(examples) - len(trainer.train_dataset),
    )


def lora_config(recipe: Recipe) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        task_type="CAUSAL_LM",
        r=recipe.lora.r,
        lora_alpha=recipe.lora.alpha,
        lora_dropout=recipe.lora.dropout,
        target_modules=recipe.lora.target_modules,
    )


def _tokens_seen(trainer: Any, output: Any) -> int:
    """TRL counts the attention-masked tokens of every batch (`num_tokens`): those of this process
    (a resumed run counts what it ran itself)."""
    total = getattr(trainer, "_total_train_tokens", None)
    if total:
        return int(total)
    return int(output.metrics.get("num_tokens", 0))

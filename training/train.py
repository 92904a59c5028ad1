"""QLoRA fine-tuning of a chat model with a plain PyTorch loop.

Pasted verbatim into the Colab notebook, so it imports nothing from the rest of ``training`` and
keeps torch/transformers/peft imports inside functions. The same code runs on a free Colab T4
(4-bit NF4 base through bitsandbytes, fp16 autocast, gradient checkpointing) and on a CPU (fp32,
no quantisation), which is how the tests exercise it with a tiny model.

Why a hand-written loop rather than the HF Trainer: it is a few dozen lines, has no callbacks or
logging integrations to configure, behaves the same on CPU and GPU, and makes the two things that
matter here explicit: the loss covers assistant tokens only, and each optimiser step averages over
the tokens of all its micro-batches (not over micro-batches of different lengths).
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

IGNORE_INDEX = -100
ATTENTION_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP_MODULES = ["gate_proj", "up_proj", "down_proj"]


def lora_targets(include_mlp: bool = False) -> list[str]:
    """The projections LoRA adapts: attention always; the MLP too when asked (more capacity, about
    three times the adapter size and a slower step)."""
    return ATTENTION_MODULES + (MLP_MODULES if include_mlp else [])


@dataclass
class TrainConfig:
    """Everything that decides what is trained and how. ``None`` for ``load_in_4bit`` and
    ``gradient_checkpointing`` means "on when CUDA is available": both only pay off on a GPU, and
    bitsandbytes' 4-bit kernels need one."""

    base_model: str  # an HF repo id or a local folder
    gguf_file: str | None = None  # a GGUF inside base_model; transformers dequantises it
    revision: str = "main"
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(ATTENTION_MODULES))
    learning_rate: float = 2e-4
    max_steps: int = 200
    epochs: float | None = None  # when set, the step count comes from it and max_steps is ignored
    batch_size: int = 4
    grad_accum: int = 4
    max_length: int = 1024
    seed: int = 0
    load_in_4bit: bool | None = None
    use_rslora: bool = False
    gradient_checkpointing: bool | None = None
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def wants_4bit(cfg: TrainConfig) -> bool:
    """Whether the base model is loaded in 4-bit NF4 (auto: only with CUDA)."""
    return _cuda() if cfg.load_in_4bit is None else bool(cfg.load_in_4bit)


def wants_checkpointing(cfg: TrainConfig) -> bool:
    """Whether activations are recomputed in the backward pass (auto: only with CUDA, where
    memory is what limits the batch; on a CPU it would only cost time)."""
    return _cuda() if cfg.gradient_checkpointing is None else bool(cfg.gradient_checkpointing)


def _amp_dtype():
    """The autocast dtype on CUDA: bf16 where the GPU has it natively (Ampere on), else fp16 (T4)."""
    import torch

    return torch.bfloat16 if torch.cuda.get_device_capability()[0] >= 8 else torch.float16


def load_base(cfg: TrainConfig) -> tuple[Any, Any]:
    """The base model and its tokenizer, ready for :func:`add_lora`.

    On CUDA the frozen weights are 4-bit NF4 (double-quantised, computing in fp16/bf16) unless
    ``load_in_4bit`` is False, then plain fp16/bf16; on a CPU they are fp32, because CPU half
    precision is slow and bitsandbytes' 4-bit path is GPU-only."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source: dict[str, Any] = {"revision": cfg.revision}
    if cfg.gguf_file:
        source["gguf_file"] = cfg.gguf_file
    tokenizer = AutoTokenizer.from_pretrained(cfg.base_model, **source)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{cfg.base_model}: the tokenizer has no chat template; use an instruct/chat model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # only pads (masked out), so any token will do

    cuda = torch.cuda.is_available()
    if wants_4bit(cfg):
        if not cuda:
            raise ValueError("load_in_4bit needs a CUDA GPU (bitsandbytes); set load_in_4bit=False on a CPU")
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=_amp_dtype(),
        )
        model = AutoModelForCausalLM.from_pretrained(
            cfg.base_model, quantization_config=quant, dtype=_amp_dtype(), device_map={"": 0}, **source
        )
    elif cuda:
        model = AutoModelForCausalLM.from_pretrained(cfg.base_model, dtype=_amp_dtype(), device_map={"": 0}, **source)
    else:
        model = AutoModelForCausalLM.from_pretrained(cfg.base_model, dtype=torch.float32, **source)
    model.config.use_cache = False  # no generation here; the KV cache would only hold memory
    return model, tokenizer


def add_lora(model: Any, cfg: TrainConfig) -> Any:
    """Wrap the base model in a LoRA adapter (peft) and freeze everything else.

    peft's ``prepare_model_for_kbit_training`` is deliberately not used: it upcasts every
    non-quantised weight to fp32, which for Qwen's 152k-token embeddings and LM head costs GBs a
    T4 does not have. The adapter weights themselves are kept in fp32 by peft, and the forward pass
    runs under autocast, which is all mixed-precision training needs."""
    import torch
    from peft import LoraConfig, get_peft_model

    if wants_checkpointing(cfg):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lora = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=sorted(set(cfg.target_modules)),
        use_rslora=cfg.use_rslora,
        bias="none",
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(cfg.seed)  # LoRA's A matrices are initialised at random
    return get_peft_model(model, lora)


def _render(tokenizer: Any, messages: list[dict], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def encode(tokenizer: Any, messages: list[dict], max_length: int) -> dict | None:
    """Token ids and labels for one conversation, or None if nothing trainable survives truncation.

    The conversation is rendered once with the tokenizer's chat template and tokenised as a whole
    (exactly as at inference). Each assistant turn's character span is found by rendering the
    conversation up to that turn with and without it; tokens overlapping a span are labelled with
    themselves (including the end-of-turn token, so the model learns to stop), all others with -100.
    """
    full = _render(tokenizer, messages, False)
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start_text = _render(tokenizer, messages[:i], True) if i else ""
        end_text = _render(tokenizer, messages[: i + 1], False)
        if not (full.startswith(start_text) and full.startswith(end_text)):
            raise ValueError(
                "the chat template renders a conversation differently from its beginning, so assistant "
                "turns cannot be located; this model's template is not supported"
            )
        spans.append((len(start_text), len(end_text)))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True,
                    truncation=True, max_length=max_length)
    ids = list(enc["input_ids"])
    labels = [IGNORE_INDEX] * len(ids)
    for t, (s, e) in enumerate(enc["offset_mapping"]):
        if e > s and any(s < span_end and e > span_start for span_start, span_end in spans):
            labels[t] = ids[t]
    # The first position is never predicted (the model shifts labels left by one).
    if all(label == IGNORE_INDEX for label in labels[1:]):
        return None
    return {"input_ids": ids, "labels": labels}


def _encode_rows(tokenizer: Any, rows: list[dict], max_length: int) -> list[dict]:
    encoded = (encode(tokenizer, r["messages"], max_length) for r in rows)
    return [e for e in encoded if e is not None]


def _device(model: Any):
    return next(model.parameters()).device


def _collate(examples: list[dict], pad_id: int, device: Any) -> dict:
    """Right-padded tensors; padding is masked out of attention and of the loss."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        labels[row, :n] = torch.tensor(e["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def _autocast():
    import torch

    return torch.autocast("cuda", dtype=_amp_dtype()) if torch.cuda.is_available() else contextlib.nullcontext()


def _loss_sum(model: Any, batch: dict) -> tuple[Any, int]:
    """Summed cross-entropy over the labelled tokens of a batch, and how many there were.

    Only the labelled positions' logits are upcast to fp32, which keeps the memory for a 152k
    vocabulary in check."""
    import torch.nn.functional as F

    with _autocast():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    picked = logits[:, :-1][keep].float()
    return F.cross_entropy(picked, targets[keep], reduction="sum"), int(keep.sum())


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def evaluate(model: Any, tokenizer: Any, rows: list[dict], cfg: TrainConfig) -> float:
    """Mean cross-entropy per assistant token over ``rows`` (token-weighted, so long answers count
    for what they are), without dropout or gradients."""
    import torch

    examples = _encode_rows(tokenizer, rows, cfg.max_length)
    if not examples:
        raise ValueError("no evaluation example has assistant tokens within max_length")
    examples.sort(key=lambda e: len(e["input_ids"]))  # less padding; the order does not matter here
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for i in range(0, len(examples), cfg.batch_size):
                batch = _collate(examples[i: i + cfg.batch_size], _pad_id(tokenizer), _device(model))
                loss, n = _loss_sum(model, batch)
                total += loss.item()
                count += n
    finally:
        model.train(was_training)
    return total / count


@dataclass
class TrainResult:
    """What training did: eval loss before and after (None without eval rows), optimiser steps,
    seconds spent in the steps, and each step's training loss."""

    eval_loss_before: float | None
    eval_loss_after: float | None
    steps: int
    seconds: float
    train_losses: list[float]


def total_steps(n_examples: int, cfg: TrainConfig) -> int:
    """Optimiser steps to run: from ``epochs`` when set, else ``max_steps``."""
    if cfg.epochs is None:
        return cfg.max_steps
    per_epoch = math.ceil(n_examples / cfg.batch_size) / cfg.grad_accum
    return max(1, math.ceil(cfg.epochs * per_epoch))


def _stream(examples: list[dict], rng: random.Random) -> Iterator[dict]:
    """Examples forever, reshuffled each epoch."""
    order = list(range(len(examples)))
    while True:
        rng.shuffle(order)
        for i in order:
            yield examples[i]


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak rate."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def train(
    model: Any,
    tokenizer: Any,
    train_rows: list[dict],
    eval_rows: list[dict],
    cfg: TrainConfig,
    progress: Callable[[int, int, float], None] | None = None,
) -> TrainResult:
    """Train the adapter in ``model`` (from :func:`add_lora`) and measure the eval loss around it.

    One step takes ``batch_size * grad_accum`` examples; they are sorted by length before being cut
    into micro-batches (less padding, same gradient), and the loss is the mean over all their
    assistant tokens. Shuffling, dropout and LoRA initialisation follow ``cfg.seed``.
    ``progress(step, total, loss)`` is called after each step."""
    import torch

    examples = _encode_rows(tokenizer, train_rows, cfg.max_length)
    if not examples:
        raise ValueError("no training example has assistant tokens within max_length")
    steps = total_steps(len(examples), cfg)
    before = evaluate(model, tokenizer, eval_rows, cfg) if eval_rows else None

    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    stream = _stream(examples, rng)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters; call add_lora first")
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warmup = int(cfg.warmup_ratio * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, steps, warmup))
    use_scaler = torch.cuda.is_available() and _amp_dtype() == torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    device, pad_id = _device(model), _pad_id(tokenizer)

    model.train()
    losses: list[float] = []
    started = time.perf_counter()
    for step in range(steps):
        group = sorted((next(stream) for _ in range(cfg.batch_size * cfg.grad_accum)),
                       key=lambda e: len(e["input_ids"]))
        batches = [_collate(group[i: i + cfg.batch_size], pad_id, device)
                   for i in range(0, len(group), cfg.batch_size)]
        n_tokens = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in batches)
        step_loss = 0.0
        for batch in batches:
            loss_sum, _ = _loss_sum(model, batch)
            loss = loss_sum / n_tokens
            scaler.scale(loss).backward()
            step_loss += loss.detach().item()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        losses.append(step_loss)
        if progress is not None:
            progress(step + 1, steps, step_loss)
    seconds = time.perf_counter() - started

    after = evaluate(model, tokenizer, eval_rows, cfg) if eval_rows else None
    return TrainResult(eval_loss_before=before, eval_loss_after=after, steps=steps, seconds=seconds,
                       train_losses=losses)

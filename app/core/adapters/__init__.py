"""LoRA adapters: read the training notebook's zip safely, convert the PEFT adapter to a GGUF
adapter llama.cpp loads, probe it in a child process, and keep the imported ones.

No torch here: numpy, the ``gguf`` package and our own safetensors reader do the work.
"""

from app.core.adapters.errors import AdapterError

__all__ = ["AdapterError"]

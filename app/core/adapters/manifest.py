"""What an adapter zip says about itself, checked field by field.

``manifest.json`` is written by the training notebook (contract: training/README.md);
``adapter_config.json`` by PEFT. The two must agree. PEFT's ``base_model_name_or_path`` is
the training machine's path and is never used. ``ModelShape`` is the part of a model an
adapter depends on, read from the manifest or from a GGUF file, so that a mismatch is named
in words a user understands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from app.core.adapters.errors import AdapterError
from app.core.models.gguf_info import GGUFInfo

FORMAT = "offline-coder-lora"
FORMAT_VERSION = 1
# llama.cpp architectures whose tensor layout the converter knows (llama needs the rope
# row permutation on q/k; qwen2 none).
ARCHITECTURES = ("llama", "qwen2")
MAX_ALPHA = 1_000_000  # LoRA alphas are tens; float32 ends at 3.4e38
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelShape:
    architecture: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int = 0

    @property
    def key(self) -> str:
        """Adapters fit every model file with this key (any quantisation of the same base)."""
        return f"{self.architecture}-L{self.layers}-H{self.hidden}-A{self.heads}-KV{self.kv_heads}-F{self.ffn}"

    def describe(self) -> str:
        return f"{self.layers} layers and hidden size {self.hidden}"

    def differs(self, other: "ModelShape") -> bool:
        mine = (self.architecture, self.layers, self.hidden, self.heads, self.kv_heads)
        theirs = (other.architecture, other.layers, other.hidden, other.heads, other.kv_heads)
        ffn_clash = bool(self.ffn and other.ffn and self.ffn != other.ffn)
        return mine != theirs or ffn_clash

    @classmethod
    def from_gguf(cls, info: GGUFInfo) -> "ModelShape":
        def num(key: str) -> int:
            v = info.arch_value(key, 0)
            return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0
        heads = num("attention.head_count")
        return cls(info.architecture, num("block_count"), num("embedding_length"), heads,
                   num("attention.head_count_kv") or heads, num("feed_forward_length"))


@dataclass
class AdapterManifest:
    base_model: str
    base_revision: str
    shape: ModelShape
    vocab_size: int
    rank: int
    alpha: float
    use_rslora: bool
    target_modules: list[str]
    created: str
    notebook_version: str
    eval_loss_before: float | None = None
    eval_loss_after: float | None = None
    train_steps: int | None = None
    data: dict = field(default_factory=dict)

    @property
    def scale(self) -> float:
        """What llama.cpp multiplies B·A by at user scale 1 (PEFT's own scaling)."""
        return self.alpha / math.sqrt(self.rank) if self.use_rslora else self.alpha / self.rank

    def summary(self) -> str:
        loss = ""
        if self.eval_loss_before is not None and self.eval_loss_after is not None:
            loss = f" · eval loss {self.eval_loss_before:.3f} → {self.eval_loss_after:.3f}"
        return (f"{self.base_model} · rank {self.rank}, alpha {self.alpha:g} · "
                f"{', '.join(self.target_modules)} · trained {self.created[:10]}{loss}")


def _get(raw: dict, key: str, kind, where: str = "manifest.json"):
    if key not in raw:
        raise AdapterError(f"{where} lacks '{key}'. Export the adapter again with the current training notebook.")
    v = raw[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
        raise AdapterError(f"{where}: '{key}' has the wrong type ({type(v).__name__}).")
    return v


def _positive_int(raw: dict, key: str, where: str = "manifest.json") -> int:
    v = _get(raw, key, int, where)
    if v <= 0 or v > 1_000_000:
        raise AdapterError(f"{where}: '{key}' must be a positive number, not {v}.")
    return v


def _number(v) -> float | None:
    """``v`` as a finite float, or None (a bool, a string, NaN, infinity, or an integer too big
    for a float: ``math.isfinite(10**400)`` raises OverflowError rather than saying False)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _optional_float(raw: dict, key: str) -> float | None:
    v = raw.get(key)
    if v is None:
        return None
    f = _number(v)
    if f is None:
        raise AdapterError(f"manifest.json: '{key}' must be a number or null.")
    return f


def _targets(value, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise AdapterError(f"{where}: 'target_modules' must be a list of module names.")
    names = sorted({t.rsplit(".", 1)[-1] for t in value})
    unknown = [t for t in names if t not in PROJECTIONS]
    if unknown:
        raise AdapterError(f"{where}: the adapter targets {', '.join(unknown)}; only the attention and MLP "
                           f"projections ({', '.join(PROJECTIONS)}) can be applied by llama.cpp.")
    return names


def parse_manifest(raw: dict) -> AdapterManifest:
    if raw.get("format") != FORMAT:
        raise AdapterError("manifest.json is not from the Offline Coder training notebook "
                           f"(format {raw.get('format')!r}, expected {FORMAT!r}).")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise AdapterError(f"manifest.json has format version {version!r}; this app reads version {FORMAT_VERSION}. "
                           "Update the app or export with the matching notebook.")
    arch = _get(raw, "architecture", str)
    if arch not in ARCHITECTURES:
        raise AdapterError(f"The adapter is for a {arch!r} model; adapters for {', '.join(ARCHITECTURES)} models can be used.")
    shape = ModelShape(arch, _positive_int(raw, "num_layers"), _positive_int(raw, "hidden_size"),
                       _positive_int(raw, "num_heads"), _positive_int(raw, "num_kv_heads"),
                       _positive_int(raw, "intermediate_size") if "intermediate_size" in raw else 0)
    alpha = _number(_get(raw, "alpha", (int, float)))
    if alpha is None or not 0 < alpha <= MAX_ALPHA:  # the GGUF adapter stores it as a float32
        raise AdapterError(f"manifest.json: 'alpha' must be a positive number up to {MAX_ALPHA:,}.")
    steps = raw.get("train_steps")
    return AdapterManifest(
        base_model=_get(raw, "base_model", str), base_revision=str(raw.get("base_revision", "")),
        shape=shape, vocab_size=_positive_int(raw, "vocab_size"), rank=_positive_int(raw, "rank"),
        alpha=float(alpha), use_rslora=bool(raw.get("use_rslora", False)),
        target_modules=_targets(raw.get("target_modules"), "manifest.json"),
        created=_get(raw, "created", str), notebook_version=_get(raw, "notebook_version", str),
        eval_loss_before=_optional_float(raw, "eval_loss_before"),
        eval_loss_after=_optional_float(raw, "eval_loss_after"),
        train_steps=steps if isinstance(steps, int) and not isinstance(steps, bool) else None,
        data=raw.get("data") if isinstance(raw.get("data"), dict) else {})


def check_peft_config(config: dict, manifest: AdapterManifest) -> None:
    """PEFT's config must describe a plain LoRA that agrees with the manifest."""
    where = "adapter_config.json"
    peft_type = config.get("peft_type")
    if peft_type != "LORA":
        raise AdapterError(f"{where}: this is a {peft_type!r} adapter; only LoRA adapters can be used.")
    if config.get("use_dora"):
        raise AdapterError(f"{where}: DoRA adapters cannot be applied by llama.cpp; train with use_dora=False.")
    if config.get("modules_to_save"):
        raise AdapterError(f"{where}: the adapter carries full copies of {config['modules_to_save']}; "
                           "only LoRA matrices can be applied.")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise AdapterError(f"{where}: per-module ranks or alphas are not supported; train with one rank and alpha.")
    if config.get("fan_in_fan_out"):
        raise AdapterError(f"{where}: fan_in_fan_out adapters (GPT-2 style) are not supported.")
    r = _positive_int(config, "r", where)
    alpha = config.get("lora_alpha")
    targets = _targets(config.get("target_modules"), where)
    rslora = bool(config.get("use_rslora", False))
    clashes = []
    if r != manifest.rank:
        clashes.append(f"rank {manifest.rank} vs {r}")
    if _number(alpha) != manifest.alpha:
        clashes.append(f"alpha {manifest.alpha:g} vs {alpha}")
    if targets != manifest.target_modules:
        clashes.append(f"targets {manifest.target_modules} vs {targets}")
    if rslora != manifest.use_rslora:
        clashes.append(f"rsLoRA {manifest.use_rslora} vs {rslora}")
    if clashes:
        raise AdapterError("manifest.json and adapter_config.json disagree (" + "; ".join(clashes) +
                           "); the zip was altered after export.")

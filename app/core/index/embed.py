"""Text embedder for code search: all-MiniLM-L6-v2 run with onnxruntime + tokenizers.

No torch, no sentence-transformers, no Qt: the model ships as one ONNX graph in
``app/resources/embedder/model.onnx`` whose single output ``embedding`` already holds the
mean-pooled (over the attention mask), L2-normalised sentence vector, with ``tokenizer.json``
beside it. Both are produced by ``scripts/build_embedder.sh`` (see the README in that folder
for provenance and the measured agreement with sentence-transformers).

Truncation matches sentence-transformers for this model: at most ``MAX_TOKENS`` (256) tokens,
counting [CLS] and [SEP]. Texts are batched internally, sorted by length so that a batch pads
little, and returned in the caller's order.

Quantized (int8) models run one text per call: dynamic quantization picks each activation scale
from the whole batch, so inside a batch a text's vector would depend on its neighbours (cosine
0.994 to itself alone, measured); one at a time it depends on the text only, and on 2 cores it is
no slower (no padding). fp32 models run in batches of ``BATCH_SIZE``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from app.core.errors import UserError

DIM = 384
MAX_TOKENS = 256  # the model's window, counting [CLS] and [SEP]
BATCH_SIZE = 32  # fp32; a quantized model (model_id with "int8") runs one text at a time

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
_REINSTALL = "Reinstall Offline Coder (or rebuild it with scripts/build_embedder.sh)."


class EmbedderError(UserError):
    """A message a user can act on (a missing or corrupt model file names the path and says to
    reinstall)."""


def default_model_dir() -> Path:
    """The embedder shipped with the app: ``app/resources/embedder``."""
    return Path(__file__).resolve().parents[2] / "resources" / "embedder"


class Embedder:
    """Embeds texts into unit-length ``DIM``-dimensional float32 vectors.

    Files are checked at construction; the tokenizer and the onnxruntime session load on first
    use. Every failure to load is raised as :class:`EmbedderError`. Safe to share between threads.
    """

    def __init__(self, model_dir: Path | None = None, threads: int = 2):
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.threads = max(1, int(threads))
        self.model_path = self.model_dir / MODEL_FILE
        self.tokenizer_path = self.model_dir / TOKENIZER_FILE
        for p in (self.model_path, self.tokenizer_path):
            if not p.is_file():
                raise EmbedderError(f"The code-search model file is missing: {p}. {_REINSTALL}")
        self.calls = 0  # number of texts embedded so far
        self._lock = threading.Lock()
        self._counter = None  # tokenizer without truncation/padding, for count_tokens
        self._encoder = None  # tokenizer truncating to MAX_TOKENS, for embed
        self._session = None
        self._model_id: str | None = None
        self._input_names: tuple[str, ...] = ()
        self._batch_size = BATCH_SIZE

    # -- loading -----------------------------------------------------------------------------

    def _load_tokenizers(self) -> None:
        if self._encoder is not None:
            return
        with self._lock:
            if self._encoder is not None:
                return
            from tokenizers import Tokenizer

            try:
                counter = Tokenizer.from_file(str(self.tokenizer_path))
                encoder = Tokenizer.from_file(str(self.tokenizer_path))
            except Exception as e:  # tokenizers raises a plain Exception on bad JSON
                raise EmbedderError(
                    f"The code-search tokenizer file is unreadable or corrupt: {self.tokenizer_path} "
                    f"({e}). {_REINSTALL}"
                ) from e
            counter.no_truncation()
            counter.no_padding()
            encoder.enable_truncation(max_length=MAX_TOKENS)
            encoder.no_padding()  # padded per batch in embed()
            self._counter = counter
            self._encoder = encoder

    def _load_session(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.log_severity_level = 3
            try:
                session = ort.InferenceSession(
                    str(self.model_path), sess_options=opts, providers=["CPUExecutionProvider"]
                )
            except Exception as e:  # onnxruntime's own exception types (InvalidProtobuf, ...)
                raise EmbedderError(
                    f"The code-search model file is unreadable or corrupt: {self.model_path} "
                    f"({type(e).__name__}). {_REINSTALL}"
                ) from e
            inputs = tuple(i.name for i in session.get_inputs())
            outputs = [o.name for o in session.get_outputs()]
            if not {"input_ids", "attention_mask"} <= set(inputs) or "embedding" not in outputs:
                raise EmbedderError(
                    f"The code-search model file is not the expected embedder: {self.model_path} "
                    f"(inputs {list(inputs)}, outputs {outputs}). {_REINSTALL}"
                )
            meta = session.get_modelmeta().custom_metadata_map or {}
            model_id = meta.get("model_id")
            if not model_id:
                h = hashlib.sha256(self.model_path.read_bytes()).hexdigest()[:12]
                model_id = f"onnx-{h}"
            self._input_names = inputs
            self._model_id = model_id
            self._batch_size = 1 if "int8" in model_id else BATCH_SIZE
            self._session = session

    @property
    def model_id(self) -> str:
        """E.g. ``all-MiniLM-L6-v2-int8``; stored in the index so a model change forces
        re-embedding. Read from the ONNX file's metadata (loads the model)."""
        self._load_session()
        assert self._model_id is not None
        return self._model_id

    # -- API ---------------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Wordpiece tokens excluding [CLS]/[SEP], without truncation."""
        self._load_tokenizers()
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, DIM) float32, unit length; an empty list gives (0, DIM)."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not one string")
        texts = list(texts)
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        self._load_tokenizers()
        self._load_session()
        encs = self._encoder.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=len(encs))
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), DIM), dtype=np.float32)
        need_types = "token_type_ids" in self._input_names
        step = self._batch_size
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            width = int(lengths[idx].max())
            ids = np.zeros((len(idx), width), dtype=np.int64)  # [PAD] is id 0
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                e = encs[i].ids
                ids[row, : len(e)] = e
                mask[row, : len(e)] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if need_types:
                feed["token_type_ids"] = np.zeros_like(ids)
            try:
                (vec,) = self._session.run(["embedding"], feed)
            except Exception as e:
                raise EmbedderError(
                    f"The code-search model failed to run ({self.model_path}): {e}. {_REINSTALL}"
                ) from e
            out[idx] = vec
        self.calls += len(texts)
        return out

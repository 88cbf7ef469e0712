"""The ``llamacpp`` backend: llama-cpp-python in process, running a GGUF file directly.

llama.cpp is the fastest way to answer one conversation at a time on a CPU (it computes on the
quantized weights), which makes it the backend of ``cai2 chat``. It generates conversations one by
one; for many prompts the batched ``hf`` backend is faster (see bench/generation.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from cai2.config import StrictModel, validate_with_location
from cai2.errors import ConfigError, DataError, ModelError
from cai2.models._embedded import EMBEDDED_NAME, verified_gguf_path
from cai2.models._stopping import ProgressCallback, trim_at_stop
from cai2.models._types import Conversation, Generation, GenerationParams


class LlamaCppOptions(StrictModel):
    """Options of the ``llamacpp`` backend (``load_model("llamacpp:...", **options)``)."""

    n_ctx: int = Field(2048, ge=64, le=131072, description="Context window in tokens.")
    n_threads: int | None = Field(
        None, ge=1, description="CPU threads; defaults to the number of cores."
    )


def resolve_gguf_path(target: str) -> Path:
    """The GGUF file a ``llamacpp:`` target names: ``smollm2-135m`` or a path to a ``.gguf``."""
    if target == EMBEDDED_NAME:
        return verified_gguf_path()
    path = Path(target).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"`llamacpp:{target}`: no GGUF file at {path}; use `llamacpp:{EMBEDDED_NAME}` or the "
            f"path of a .gguf file"
        )
    return path


def load_llamacpp_model(
    target: str, *, progress: ProgressCallback | None = None, **options: Any
) -> LlamaCppChatModel:
    """Factory registered as the ``llamacpp`` backend."""
    settings = validate_with_location(LlamaCppOptions, options)
    return LlamaCppChatModel(
        resolve_gguf_path(target), spec=f"llamacpp:{target}", options=settings, progress=progress
    )


class LlamaCppChatModel:
    """A GGUF model run by llama.cpp behind the :class:`~cai2.models.ChatModel` protocol.

    Args:
        path: The GGUF file.
        spec: The spec string reported as :attr:`spec`.
        options: Backend options.
        progress: Called as ``progress(done, total)`` after each conversation.
    """

    def __init__(
        self,
        path: Path,
        *,
        spec: str | None = None,
        options: LlamaCppOptions | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        try:
            import llama_cpp
        except ModuleNotFoundError as exc:
            raise ModelError(
                "the llamacpp backend needs llama-cpp-python; install it with "
                "`pip install 'cai2[llamacpp]'`"
            ) from exc
        self._llama_cpp = llama_cpp
        self.options = options or LlamaCppOptions()
        self.spec = spec or f"llamacpp:{path}"
        self.path = path
        self.progress = progress
        self.llm = self._open(logits_all=False)
        self._scorer: Any = None
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"the GGUF {path} has no chat template (`tokenizer.chat_template`)")
        self._template = template

    def _open(self, *, logits_all: bool) -> Any:
        try:
            return self._llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=self.options.n_ctx,
                n_threads=self.options.n_threads or os.cpu_count() or 1,
                logits_all=logits_all,
                # The file's own template, as transformers uses it; llama.cpp would otherwise guess
                # a generic format from the template's look.
                chat_format="chat_template.default",
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"llama.cpp could not load {self.path}: {exc}") from exc

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams | None = None
    ) -> list[Generation]:
        """Generate one assistant reply per conversation, one conversation at a time."""
        params = params or GenerationParams()
        results = []
        for done, conversation in enumerate(conversations, start=1):
            results.append(self._generate_one(conversation, params))
            if self.progress is not None:
                self.progress(done, len(conversations))
        return results

    def _generate_one(self, conversation: Conversation, params: GenerationParams) -> Generation:
        messages: Any = list(conversation)
        try:
            response = self.llm.create_chat_completion(
                messages=messages,
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                # Only temperature and nucleus sampling, as in GenerationParams: no top-k, min-p or
                # repetition penalty.
                top_k=0,
                min_p=0.0,
                repeat_penalty=1.0,
                stop=list(params.stop) or None,
                seed=params.seed,
            )
        except ValueError as exc:  # llama.cpp reports an over-long prompt as ValueError
            raise ModelError(f"llama.cpp could not generate with {self.path}: {exc}") from exc
        choice = response["choices"][0]
        text, _ = trim_at_stop(choice["message"]["content"] or "", params.stop)
        reason: Literal["stop", "length"] = (
            "length" if choice.get("finish_reason") == "length" else "stop"
        )
        usage = response["usage"]
        return Generation(
            text=text,
            finish_reason=reason,
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage["completion_tokens"]),
        )

    def format_chat(self, conversation: Conversation) -> str:
        """The conversation rendered with the GGUF's chat template and a generation prompt."""
        formatter = self._llama_cpp.llama_chat_format.Jinja2ChatFormatter(
            template=self._template,
            eos_token=self.llm.detokenize([self.llm.token_eos()], special=True).decode(),
            bos_token=self.llm.detokenize([self.llm.token_bos()], special=True).decode(),
        )
        messages: Any = list(conversation)
        return str(formatter(messages=messages).prompt)

    def logprobs(
        self, conversations: Sequence[Conversation], continuations: Sequence[str]
    ) -> list[float]:
        """Sum of token log-probabilities of each continuation as the assistant's reply.

        Scoring needs the logits of every position, so the first call opens a second llama.cpp
        context with ``logits_all`` (about ``n_ctx × vocabulary`` floats of memory).
        """
        if len(conversations) != len(continuations):
            raise DataError(
                f"logprobs got {len(conversations)} conversations and {len(continuations)} "
                f"continuations; pass one continuation per conversation"
            )
        if self._scorer is None:
            self._scorer = self._open(logits_all=True)
        scorer = self._scorer
        scores = []
        for conversation, continuation in zip(conversations, continuations, strict=True):
            # The chat template writes its special tokens itself, so no extra BOS (as llama.cpp's
            # own chat handler does).
            prompt = scorer.tokenize(
                self.format_chat(conversation).encode(), add_bos=False, special=True
            )
            tokens = scorer.tokenize(continuation.encode(), add_bos=False, special=False)
            if not tokens:
                scores.append(0.0)
                continue
            if len(prompt) + len(tokens) > self.options.n_ctx:
                raise ModelError(
                    f"prompt and continuation take {len(prompt) + len(tokens)} tokens, more than "
                    f"`n_ctx` {self.options.n_ctx}; load the model with a larger `n_ctx`"
                )
            scorer.reset()
            scorer.eval(prompt + tokens)
            # Row j of the scores holds the logits that predict token j + 1.
            logits = np.asarray(scorer.scores[len(prompt) - 1 : len(prompt) + len(tokens) - 1])
            logprobs = self._llama_cpp.Llama.logits_to_logprobs(logits)
            scores.append(float(logprobs[np.arange(len(tokens)), tokens].sum()))
        return scores

    def __repr__(self) -> str:
        return f"LlamaCppChatModel({self.spec!r})"

"""One generation engine over the backbone contract: length-sorted batches, OOM back-off, per-sample errors.

``generate_all(adapter, requests, settings)`` answers every request through the adapter's batched
method (``generate`` for ShareGPT conversations, ``generate_from_text`` for rendered prompts):

* requests are sorted by length, longest first, so a batch pads little and an out-of-memory
  error shows up on the first batch; answers come back in the original order. The length is the
  adapter's ``prompt_length(prompt, images, image_root=...)`` when it has one (the encoded
  length, image tokens included, from the images' sizes) when the requests fill more than one
  batch, else a text proxy (``request_length``); one ``prompt_length`` of None sorts every
  request by the proxy (one scale);
* an out-of-memory error (``torch.cuda.OutOfMemoryError``, or a ``RuntimeError`` whose message
  says "out of memory") halves the batch size and retries the same batch, down to 1; the smaller
  size is kept for the batches after it. An OOM on a single request is raised;
* a ``ValueError`` for a batch (a sample that cannot be encoded: ``SampleTooLong``, ``BadSample``)
  retries that batch sample by sample; a failing sample's answer is None and
  ``on_error(index, exc)`` is called with its index in ``requests``.

Import-light: no torch here (torch is only looked up in ``sys.modules`` to recognise its OOM error
and empty the CUDA cache).
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Optional, Sequence

#: The adapter methods ``generate_all`` drives.
METHODS = ("generate", "generate_from_text")

Request = tuple[Any, Sequence[Any]]  # (conversation or rendered prompt, images)


class GenerationError(RuntimeError):
    """The adapter broke the contract (e.g. returned a different number of answers than prompts)."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an accelerator out-of-memory error."""
    torch = sys.modules.get("torch")
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None) if torch else None
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_cache() -> None:
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None) if torch else None
    try:
        if cuda is not None and cuda.is_available():
            cuda.empty_cache()
    except Exception:  # pragma: no cover - best effort only
        pass


def request_length(prompt: Any, images: Sequence[Any] = ()) -> tuple[int, int]:
    """The sort key of one request: (text length, number of images). A conversation's text length
    is the sum of its messages' content lengths (the chat template adds about the same to every
    conversation); a rendered prompt's is its length."""
    if isinstance(prompt, str):
        length = len(prompt)
    else:
        length = sum(len(str(m.get("content", ""))) if isinstance(m, dict) else len(str(m)) for m in prompt)
    return length, len(images or ())


def sort_keys(adapter: Any, requests: Sequence[Request], image_root: Any = None,
              exact: bool = True) -> list[tuple[int, int, int]]:
    """The sort key of each request: ``(encoded length, text length, images)`` where the adapter
    can tell the encoded length (``prompt_length``) and ``exact`` asks for it, else
    ``(0, text length, images)`` for all: a mix of the two scales would not sort."""
    proxies = [request_length(prompt, images) for prompt, images in requests]
    measure = getattr(adapter, "prompt_length", None) if exact else None
    if not callable(measure):
        return [(0, *proxy) for proxy in proxies]
    lengths = [measure(prompt, list(images or ()), image_root=image_root) for prompt, images in requests]
    if any(n is None for n in lengths):
        return [(0, *proxy) for proxy in proxies]
    return [(int(n), *proxy) for n, proxy in zip(lengths, proxies)]


def generate_all(adapter: Any, requests: Sequence[Request], settings: Any = None, *, batch_size: int = 16,
                 method: str = "generate", on_error: Optional[Callable[[int, Exception], None]] = None,
                 **method_kwargs: Any) -> list[Optional[str]]:
    """Answer every ``(conversation_or_prompt, images)`` request; one answer per request, in order.

    ``method``: the adapter's batched method, ``generate`` (conversations) or ``generate_from_text``
    (rendered prompts); ``method_kwargs`` go to it as they are (e.g. ``stop_tokens=[...]`` for
    ``generate_from_text``). ``batch_size`` is the largest batch; out-of-memory errors lower it.
    A request the adapter refuses with ``ValueError`` gets None and ``on_error(index, exc)``.
    Raises ``GenerationError`` when the adapter returns a different number of answers than prompts,
    and the OOM error when even a single request does not fit.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    call = getattr(adapter, method, None)
    if not callable(call):
        raise TypeError(f"{type(adapter).__name__} has no {method}()")
    requests = list(requests)
    answers: list[Optional[str]] = [None] * len(requests)
    # one batch: the order only matters if out-of-memory splits it, and the proxy is free
    keys = sort_keys(adapter, requests, method_kwargs.get("image_root"), exact=len(requests) > batch_size)
    order = sorted(range(len(requests)), key=keys.__getitem__, reverse=True)

    def run(indices: list[int]) -> list[str]:
        prompts = [requests[i][0] for i in indices]
        images = [list(requests[i][1] or ()) for i in indices]
        texts = call(prompts, images, settings, **method_kwargs)
        if len(texts) != len(indices):
            raise GenerationError(f"the backbone returned {len(texts)} answers for {len(indices)} prompts")
        return [str(t) for t in texts]

    size, start = batch_size, 0
    while start < len(order):
        batch = order[start:start + size]
        try:
            texts = run(batch)
        except ValueError as exc:
            if len(batch) == 1:
                _refused(batch[0], exc, on_error)
            else:
                for i in batch:  # find the sample(s) the adapter refuses; the others are answered
                    try:
                        answers[i] = run([i])[0]
                    except ValueError as one:
                        _refused(i, one, on_error)
            start += len(batch)
            continue
        except Exception as exc:
            if not is_out_of_memory(exc) or size == 1:
                raise
            size = max(1, min(size, len(batch)) // 2)
            _free_cache()
            continue
        for i, text in zip(batch, texts):
            answers[i] = text
        start += len(batch)
    return answers


def _refused(index: int, exc: Exception, on_error: Optional[Callable[[int, Exception], None]]) -> None:
    if on_error is not None:
        on_error(index, exc)

"""OpenAIAgent: any model behind an OpenAI-compatible chat-completions API, playing every lewis-bench role.

Prompts per role are the Qwen agents' own (``agents.qwen.prompts``), images go as base64 PNG data URLs.
Listener (score mode) and recognition read P(Yes) from the first answer token's ``top_logprobs``, VQA,
identification and the text-mode listener the option letters' probabilities, with the answer-token
spellings the in-process Qwen scorer folds together; a server that returns no logprobs is asked again
for a full answer, which is parsed (``lewis_env.parsing``). Which path scored is counted in
``flags["score_sources"]`` (``flags["score_source"]``: logprob, parsed or logprob+parsed), with the
model name the server reported (``model_reported``) and token ``usage``.

The key is read from an environment variable (``api_key_env``, default ``OPENAI_API_KEY``), never taken
as an argument, so it cannot reach the agent config, the results store, exports or logs. Retries on
429/5xx honour ``Retry-After`` (the official client's own retry loop, ``max_retries``); after them a
``APIAgentError`` names the server, the model and the cause.
"""

from __future__ import annotations

import base64
import io
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from agents.api.scores import first_token_logprobs, letter_probabilities, yes_probability
from agents.qwen.prompts import LETTERS, build_messages, listener_pair_messages, option_letters, to_pil
from agents.registry import ROLES
from agents.roles import RoleAgent
from lewis_env.parsing import parse_choice, parse_yes_no
from lewis_env.wire import is_loopback

LISTENER_MODES = ("score", "text")


class APIAgentError(RuntimeError):
    """The API server could not answer (unreachable, refused, or still failing after the retries)."""


@dataclass
class Answer:
    """One completion: its text, the first token's top logprobs (None if the server sent none)."""

    text: str
    top: dict[str, float] | None


def data_url(image: Any) -> str:
    """An image (array, PIL, ImageRef or path) as a lossless PNG data URL."""
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def to_openai_messages(messages: Sequence[Mapping[str, Any]], images: Sequence[Any]) -> list[dict[str, Any]]:
    """The Qwen prompt format (``{"type": "image"}`` placeholders + images in order) as OpenAI chat messages."""
    it = iter(images)
    out = []
    for m in messages:
        parts = []
        for c in m["content"]:
            if c.get("type") == "image":
                parts.append({"type": "image_url", "image_url": {"url": data_url(next(it))}})
            else:
                parts.append({"type": "text", "text": str(c["text"])})
        out.append({"role": m["role"], "content": parts})
    return out


def _is_local(base_url: str | None) -> bool:
    return is_loopback(urlparse(base_url or "").hostname or "")


class OpenAIAgent(RoleAgent):
    """A chat-completions model as an agent: one request per prompt, ``concurrency`` at a time."""

    name = "openai"
    roles = frozenset(ROLES)

    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 4, max_retries: int = 5, timeout: float = 120.0, max_tokens: int = 128,
                 temperature: float = 0.0, top_logprobs: int = 20, logprobs: bool = True,
                 listener_mode: str = "score", threshold: float = 0.5, system_prompt: str | None = None,
                 seed: int | None = None, api_key: None = None) -> None:
        super().__init__()
        if api_key is not None:
            raise ValueError("the openai agent takes no api_key (it would be stored with the results): put the "
                             "key in an environment variable and name it with agent.api_key_env "
                             "(default OPENAI_API_KEY)")
        if not model:
            raise ValueError("the openai agent needs model=NAME (e.g. agent.model=gpt-4o-mini)")
        if listener_mode not in LISTENER_MODES:
            raise ValueError(f"listener_mode must be one of {LISTENER_MODES}, got {listener_mode!r}")
        if concurrency < 1 or max_retries < 0 or timeout <= 0 or max_tokens < 1 or top_logprobs < 0:
            raise ValueError("need concurrency >= 1, max_retries >= 0, timeout > 0, max_tokens >= 1, "
                             f"top_logprobs >= 0; got {concurrency}, {max_retries}, {timeout}, {max_tokens}, "
                             f"{top_logprobs}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        try:
            import openai
        except ImportError as exc:
            raise ImportError("the openai agent needs the official client: pip install 'lewis-bench[openai]'") \
                from exc
        key = os.environ.get(api_key_env)
        if not key:
            if not _is_local(base_url):
                raise ValueError(f"no API key: set the environment variable {api_key_env} (or name another "
                                 "one with agent.api_key_env)")
            key = "none"  # a local server without a token (lewis-serve on 127.0.0.1, vllm serve) needs none
        self.model, self.base_url = str(model), base_url
        self.concurrency, self.max_retries, self.timeout = int(concurrency), int(max_retries), float(timeout)
        self.max_tokens, self.temperature, self.seed = int(max_tokens), float(temperature), seed
        self.top_logprobs, self.logprobs = int(top_logprobs), bool(logprobs)
        self.listener_mode, self.threshold, self.system_prompt = listener_mode, float(threshold), system_prompt
        self.client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=self.max_retries,
                                    timeout=self.timeout)
        self._server_logprobs: bool | None = None if self.logprobs else False
        self._lock = threading.Lock()
        self.flags = {**self.flags, "display_name": f"openai ({self.model})", "score_source": None,
                      "score_sources": {"logprob": 0, "parsed": 0}, "model_reported": None,
                      "usage": {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    def __repr__(self) -> str:  # never the key
        return f"OpenAIAgent(model={self.model!r}, base_url={self.base_url!r})"

    # -- requests -----------------------------------------------------------------------------
    def _record(self, response: Any, source: str | None) -> None:
        with self._lock:
            f = self.flags
            u = getattr(response, "usage", None)
            f["usage"]["requests"] += 1
            for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
                f["usage"][k] += int(getattr(u, k, 0) or 0)
            reported = getattr(response, "model", None)
            if reported:
                seen = set(filter(None, str(f["model_reported"] or "").split(", ")))
                f["model_reported"] = ", ".join(sorted(seen | {str(reported)}))
            if source is not None:
                f["score_sources"][source] += 1
                f["score_source"] = "+".join(k for k, n in f["score_sources"].items() if n)

    def _create(self, messages: list[dict[str, Any]], max_tokens: int, logprobs: bool) -> Any:
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                      "temperature": self.temperature}
        if self.seed is not None:
            kwargs["seed"] = self.seed
        if logprobs:
            kwargs.update(logprobs=True, top_logprobs=self.top_logprobs)
        where = f"{self.base_url or 'the OpenAI API'} (model {self.model!r})"
        try:
            return self.client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            retried = "" if exc.status_code < 500 and exc.status_code != 429 else \
                f" after {self.max_retries} retries"
            raise APIAgentError(f"{where} answered HTTP {exc.status_code}{retried}: {exc.message}") from None
        except openai.APIConnectionError as exc:
            raise APIAgentError(f"{where} could not be reached after {self.max_retries} retries: "
                                f"{type(exc).__name__}: {exc}") from None

    def ask(self, messages: Sequence[Mapping[str, Any]], images: Sequence[Any], scored: bool) -> Answer:
        """One prompt. ``scored``: a one-token answer with logprobs when the server gives them, else a parsed
        full answer (the server's support is learnt from its first reply)."""
        msgs = to_openai_messages(messages, images)
        if scored and self._server_logprobs is not False:
            resp = self._create(msgs, 1, True)
            top = first_token_logprobs(resp.choices[0])
            if top is not None:
                self._server_logprobs = True
                self._record(resp, "logprob")
                return Answer(str(resp.choices[0].message.content or ""), top)
            self._server_logprobs = False
            self._record(resp, None)
        resp = self._create(msgs, self.max_tokens, False)
        self._record(resp, "parsed" if scored else None)
        return Answer(str(resp.choices[0].message.content or "").strip(), None)

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

    # -- roles --------------------------------------------------------------------------------
    def _build(self, o: Mapping[str, Any], info: Any) -> tuple[list, list]:
        return build_messages(self.role, o, object_name=self._object_name(info), system=self.system_prompt)

    def _act_speaker(self, obs: Sequence[Mapping[str, Any]], infs: Sequence[Any]) -> list[Any]:
        if self.action_mode == "index":
            raise ValueError("the openai agent speaks text; make the speaker env with action_mode='text'")
        return self._map(lambda oi: self.ask(*self._build(*oi), scored=False).text, list(zip(obs, infs)))

    def _unparsed(self) -> None:
        with self._lock:
            self.flags["parse_failures"] = self.flags.get("parse_failures", 0) + 1

    def _yes(self, answer: Answer) -> float:
        """P(Yes) from logprobs, else 1/0 from the parsed answer (0.5, counted, when it says neither)."""
        if answer.top is not None:
            p = yes_probability(answer.top)
            if p is not None:
                return p
        yes, _ = parse_yes_no(answer.text)
        if yes is None:
            self._unparsed()
        return 0.5 if yes is None else float(yes)

    def pair_yes_probabilities(self, description: str, candidates: Sequence[Any], object_name: str) -> list[float]:
        """P(Yes) of "does the description match the image?" for each candidate (the Qwen pair prompt)."""
        msgs = listener_pair_messages(str(description).strip(), object_name=object_name)
        return self._map(lambda im: self._yes(self.ask(msgs, [im], scored=True)), list(candidates))

    def _act_listener(self, obs: Sequence[Mapping[str, Any]], infs: Sequence[Any]) -> list[Any]:
        if self.listener_mode == "score":
            out = []
            for o, i in zip(obs, infs):
                scores = self.pair_yes_probabilities(str(o["description"]), list(np.asarray(o["candidates"])),
                                                     self._object_name(i))
                out.append(self._answer(int(np.argmax(scores)), LETTERS))
            return out
        return self._act_letters(obs, infs, lambda o: LETTERS[:len(o["candidates"])])

    def yes_probability(self, obs: Sequence[Mapping[str, Any]], infs: Sequence[Any]) -> np.ndarray:
        """P(Yes) of the recognition question for each observation."""
        return np.asarray(self._map(lambda oi: self._yes(self.ask(*self._build(*oi), scored=True)),
                                    list(zip(obs, infs))), dtype=np.float64)

    def _act_recognition(self, obs: Sequence[Mapping[str, Any]], infs: Sequence[Any]) -> list[Any]:
        def one(oi: tuple[Mapping[str, Any], Any]) -> Any:
            answer = self.ask(*self._build(*oi), scored=True)
            if answer.top is None and self.action_mode == "text":
                return answer.text  # the env parses it (and records a parse error) like any text answer
            x = self._yes(answer)
            return int(x >= self.threshold) if self.action_mode == "index" else ("yes" if x >= self.threshold else "no")

        return self._map(one, list(zip(obs, infs)))

    def _letter_index(self, answer: Answer, letters: Sequence[str]) -> int | None:
        if answer.top is not None:
            probs = letter_probabilities(answer.top, letters)
            if probs is not None:
                return int(np.argmax(probs))
        return parse_choice(answer.text, len(letters))[0]

    def _act_letters(self, obs: Sequence[Mapping[str, Any]], infs: Sequence[Any],
                     letters_of: Callable[[Mapping[str, Any]], Sequence[str]]) -> list[Any]:
        def one(oi: tuple[Mapping[str, Any], Any]) -> Any:
            letters = list(letters_of(oi[0]))
            answer = self.ask(*self._build(*oi), scored=True)
            if answer.top is None and self.action_mode == "text":
                return answer.text  # the env parses it (and records a parse error) like any text answer
            idx = self._letter_index(answer, letters)
            if idx is None:  # index mode and nothing parseable: the first option, counted in parse_failures
                self._unparsed()
                idx = 0
            return self._answer(idx, letters)

        return self._map(one, list(zip(obs, infs)))

    def _options(self, key: str) -> Callable[[Mapping[str, Any]], Sequence[str]]:
        def letters(o: Mapping[str, Any]) -> Sequence[str]:
            found = option_letters(o[key])
            if not found:
                raise ValueError(f"{self.role} observation {key!r} has no lettered lines ('A. ...'): {o[key]!r:.80}")
            return found
        return letters

    def _act_vqa(self, obs: Sequence[Mapping[str, Any]], infs: Sequence[Any]) -> list[Any]:
        return self._act_letters(obs, infs, self._options("options"))

    def _act_identification(self, obs: Sequence[Mapping[str, Any]], infs: Sequence[Any]) -> list[Any]:
        return self._act_letters(obs, infs, self._options("database"))

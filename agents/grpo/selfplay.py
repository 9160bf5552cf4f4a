"""Speaker-listener self-play: both Qwen-VL agents trained with GRPO in alternating phases.

- speaker phase: the speaker's descriptions are rewarded by the CURRENT listener model (a live listener
  inside the speaker env), optionally mixed with a frozen reference listener (``reference_weight``);
- listener phase: the listener learns, in the pair format (``agents.grpo.pairs``), from the CURRENT speaker's
  greedy descriptions of the same episodes;
- after every phase: held-out pair accuracy (speaker -> listener), cross-play of the speaker with a frozen
  listener (``crossplay_listener``, rule by default) and the listener on template descriptions, so a user sees
  whether the pair invents a private code or stays grounded in language;
- a pair checkpoint per phase (both models, state, then the completeness marker last): ``auto`` resumes the
  pair from the latest complete one. With ``shared_model`` one set of weights plays both roles.

The optimizer state restarts with each phase (a phase is a fresh GRPOTrainer over the same weights).
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.grpo import config as C
from agents.grpo import pairs as P
from agents.grpo.adapter import (
    BatchScorer,
    env_reward_spec,
    episode_prompt,
    make_reward_funcs,
    resolve_reward_terms,
    rows_to_dataset,
    split_episodes,
)
from agents.grpo.callbacks import RolloutLogger, SelectBestCallback
from agents.grpo.evaluate import greedy_completions
from agents.grpo.resume import (
    IncompleteCheckpointWarning,
    is_complete,
    mark_complete,
    write_json_atomic,
)
from agents.grpo.runner import RunResult, load_policy
from agents.grpo.served_listener import ServedListener, publish_phase, publish_start
from agents.grpo.warmstart import warm_start

PAIR_CKPT = "pair-checkpoint-{:03d}"
METRICS_FILE = "metrics.json"
CURVE_FILE = "reward_curve.png"
#: Speaker-env kwargs that do not apply to the listener env built from the same episodes.
_SPEAKER_ONLY = ("listener", "listener_kwargs", "reward_preset", "reward_weights", "extra_rewards",
                 "speaker_sees_distractors", "instruction")


class ModelListener:
    """The ``Listener`` protocol over an in-memory Qwen-VL model: argmax P(yes) per candidate (pair format)."""

    name = "selfplay-model"

    def __init__(self, model: Any, processor: Any, image_size: int, batch_size: int = 16) -> None:
        self.model, self.processor, self.image_size, self.batch_size = model, processor, image_size, batch_size

    def choose(self, description: str, candidates: Sequence[Any]) -> tuple[int, list[float]]:
        """Pick one candidate; scores are P(yes)."""
        return self.choose_batch([description], [candidates])[0]

    def choose_batch(self, descriptions: Sequence[str], candidates: Sequence[Sequence[Any]]) -> list:
        """One (choice, P(yes) per candidate) per description, with the shared-prefix scorer."""
        import torch

        from agents.qwen.prompts import to_pil
        from agents.qwen.scoring import YesNoScorer

        cache: dict[str, Any] = {}
        lists = [[cache.setdefault(c.path, to_pil(c.load(self.image_size))) for c in cands] for cands in candidates]
        names = [str(getattr(cands[0], "attributes", {}).get("category") or "object") for cands in candidates]
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                scores = YesNoScorer(self.model, self.processor, batch_size=self.batch_size).score_candidates(
                    [str(d) for d in descriptions], lists, names)
        finally:
            self.model.train(was)
        return [(int(np.argmax(s)), [float(x) for x in s]) for s in scores]


def _gym_make(env_id: str, kwargs: dict[str, Any]) -> Any:
    import gymnasium as gym

    import lewis_env  # noqa: F401

    kwargs = dict(kwargs)
    if isinstance(kwargs.get("dataset"), dict) and isinstance(kwargs["dataset"].get("vary"), list):
        kwargs["dataset"] = {**kwargs["dataset"], "vary": tuple(kwargs["dataset"]["vary"])}
    return gym.make(env_id, **kwargs)


def _latest_pair_checkpoint(out: Path) -> Path | None:
    for ckpt in sorted(out.glob("pair-checkpoint-*"), reverse=True):
        if is_complete(ckpt):
            return ckpt
        warnings.warn(f"pair checkpoint {ckpt} is incomplete (its save was interrupted); removing it and "
                      f"resuming from an earlier one", IncompleteCheckpointWarning, stacklevel=2)
        shutil.rmtree(ckpt, ignore_errors=True)
    return None


def plot_phases(metrics: dict[str, Any], path: Path) -> Path | None:
    """Per-phase held-out accuracy of the pair, cross-play and the listener on templates, plus mean rewards."""
    phases = metrics.get("phases") or []
    if not phases:
        return None
    from lewis_env.figures import pyplot, save_figure

    fig, (ax, bx) = pyplot().subplots(1, 2, figsize=(11, 4))
    xs = [-1] + [p["phase"] for p in phases]
    before = metrics.get("before", {})
    for key, label in (("pair_accuracy", "pair (speaker -> listener)"),
                       ("crossplay_accuracy", f"speaker x {metrics.get('crossplay_listener')} listener"),
                       ("listener_template_accuracy", "listener on template descriptions")):
        ax.plot(xs, [before.get(key, np.nan)] + [p[key] for p in phases], marker="o", label=label)
    if metrics.get("chance"):
        ax.axhline(metrics["chance"], color="grey", linestyle=":", label="chance")
    ax.set_xlabel("phase (-1 = before)")
    ax.set_ylabel("held-out accuracy")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for role, colour in (("speaker", "tab:blue"), ("listener", "tab:orange")):
        pts = [(p["phase"], p["mean_reward"]) for p in phases if p["role"] == role]
        if pts:
            bx.plot(*zip(*pts), marker="s", color=colour, label=f"{role} phase mean reward")
    bx.set_xlabel("phase")
    bx.set_ylabel("mean training reward")
    bx.legend(fontsize=8)
    bx.grid(alpha=0.3)
    fig.suptitle(path.parent.name, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


class SelfPlay:
    """State of one self-play run: envs, the two models, held-out ids, metrics."""

    def __init__(self, cfg: Any) -> None:
        self.cfg, self.train, self.sp = cfg, cfg.train, cfg.train.selfplay
        self.out = C.output_dir(self.train)
        skw = C.to_container(self.train.env.kwargs)
        self.image_size = int(skw.get("image_size", 224))
        self.listener_kwargs = {k: v for k, v in skw.items() if k not in _SPEAKER_ONLY}
        self.listener_id = str(self.sp.listener_env.id or "lewis_env/LewisListener-v0")
        self.listener_kwargs.update(C.to_container(self.sp.listener_env.kwargs))
        self.speaker_kwargs = {k: v for k, v in skw.items() if k not in ("listener", "listener_kwargs")}

    # -- models ----------------------------------------------------------------------------------
    def load(self, ckpt: Path | None) -> None:
        """Speaker and listener models: from a pair checkpoint, else ``train.model`` / ``listener_model``."""
        import copy

        train = self.train
        if ckpt is not None:
            self.s_model, self.s_proc = self._from_dir(ckpt / "speaker")
            if self.sp.shared_model:
                self.l_model, self.l_proc = self.s_model, self.s_proc
            else:
                self.l_model, self.l_proc = self._from_dir(ckpt / "listener")
            return
        self.s_model, self.s_proc = load_policy(train)
        if self.sp.shared_model:
            self.l_model, self.l_proc = self.s_model, self.s_proc
        else:
            lt = copy.deepcopy(train)
            if self.sp.listener_model:
                lt.model = str(self.sp.listener_model)
            self.l_model, self.l_proc = load_policy(lt)

    def _from_dir(self, path: Path) -> tuple[Any, Any]:
        if (path / "adapter_config.json").is_file():
            from peft import PeftModel

            base, proc = load_policy(self.train)
            return PeftModel.from_pretrained(base, str(path), is_trainable=True), proc
        import copy

        t = copy.deepcopy(self.train)
        t.model = str(path)
        t.use_peft = False
        return load_policy(t)

    def save_models(self, dest: Path) -> None:
        """``dest/speaker`` and ``dest/listener`` (adapters under LoRA; the listener shares with shared_model)."""
        self.s_model.save_pretrained(str(dest / "speaker"))
        self.s_proc.save_pretrained(str(dest / "speaker"))
        if not self.sp.shared_model:
            self.l_model.save_pretrained(str(dest / "listener"))
            self.l_proc.save_pretrained(str(dest / "listener"))

    # -- envs ------------------------------------------------------------------------------------
    def build_envs(self) -> None:
        """Speaker env with the live listener, the frozen reference/cross-play envs and the listener env."""
        # the live listener scores at the size it trains at (the listener env's), not the speaker's
        size = int(self.listener_kwargs.get("image_size", self.image_size))
        live = ModelListener(self.l_model, self.l_proc, size, int(self.train.eval_batch_size))
        self.live = live
        self.served = ServedListener.from_config(self.sp)  # listener_service.url: the speaker is scored over HTTP
        scorer = live if self.served is None else self.served.client
        self.s_env = _gym_make(str(self.train.env.id), {**self.speaker_kwargs, "listener": scorer})
        self.ref_env = None
        if self.sp.reference_listener and float(self.sp.reference_weight) > 0:
            self.ref_env = _gym_make(str(self.train.env.id), {**self.speaker_kwargs,
                                                              "listener": str(self.sp.reference_listener)})
        self.x_env = _gym_make(str(self.train.env.id), {**self.speaker_kwargs,
                                                        "listener": str(self.sp.crossplay_listener)})
        self.l_env = _gym_make(self.listener_id, self.listener_kwargs)
        if self.l_env.unwrapped.num_episodes != self.s_env.unwrapped.num_episodes:
            raise C.ConfigError("train.selfplay.listener_env must have the speaker env's episodes (same dataset, "
                                "split, k, seed)")
        n = self.s_env.unwrapped.num_episodes
        self.train_ids, held = split_episodes(n, float(self.train.holdout_frac), int(self.train.seed))
        self.heldout = held[: int(self.train.eval_max_episodes)]
        # listener_select_every: validation episodes split off the training ones; the listener never trains on them
        n_val = int(self.sp.listener_val_episodes) if int(self.sp.listener_select_every) > 0 else 0
        if n_val >= len(self.train_ids):
            raise C.ConfigError(f"train.selfplay.listener_val_episodes={n_val} leaves no training episode "
                                f"({len(self.train_ids)} in all)")
        cut = len(self.train_ids) - n_val
        self.listener_ids, self.val_ids = list(self.train_ids[:cut]), list(self.train_ids[cut:])
        opts = C.to_container(self.train.prompt_opts)
        self.s_rows = {i: episode_prompt(self.s_env, i, opts) for i in [*self.train_ids, *self.heldout]}

    # -- the speaker's words ---------------------------------------------------------------------
    def describe(self, ids: Sequence[int]) -> dict[int, str]:
        """The current speaker's greedy description (the part a listener reads) of each episode."""
        from lewis_env.parsing import extract_description

        texts = greedy_completions(self.s_model, self.s_proc, [self.s_rows[i] for i in ids],
                                   int(self.train.max_completion_length), int(self.train.eval_batch_size))
        return {int(i): extract_description(t) for i, t in zip(ids, texts)}

    def pair_accuracy(self, model: Any, ids: Sequence[int], descs: dict[int, str]) -> float:
        """K-way accuracy of argmax P(yes) of ``model`` reading ``descs`` on episodes ``ids`` (the env judges)."""
        from lewis_env.parsing import LETTERS

        choices = P.pair_choices(model, self.l_proc, self.l_env, ids, [descs[i] for i in ids],
                                 int(self.train.eval_batch_size))
        _r, infos = self.l_env.unwrapped.score_batch(ids, [LETTERS[c] for c, _ in choices])
        return float(np.mean([bool(i.get("correct")) for i in infos]))

    def evaluate(self) -> dict[str, Any]:
        """Held-out pair accuracy, speaker cross-play with the frozen listener, listener on templates."""
        ids = self.heldout
        descs = self.describe(ids)
        pair = self.pair_accuracy(self.l_model, ids, descs)
        _r, xinfos = self.x_env.unwrapped.score_batch(ids, [descs[i] for i in ids])
        cross = float(np.mean([bool(i.get("correct")) for i in xinfos]))
        tmpl = P.pair_heldout_accuracy(self.l_model, self.l_proc, self.l_env, ids, int(self.train.eval_batch_size))
        return {"pair_accuracy": pair, "crossplay_accuracy": cross, "listener_template_accuracy": tmpl["accuracy"],
                "num_episodes": len(ids), "examples": [{"episode_id": i, "description": descs[i]} for i in ids[:6]]}

    # -- phases ----------------------------------------------------------------------------------
    def _trainer(self, role: str, model: Any, proc: Any, rows: list[dict[str, Any]], reward_funcs: list,
                 weights: list[float], phase: int, logger: RolloutLogger) -> Any:
        from transformers import ProgressCallback
        from trl import GRPOTrainer

        from agents.grpo.callbacks import RewardProgressCallback

        sp = self.sp
        over: dict[str, Any] = {"max_steps": int(sp.speaker_steps if role == "speaker" else sp.listener_steps),
                                "save_strategy": "no", "report_to": []}
        if role == "listener":
            over["max_completion_length"] = 1  # yes / no
            if sp.listener_learning_rate:
                over["learning_rate"] = float(sp.listener_learning_rate)
            if sp.listener_num_generations:
                over["num_generations"] = int(sp.listener_num_generations)
        args = C.build_grpo_config(self.train, self.out / "phases" / f"{phase:03d}-{role}", reward_weights=weights,
                                   **over)
        from peft import PeftModel

        peft = C.lora_config(self.train) if not isinstance(model, PeftModel) else None
        trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args, train_dataset=rows_to_dataset(rows),
                              processing_class=proc, peft_config=peft, callbacks=[logger])
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(RewardProgressCallback(print_every=int(self.train.print_every)))
        return trainer

    def speaker_phase(self, phase: int) -> float:
        """GRPO on the speaker against the current listener (plus the reference listener's share)."""
        spec = env_reward_spec(self.s_env)
        terms, weights = resolve_reward_terms(spec, C.to_container(self.train.reward_terms),
                                              C.to_container(self.train.reward_weights))
        logger = RolloutLogger(self.out / "rollouts", terms)
        logger.path = self.out / "rollouts" / f"phase-{phase:03d}-speaker.jsonl"
        self._live_scorer = BatchScorer(self.s_env, on_scored=logger.on_scored)
        funcs = make_reward_funcs(self._live_scorer, terms)
        w_ref = float(self.sp.reference_weight) if self.ref_env is not None else 0.0
        weights = [w * (1.0 - w_ref) for w in weights]
        if self.ref_env is not None:
            ref_funcs = make_reward_funcs(BatchScorer(self.ref_env), terms)
            for fn, t in zip(ref_funcs, terms):
                fn.__name__ = fn.__qualname__ = f"reference_{t}"
            funcs += ref_funcs
            weights += [w * w_ref for w in resolve_reward_terms(spec, terms, C.to_container(self.train.reward_weights))[1]]
        if self.sp.contrastive:  # P(yes | target view) - mean P(yes | hard negatives), same listener call
            funcs += self._contrastive_funcs(logger)
            weights += [1.0]
        rows = [self.s_rows[i] for i in self.train_ids]
        trainer = self._trainer("speaker", self.s_model, self.s_proc, rows, funcs, weights, phase, logger)
        trainer.train()
        self.s_model = trainer.model
        if self.sp.shared_model:
            self.l_model = self.s_model
        self.live.model = self.l_model
        return _mean_reward(trainer)

    def _contrastive_funcs(self, logger: RolloutLogger) -> list:
        scorer = self._live_scorer

        def contrastive(prompts: Any = None, completions: Sequence[Any] = (), episode_id: Sequence[int] = (),
                        trainer_state: Any = None, **_: Any) -> list[float]:
            step = int(getattr(trainer_state, "global_step", 0)) + 1 if trainer_state is not None else 0
            _r, infos = scorer.score(episode_id, completions, step=step)
            return [P.contrastive_reward("", info) for info in infos]

        return [contrastive]

    def listener_warm_start(self, descs: dict[int, str]) -> dict[str, Any]:
        """The listener's warm starts, run before its first phase so that its reading rows are the words it
        will get: the current speaker's descriptions ``descs`` of the training episodes, besides the templates."""
        ids = self.listener_ids
        rows = P.pair_rows(self.l_env, ids, int(self.train.seed), describe=descs.__getitem__)
        return warm_start(self.l_model, self.l_proc, rows, C.to_container(self.sp.listener_warm_start),
                          int(self.train.seed), env=self.l_env, episode_ids=ids, what="listener",
                          descriptions=[descs[i] for i in ids])

    def listener_phase(self, phase: int, warm: bool = False) -> float:
        """GRPO on the listener (pair format) over the current speaker's descriptions of the training episodes;
        ``warm``: its warm starts first (recorded in ``self.warm_stats``)."""
        descs = self.describe([*self.listener_ids, *self.val_ids])
        if warm:
            self.warm_stats = self.listener_warm_start(descs)
        rows = P.pair_rows(self.l_env, self.listener_ids, int(self.train.seed) + phase, describe=descs.__getitem__,
                           contrastive=bool(self.sp.contrastive))
        logger = RolloutLogger(self.out / "rollouts", [P.PAIR_TERM])
        logger.path = self.out / "rollouts" / f"phase-{phase:03d}-listener.jsonl"
        funcs = make_reward_funcs(P.PairScorer(self.l_env, on_scored=logger.on_scored), [P.PAIR_TERM])
        trainer = self._trainer("listener", self.l_model, self.l_proc, rows, funcs, [1.0], phase, logger)
        if self.val_ids:
            self.selection = SelectBestCallback(lambda m: self.pair_accuracy(m, self.val_ids, descs),
                                                int(self.sp.listener_select_every))
            trainer.add_callback(self.selection)
        trainer.train()
        self.l_model = trainer.model
        if self.sp.shared_model:
            self.s_model = self.l_model
        self.live.model = self.l_model
        return _mean_reward(trainer)


def _mean_reward(trainer: Any) -> float:
    vals = [float(e["reward"]) for e in trainer.state.log_history if "reward" in e]
    return float(np.mean(vals)) if vals else float("nan")


def run_selfplay(cfg: Any) -> RunResult:
    """Alternate speaker and listener GRPO phases per ``cfg.train.selfplay``; returns the run's metrics."""
    import torch

    from agents.grpo.resume import resolve_resume

    train, sp = cfg.train, cfg.train.selfplay
    C.validate(train)
    sess = SelfPlay(cfg)
    out = sess.out
    resume = str(train.resume_from_checkpoint).strip().lower()
    ckpt = _latest_pair_checkpoint(out) if resume in ("auto", "true", "latest") else None
    if resume not in ("auto", "true", "latest"):
        resolve_resume(out, train.resume_from_checkpoint, bool(train.overwrite_output_dir))  # refuses a used dir
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    from omegaconf import OmegaConf

    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(int(train.seed))
    sess.load(ckpt)
    sess.build_envs()
    start = 0
    metrics: dict[str, Any] = {"chance": 1.0 / int(sess.speaker_kwargs.get("k", 4)), "phases": [],
                               "crossplay_listener": str(sp.crossplay_listener),
                               "reference_listener": sp.reference_listener, "shared_model": bool(sp.shared_model)}
    if ckpt is not None:
        state = json.loads((ckpt / "state.json").read_text())
        start, metrics = int(state["phase"]) + 1, state["metrics"]
        for f in (out / "rollouts").glob("phase-*.jsonl"):  # logs of phases past the resumed checkpoint
            if int(f.name.split("-")[1]) >= start:
                f.unlink()
        print(f"[lewis-train] self-play resumed from {ckpt.name} (next phase {start})", flush=True)
    else:
        s_rows = [sess.s_rows[i] for i in sess.train_ids]
        warm_start(sess.s_model, sess.s_proc, s_rows, C.to_container(train.warm_start), int(train.seed),
                   what="speaker")
        metrics["before"] = sess.evaluate()
        print(f"[lewis-train] before: {_line(metrics['before'])}", flush=True)
    publish_start(sess, ckpt)  # listener_service: the service serves the listener this run starts from
    order = ("speaker", "listener") if sp.first == "speaker" else ("listener", "speaker")
    for phase in range(start, int(sp.phases)):
        role = order[phase % 2]
        t0 = time.perf_counter()
        # the listener's warm starts wait for its first phase (a resumed run past one has them in its weights)
        warm = not sp.shared_model and not any(p["role"] == "listener" for p in metrics["phases"])
        sess.selection = None
        mean = sess.speaker_phase(phase) if role == "speaker" else sess.listener_phase(phase, warm=warm)
        if role == "listener" and warm:
            metrics["listener_warm_start"] = sess.warm_stats
        seconds = time.perf_counter() - t0
        steps = int(sp.speaker_steps if role == "speaker" else sp.listener_steps)
        ev = sess.evaluate()
        ev.update(phase=phase, role=role, steps=steps, mean_reward=mean, seconds=round(seconds, 1),
                  seconds_per_step=round(seconds / steps, 3))
        if sess.selection is not None:  # listener_select_every: the step kept and the validation curve
            ev.update(selected_step=sess.selection.best_step, validation_accuracy=round(sess.selection.best, 4),
                      validation_curve=sess.selection.curve)
        if torch.cuda.is_available():
            ev["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        metrics["phases"].append(ev)
        print(f"[lewis-train] phase {phase} ({role}, {steps} steps, {seconds:.0f} s): {_line(ev)}", flush=True)
        dest = out / PAIR_CKPT.format(phase)
        shutil.rmtree(dest, ignore_errors=True)
        sess.save_models(dest)
        write_json_atomic(dest / "state.json", {"phase": phase, "metrics": metrics})
        mark_complete(dest, phase=phase)
        reload = publish_phase(sess, role, dest)  # listener_service: the next speaker phase scores these weights
        if reload is not None:
            ev["listener_service_reload"] = reload
        for old in sorted(out.glob("pair-checkpoint-*"))[:-2]:
            shutil.rmtree(old, ignore_errors=True)
        metrics["after"] = {k: ev[k] for k in ("pair_accuracy", "crossplay_accuracy", "listener_template_accuracy")}
        write_json_atomic(out / METRICS_FILE, metrics)
        plot_phases(metrics, out / CURVE_FILE)
    sess.save_models(out)
    if metrics.get("phases"):
        metrics["after"] = {**metrics["after"], "accuracy": metrics["after"]["pair_accuracy"]}
    metrics.setdefault("before", {})["accuracy"] = metrics.get("before", {}).get("pair_accuracy")
    write_json_atomic(out / METRICS_FILE, metrics)
    return RunResult(output_dir=out, global_step=len(metrics["phases"]), resumed_from=str(ckpt) if ckpt else None,
                     metrics=metrics)


def _line(m: dict[str, Any]) -> str:
    return (f"pair {m['pair_accuracy']:.3f}, speaker x crossplay listener {m['crossplay_accuracy']:.3f}, "
            f"listener on templates {m['listener_template_accuracy']:.3f}")


__all__ = ["ModelListener", "SelfPlay", "plot_phases", "run_selfplay"]

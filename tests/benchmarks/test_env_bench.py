"""Env throughput: reset+step per second (K=4, synthetic, rule listener), single env and vectorised (printed)."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

import lewis_env  # noqa: F401  (registers the env ids)
from lewis_env.speakers import describe

DATASET = {"kind": "synthetic", "num_concepts": 64, "images_per_concept": 10, "num_reference": 5, "image_size": 64,
           "seed": 0}


def _speaker(image_size: int, **kw):
    return gym.make("lewis_env/LewisSpeaker-v0", dataset=dict(DATASET), split="all", k=4, image_size=image_size,
                    listener="rule", **kw)


def _oracle_actions(env, n: int) -> list[str]:
    base = env.unwrapped
    return [describe(base.dataset.concept(base.episode(i).target_concept)) for i in range(n)]


def test_speaker_env_steps_per_second(benchmark):
    """Single env, reset(episode_id)+step with the oracle description; target >= 2,000 steps/s on one core."""
    results = {}
    for size in (64, 224):
        env = _speaker(size)
        n = env.unwrapped.num_episodes
        actions = _oracle_actions(env, n)
        for i in range(n):  # warm the image and episode caches (what a training epoch does on its first pass)
            env.reset(options={"episode_id": i})
        times: list[float] = []

        def run(env=env, actions=actions, n=n, times=times) -> None:
            t0 = time.perf_counter()
            for i in range(n):
                env.reset(options={"episode_id": i})
                env.step(actions[i])
            times.append(time.perf_counter() - t0)

        if size == 64:
            benchmark.pedantic(run, rounds=3, iterations=1)
        else:
            for _ in range(3):
                run()
        results[size] = n / min(times)
        print(f"\nLewisSpeaker-v0 single env, K=4, rule listener, {size}px: {results[size]:,.0f} reset+step/s "
              f"({n} episodes)")
        env.close()
    benchmark.extra_info["steps_per_s_64px"] = results[64]
    benchmark.extra_info["steps_per_s_224px"] = results[224]
    assert results[64] > 500  # generous guard; the printed figure is what to read


def test_speaker_score_batch_per_second(benchmark):
    """GRPO path: score_batch over a whole group (one listener call), completions per second."""
    env = _speaker(64)
    base = env.unwrapped
    ids = [i // 8 for i in range(8 * 64)]
    actions = [describe(base.dataset.concept(base.episode(i).target_concept)) for i in ids]
    base.score_batch(ids, actions)
    times: list[float] = []

    def run() -> None:
        t0 = time.perf_counter()
        rewards, _ = base.score_batch(ids, actions)
        times.append(time.perf_counter() - t0)
        assert np.all(rewards > 2.0)

    benchmark.pedantic(run, rounds=3, iterations=1)
    rate = len(ids) / min(times)
    print(f"\nLewisSpeaker-v0 score_batch: {rate:,.0f} completions/s (groups of 8)")
    benchmark.extra_info["completions_per_s"] = rate
    env.close()


def test_vector_env_steps_per_second(benchmark):
    """gym.make_vec sync (8 envs) and async (2 workers, the machine's cores): env steps per second."""
    results = {}
    for mode, num_envs in (("sync", 8), ("async", 2)):
        envs = gym.make_vec("lewis_env/LewisSpeaker-v0", num_envs=num_envs, vectorization_mode=mode,
                            dataset=dict(DATASET), split="all", k=4, image_size=64, listener="rule")
        envs.reset(seed=0)
        actions = ("<coarse>A photo of a red mug.</coarse><detailed>The mug is red.</detailed>",) * num_envs
        rounds = 200
        for _ in range(20):
            envs.step(actions)
        t0 = time.perf_counter()
        for _ in range(rounds):
            envs.step(actions)  # autoreset: every step finishes one episode and resets the next
        results[mode] = rounds * num_envs / (time.perf_counter() - t0)
        print(f"\nLewisSpeaker-v0 {mode} vector env x{num_envs}, 64px: {results[mode]:,.0f} env steps/s")
        envs.close()
    benchmark.extra_info.update({f"{m}_steps_per_s": v for m, v in results.items()})
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    assert min(results.values()) > 50

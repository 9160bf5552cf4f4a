"""The five built-in tasks (registered by ``lewis_env.tasks``); each env class points at its spec."""

from __future__ import annotations

from lewis_env.tasks.spec import ChoiceTask, DescriptionTask, YesNoTask

SPEAKER = DescriptionTask(
    id="speaker", env_id="lewis_env/LewisSpeaker-v0", entry_point="lewis_env.envs.speaker:LewisSpeakerEnv",
    title="Lewis game: speaker", order=0,
    doc="See the target image; describe it so a listener picks it among K candidates (hard negatives). "
        "Reward: the listener picked right (+ format/length shaping presets). Metric: listener accuracy.",
    observation={"image": "image", "instruction": "text"})
LISTENER = ChoiceTask(
    id="listener", env_id="lewis_env/LewisListener-v0", entry_point="lewis_env.envs.listener:LewisListenerEnv",
    title="Lewis game: listener", order=1, choices_in_obs="candidates",
    doc="Read a description of the target; pick it among K candidate images. Answer: a letter (A..) or "
        "number. Metric: accuracy.",
    observation={"description": "text", "candidates": "images:k", "question": "text"})
RECOGNITION = YesNoTask(
    id="recognition", env_id="lewis_env/Recognition-v0", entry_point="lewis_env.envs.recognition:RecognitionEnv",
    title="Personalised recognition", order=2,
    doc="Given reference image(s) and a description of a personal concept, say whether it is in the query "
        "image. Positives and hard negatives are balanced. Answer: yes/no. Metric: weighted accuracy "
        "((positive + negative accuracy) / 2).",
    observation={"reference": "images:num_reference_shown", "description": "text", "query": "image",
                 "question": "text"})
VQA = ChoiceTask(
    id="vqa", env_id="lewis_env/VQA-v0", entry_point="lewis_env.envs.vqa:VQAEnv",
    title="Personalised VQA", order=3, n_choices="num_options", choices_in_obs="options",
    doc="Answer a multiple-choice question about a personal concept in an image (colour, pattern, mark, "
        "position, count, presence, or the dataset's own questions). Answer: an option letter or the option "
        "text. Metric: accuracy.",
    observation={"image": "image", "reference": "images:num_reference_shown", "question": "text",
                 "options": "text"})
IDENTIFICATION = ChoiceTask(
    id="identification", env_id="lewis_env/Identification-v0",
    entry_point="lewis_env.envs.identification:IdentificationEnv", title="Identification", order=4,
    choices_in_obs="database",
    doc="Which of K concepts of a text database (name + description) is in the query image? Answer: the "
        "entry's letter. Metric: accuracy.",
    observation={"query": "image", "database": "text", "question": "text"})

BUILTIN_TASKS = (SPEAKER, LISTENER, RECOGNITION, VQA, IDENTIFICATION)

__all__ = ["BUILTIN_TASKS", "IDENTIFICATION", "LISTENER", "RECOGNITION", "SPEAKER", "VQA"]

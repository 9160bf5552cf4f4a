"""The five Gymnasium environments (ids ``lewis_env/<Id>-v0``; registered when ``lewis_env`` is imported)."""

from lewis_env.envs.base import LewisEnv
from lewis_env.envs.identification import IdentificationEnv
from lewis_env.envs.listener import LewisListenerEnv
from lewis_env.envs.recognition import RecognitionEnv
from lewis_env.envs.speaker import LewisSpeakerEnv
from lewis_env.envs.vqa import VQAEnv

__all__ = ["IdentificationEnv", "LewisEnv", "LewisListenerEnv", "LewisSpeakerEnv", "RecognitionEnv", "VQAEnv"]

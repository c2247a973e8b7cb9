"""The seven ML.ENERGY tasks: definitions, prompt sources, media, output-length distributions.

Importing this package is cheap (no torch); media are drawn with Pillow on first use.
"""

from joulelens.tasks.definitions import (
    DEFAULT_FIM,
    FIM_FORMATS,
    TASKS,
    FimFormat,
    Task,
    fim_format_for_vocab,
    get_task,
    task_names,
)
from joulelens.tasks.media import Media, builtin_media, load_media
from joulelens.tasks.output_lengths import OutputLengthDistribution
from joulelens.tasks.prompts import PromptItem, PublicDataset, load_prompt_file, repeat_to

__all__ = [
    "DEFAULT_FIM",
    "FIM_FORMATS",
    "TASKS",
    "FimFormat",
    "Media",
    "OutputLengthDistribution",
    "PromptItem",
    "PublicDataset",
    "Task",
    "builtin_media",
    "fim_format_for_vocab",
    "get_task",
    "load_media",
    "load_prompt_file",
    "repeat_to",
    "task_names",
]

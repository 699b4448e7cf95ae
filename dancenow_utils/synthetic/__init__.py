"""The built-in demo: a procedural game character, its dances, and ground truth to score against."""

from dancenow_utils.synthetic.character import SOURCE_STYLE, TARGET_STYLE, CharacterStyle, render_character
from dancenow_utils.synthetic.dance import dance_trajectory
from dancenow_utils.synthetic.demo import DemoPaths, make_demo
from dancenow_utils.synthetic.hard import HARD_CLIPS, HardPaths, make_hard_footage

__all__ = ["HARD_CLIPS", "SOURCE_STYLE", "TARGET_STYLE", "CharacterStyle", "DemoPaths", "HardPaths",
           "dance_trajectory", "make_demo", "make_hard_footage", "render_character"]

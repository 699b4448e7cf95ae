"""The built-in demo: a procedural game character, its dances, and ground truth to score against."""

from dancenow_utils.synthetic.character import SOURCE_STYLE, TARGET_STYLE, CharacterStyle, render_character
from dancenow_utils.synthetic.dance import dance_trajectory
from dancenow_utils.synthetic.demo import DemoPaths, make_demo

__all__ = ["SOURCE_STYLE", "TARGET_STYLE", "CharacterStyle", "DemoPaths", "dance_trajectory", "make_demo",
           "render_character"]

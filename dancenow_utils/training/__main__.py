"""``python -m dancenow_utils.training``: train one stage (see :mod:`dancenow_utils.training.cli`)."""

from dancenow_utils.training.cli import main

main()

"""What the notebooks call: one facade for their cells (``pipeline``), the stage-by-stage lessons, the one-page
report, the runner behind ``make demo`` and the slimmed outputs saved in the committed notebooks."""

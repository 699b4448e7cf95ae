"""Step 2 (and step 5's runs): the training loop (``trainer``), the method's stages and the models they start
from (``stages``), the command line (``cli``, ``python -m dancenow_utils.training``) and the learning snapshots
(``snapshots``)."""

"""Where and how code runs: the device (``device``), mixed precision (``precision``) and the process environment
(``env``)."""

"""Tools around the core: the throughput benchmark, the report of finished runs, the offline
sweep runner and the gradient-flow overlay. Each is run as `python -m rnnlab.tools.<name>`; the
core (data, models, callbacks, run) never imports them."""

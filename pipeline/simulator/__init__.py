"""A simulated OKX (FD broker rebate endpoints) on loopback for the demo and tests; the pipeline never imports it."""

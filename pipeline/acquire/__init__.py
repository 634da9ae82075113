"""OKX → raw/: the acquisition steps (discover, plan, create, poll, download) that move windows through the ledger."""

"""The OKX side: signed client, error classification, limits, and an embedded simulator."""

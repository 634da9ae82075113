"""The OKX adapter: signed client, one error classifier, the GET limiter, and every OKX limit named once."""

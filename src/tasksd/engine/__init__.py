"""Time-driven machinery: rate limits now; dispatch, retries and sweeps as they arrive."""

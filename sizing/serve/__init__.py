"""One replica under serving traffic: engine step times, continuous batching, load and latency percentiles, estimate."""

"""What the storage room asks of the time-series store it writes to."""

# Flags the VictoriaMetrics process needs for this writer (the local supervisor and
# docker-compose pass them): identical timestamps of a series collapse to one sample, so a replayed
# reading overwrites instead of doubling; and the default retention of raw readings.
VICTORIAMETRICS_FLAGS = ("-dedup.minScrapeInterval=1ms", "-retentionPeriod=1y")

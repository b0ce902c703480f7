"""The gateway simulator behind `ocpp-consumer simulate`, for demos, load tests and the benchmark.

Two halves, kept apart on purpose:

* `feed` generates the records (key, value): a pure, seeded generator with no I/O, so the tests and the
  benchmark can reuse exactly the feed an operator publishes, and two runs with one seed are identical.
* `publish` puts them on Kafka fast.

`cli` joins them for the command line.
"""

from consumer.tools.simulate.cli import main
from consumer.tools.simulate.feed import Feed, FeedConfig
from consumer.tools.simulate.publish import ensure_topic, publish

__all__ = ["Feed", "FeedConfig", "ensure_topic", "main", "publish"]

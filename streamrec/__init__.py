"""streamrec: a streaming session + long-term graph recommender on Kafka."""

__version__ = "0.1.0"

"""The generations of the views: the logic they share (base.py) and two siblings that hold the
documents, in Mongo collections (mongo.py) or in memory (memory.py)."""
from .base import (AGG_BUCKETS, CLOSED, STATE_BUCKETS, BaseGeneration, PlacedDelta, agg_id, bucket, field_of,
                   indicator_of, partition_key)
from .memory import MemoryGeneration
from .mongo import Generation, MongoGeneration, active_generation, set_active_generation

__all__ = ["AGG_BUCKETS", "CLOSED", "STATE_BUCKETS", "BaseGeneration", "Generation", "MemoryGeneration",
           "MongoGeneration", "PlacedDelta", "active_generation", "agg_id", "bucket", "field_of", "indicator_of",
           "partition_key", "set_active_generation"]

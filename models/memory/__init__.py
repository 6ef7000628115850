"""GLAD long-term user memory: history chunks -> graph memory -> gated fusion with the session vector.

GLAD: "GLAD: Graph-based Long-term Attentive Dynamic Memory for Sequential Recommendation", Pandey,
Sarkar and Comar (Amazon), 2024. Section, equation and figure numbers in this package are that paper's.

Typical use by a trainer::

    memory = LongTermMemory(dim, chunk_size, use_clusters=True, target_attentive=True)
    memory.refresh_clusters(all_training_chunks, item_table)           # e.g. once per epoch
    batch = build_memory_batch(histories, chunk_size, memory.clusters, device)
    logits = memory(batch, session_vectors, item_table)                 # [B, V]
"""

from streamrec.models.memory.chunk_encoder import ChunkEncoder
from streamrec.models.memory.chunks import Chunks, MemoryBatch, build_memory_batch, history_chunks
from streamrec.models.memory.clusters import ClusterIndex
from streamrec.models.memory.gate import OutputGate
from streamrec.models.memory.graph import BipartiteSAGE, MemoryGraph
from streamrec.models.memory.memory import LongTermMemory, dot_scores, short_term_scores
from streamrec.models.memory.read import GraphRead, TargetAttentiveRead

__all__ = [
    "BipartiteSAGE",
    "ChunkEncoder",
    "Chunks",
    "ClusterIndex",
    "GraphRead",
    "LongTermMemory",
    "MemoryBatch",
    "MemoryGraph",
    "OutputGate",
    "TargetAttentiveRead",
    "build_memory_batch",
    "dot_scores",
    "history_chunks",
    "short_term_scores",
]

"""The knowledge-gap lab: a synthetic corpus of people and their facts, a small language model
trained on it from scratch, and hallucination measured by how often each fact was seen."""

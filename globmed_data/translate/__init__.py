"""Translation of entries into other languages: structure-preserving segments with protected
spans, pluggable backends (hf, openai, vllm), a warehouse cache, checks on every output,
evaluation against reference translations, and a human review round trip (docs/translation.md).
"""

"""Versioned dataset export: snapshot the curated view, lay it out as Parquet with a dataset card,
record the version, publish it (local git repository, Hugging Face Hub) and pull it back.

Modules: snapshot (what goes in, fingerprint), layout (files on disk), card (README.md),
versions (warehouse records, semver, diff), targets (git and Hub), pull, events, stage (the
pipeline step that ties them together). docs/export.md describes the format.
"""
